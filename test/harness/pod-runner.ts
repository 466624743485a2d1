// Executes fedbackup's own pods for real (kwok only pretends to run pods): a small kubelet for pods
// labelled app.kubernetes.io/component=agent or =operator on simulated nodes, and a scheduler for those
// of them that name no node (the operator's Deployment: the harness runs no kube-scheduler). Each pod's container runs as a
// local process in a mount namespace of its own, where the pod's PersistentVolumeClaims are bind-mounted
// from their PersistentVolumes' hostPath directories at the container's mount paths, Block-mode claims
// (volumeDevices) have their PersistentVolumes' device nodes bind-mounted at the container's device paths,
// and the ServiceAccount token sits where a real kubelet puts it; so the agent runs exactly as in a cluster. The
// runner reports pod status through the API like a kubelet. It is test harness: the operator does not
// know it exists.
import { spawn, type ChildProcess } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { KubeClient } from "../../src/k8s/client.js";
import { isNotFound } from "../../src/k8s/errors.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { Informer } from "../../src/k8s/informer.js";
import { REPO_ROOT } from "./binaries.js";
import type { ControlPlane } from "./control-plane.js";

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

interface PodSpec {
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  serviceAccountName?: string;
  containers: Array<{
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
    volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
    /** Block-mode claims, as raw devices at devicePath. */
    volumeDevices?: Array<{ name: string; devicePath: string }>;
  }>;
  volumes?: Array<{
    name: string;
    persistentVolumeClaim?: { claimName: string };
    hostPath?: { path: string };
    secret?: { secretName: string; defaultMode?: number };
  }>;
}

type Pod = KubeObject & { spec: PodSpec; status?: { phase?: string } };

export interface PodRun {
  namespace: string;
  name: string;
  node: string;
  serviceAccount: string;
  image: string;
  args: string[];
  startedAt: number;
  endedAt?: number;
  exitCode?: number | null;
  signal?: string | null;
  log: string;
  /** Why the pod's final status could not be written, if it could not. */
  statusError?: string;
}

export interface PodRunnerOptions {
  /** Nodes whose pods are not started (a node that is down); their pods stay Pending. */
  deadNodes?: Set<string>;
  /**
   * The program an image stands for, as the command before the container's args (its entrypoint is
   * `fedbackup`). Default: the CLI from source through tsx, whatever the image.
   */
  programFor?: (image: string) => string[];
  /**
   * Runs only the pods annotated RUNNER_ANNOTATION=<this name>, so that a test's own runner (with a
   * program of its own) and the shared one never both run a pod. Unnamed (default): runs only pods
   * without that annotation.
   */
  name?: string;
}

/** On a pod: the name of the PodRunner that is to run it (see PodRunnerOptions.name). */
export const RUNNER_ANNOTATION = "test.fedbackup.io/pod-runner";

/** The `fedbackup` CLI from source. */
export const SOURCE_PROGRAM = [process.execPath, "--import", "tsx", path.join(REPO_ROOT, "src/cli/main.ts")];

const RUN_LABEL_SELECTOR = "app.kubernetes.io/component in (agent,operator)";

export class PodRunner {
  readonly runs: PodRun[] = [];
  private readonly client: KubeClient;
  private readonly informer: Informer<Pod>;
  private readonly running = new Map<string, { child: ChildProcess; run: PodRun; dir: string }>();
  /** Pods whose deletion has begun: SIGTERM sent, SIGKILL scheduled at the end of their grace period. */
  private readonly terminating = new Set<string>();
  private readonly started = new Set<string>();
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-pods-"));
  readonly deadNodes: Set<string>;
  private readonly programFor: (image: string) => string[];
  private readonly name: string | undefined;
  private stopped = false;

  constructor(
    private readonly cp: ControlPlane,
    options: PodRunnerOptions = {},
  ) {
    this.client = new KubeClient(cp.kubeConfig);
    this.deadNodes = options.deadNodes ?? new Set();
    this.programFor = options.programFor ?? (() => SOURCE_PROGRAM);
    this.name = options.name;
    this.informer = new Informer<Pod>(
      this.client,
      Resources.Pod,
      { labelSelector: RUN_LABEL_SELECTOR },
      { warn: () => {} },
    );
    this.informer.on((event, pod) => {
      if (event !== "delete")
        void this.onPod(pod).catch((err: unknown) => process.stderr.write(`pod runner: ${String(err)}\n`));
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
    for (const { child } of this.running.values()) child.kill("SIGKILL");
    this.client.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kills the process of every pod on a node and marks the node dead (its pods fail, new ones never start). */
  killNode(node: string): void {
    this.deadNodes.add(node);
    for (const [, { child, run }] of this.running) if (run.node === node) child.kill("SIGKILL");
  }

  /**
   * SIGKILLs the container process of a running pod (as an OOM kill or a crash would end it); the pod then
   * fails like any container that exits non-zero. False when the pod is not running here.
   */
  killPod(namespace: string, name: string): boolean {
    const entry = this.running.get(`${namespace}/${name}`);
    if (!entry) return false;
    entry.child.kill("SIGKILL");
    return true;
  }

  /**
   * What the runner knows of a pod, for a test's failure message: whether its informer has it, whether a run
   * started, how it ended, and the end of its container log.
   */
  explain(namespace: string, name: string): string {
    const key = `${namespace}/${name}`;
    const seen = this.informer.get(key);
    const run = this.runs.find((r) => r.namespace === namespace && r.name === name);
    const facts = [
      seen ? `the runner's cache has it, phase ${seen.status?.phase ?? "none"}` : "not in the runner's cache",
      this.started.has(key) ? "its start was begun" : "no start begun",
    ];
    if (run) {
      facts.push(
        run.endedAt === undefined
          ? `running for ${Date.now() - run.startedAt} ms`
          : `exited ${run.exitCode ?? run.signal} after ${run.endedAt - run.startedAt} ms`,
      );
      if (run.statusError) facts.push(`its final status was not written: ${run.statusError}`);
      const log = existsSync(run.log) ? readFileSync(run.log, "utf8").slice(-2_000) : "";
      facts.push(`log: ${JSON.stringify(log)}`);
    }
    return facts.join("; ");
  }

  private async onPod(pod: Pod): Promise<void> {
    if (pod.metadata.annotations?.[RUNNER_ANNOTATION] !== this.name) return;
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const entry = this.running.get(key);
    if (pod.metadata.deletionTimestamp) {
      if (!entry) {
        await this.forceDelete(pod);
        return;
      }
      // As a kubelet does: SIGTERM now, SIGKILL when the grace period (up to deletionTimestamp) is over.
      if (!this.terminating.has(key)) {
        this.terminating.add(key);
        entry.child.kill("SIGTERM");
        const graceMs = Math.max(0, Date.parse(pod.metadata.deletionTimestamp) - Date.now());
        setTimeout(() => {
          if (entry.child.exitCode === null && entry.child.signalCode === null) entry.child.kill("SIGKILL");
        }, graceMs).unref();
      }
      return;
    }
    const node = pod.spec.nodeName;
    if (!node) return this.schedule(pod);
    if (this.started.has(key) || pod.status?.phase !== "Pending" || this.deadNodes.has(node)) return;
    this.started.add(key);
    await this.run(pod, key, node);
  }

  /** Binds a pod to the first live node whose labels match its nodeSelector, as kube-scheduler would. */
  private async schedule(pod: Pod): Promise<void> {
    const nodes = await this.client.list<KubeObject>(Resources.Node);
    const fits = nodes.items
      .map((n) => n.metadata)
      .filter((m) => !this.deadNodes.has(m.name!))
      .filter((m) => Object.entries(pod.spec.nodeSelector ?? {}).every(([k, v]) => m.labels?.[k] === v))
      .map((m) => m.name!)
      .sort();
    if (fits.length === 0) return;
    await this.client
      .request("POST", `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/binding`, {
        body: {
          apiVersion: "v1",
          kind: "Binding",
          metadata: { name: pod.metadata.name },
          target: { apiVersion: "v1", kind: "Node", name: fits[0] },
        },
      })
      // Bound meanwhile (an update event of the same pod raced this one): the next event runs it.
      .catch(() => {});
  }

  // As a kubelet projects a Secret volume: one file per key, with the volume's mode. A missing Secret
  // fails the pod's start (a kubelet would keep it ContainerCreating).
  private async secretFiles(
    namespace: string,
    secret: { secretName: string; defaultMode?: number },
    podDir: string,
  ): Promise<string> {
    const object = await this.client.get<KubeObject & { data?: Record<string, string> }>(
      Resources.Secret,
      namespace,
      secret.secretName,
    );
    const dir = path.join(podDir, `secret-${secret.secretName}`);
    mkdirSync(dir, { mode: 0o755 });
    for (const [key, value] of Object.entries(object.data ?? {})) {
      writeFileSync(path.join(dir, key), Buffer.from(value, "base64"), { mode: secret.defaultMode ?? 0o644 });
    }
    return dir;
  }

  private async hostPathOf(namespace: string, claimName: string): Promise<string> {
    return (await this.boundVolumeOf(namespace, claimName)).path;
  }

  /** The device node of a Block-mode claim's PersistentVolume, as a kubelet maps it for volumeDevices. */
  private async deviceOf(namespace: string, claimName: string): Promise<string> {
    const { path: device, volumeMode, pvName } = await this.boundVolumeOf(namespace, claimName);
    if (volumeMode !== "Block")
      throw new Error(
        `PVC ${namespace}/${claimName} is used as a volumeDevice but PV ${pvName} is not volumeMode Block`,
      );
    if (!statSync(device, { throwIfNoEntry: false })?.isBlockDevice())
      throw new Error(`PV ${pvName}: ${device} is not a block device`);
    return device;
  }

  private async boundVolumeOf(
    namespace: string,
    claimName: string,
  ): Promise<{ path: string; volumeMode: string; pvName: string }> {
    // Like a kubelet, wait for a claim that is still being provisioned (one restored from a snapshot).
    let pvc: KubeObject & { spec: { volumeName?: string } };
    for (let waited = 0; ; waited += 100) {
      pvc = await this.client.get(Resources.PersistentVolumeClaim, namespace, claimName);
      if (pvc.spec.volumeName || waited >= 60_000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!pvc.spec.volumeName) throw new Error(`PVC ${namespace}/${claimName} is not bound`);
    const pv = await this.client.get<
      KubeObject & { spec: { hostPath?: { path: string }; local?: { path: string }; volumeMode?: string } }
    >(Resources.PersistentVolume, undefined, pvc.spec.volumeName);
    const dir = pv.spec.hostPath?.path ?? pv.spec.local?.path;
    if (!dir) throw new Error(`PV ${pvc.spec.volumeName} has no hostPath or local path`);
    return { path: dir, volumeMode: pv.spec.volumeMode ?? "Filesystem", pvName: pvc.spec.volumeName };
  }

  private async run(pod: Pod, key: string, node: string): Promise<void> {
    const ns = pod.metadata.namespace!;
    const container = pod.spec.containers[0]!;
    const podDir = mkdtempSync(path.join(this.dir, `${pod.metadata.name}-`));
    const mounts: Array<{ host: string; target: string }> = [];
    for (const vm of container.volumeMounts ?? []) {
      const vol = pod.spec.volumes?.find((v) => v.name === vm.name);
      if (vol?.persistentVolumeClaim)
        mounts.push({ host: await this.hostPathOf(ns, vol.persistentVolumeClaim.claimName), target: vm.mountPath });
      else if (vol?.hostPath) mounts.push({ host: vol.hostPath.path, target: vm.mountPath });
      else if (vol?.secret) mounts.push({ host: await this.secretFiles(ns, vol.secret, podDir), target: vm.mountPath });
    }
    // As a kubelet maps a Block-mode claim: its device node appears at the device path (a bind mount onto
    // an empty file made there if there is none, in the pod's mount namespace).
    const devices: Array<{ host: string; target: string }> = [];
    for (const vd of container.volumeDevices ?? []) {
      const vol = pod.spec.volumes?.find((v) => v.name === vd.name);
      if (!vol?.persistentVolumeClaim) throw new Error(`volumeDevice ${vd.name}: not a persistentVolumeClaim volume`);
      devices.push({ host: await this.deviceOf(ns, vol.persistentVolumeClaim.claimName), target: vd.devicePath });
    }
    // The pod's ServiceAccount credentials, where client libraries look for them in a pod.
    const saDir = path.join(podDir, "serviceaccount");
    mkdirSync(saDir);
    const token = await this.client.request<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${ns}/serviceaccounts/${pod.spec.serviceAccountName ?? "default"}/token`,
      {
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: {
            expirationSeconds: 3600,
            boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata.name, uid: pod.metadata.uid },
          },
        },
      },
    );
    writeFileSync(path.join(saDir, "token"), token.status.token);
    writeFileSync(path.join(saDir, "ca.crt"), readFileSync(this.cp.pki.caCert));
    writeFileSync(path.join(saDir, "namespace"), ns);
    mounts.push({ host: saDir, target: SA_DIR });

    const fieldRef = (p: string): string =>
      ({ "spec.nodeName": node, "metadata.name": pod.metadata.name!, "metadata.namespace": ns })[p] ?? "";
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: podDir,
      HOSTNAME: pod.metadata.name,
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: new URL(this.cp.server).port,
      ...Object.fromEntries(
        (container.env ?? []).map((e) => [e.name, e.value ?? fieldRef(e.valueFrom?.fieldRef?.fieldPath ?? "")]),
      ),
    };
    // The image's entrypoint is `fedbackup`: run the program the image stands for.
    const argv = [...(container.command ?? []), ...(container.args ?? [])];
    const script = [
      "set -e",
      ...mounts.map((_, i) => `mkdir -p "$M${i}_T" && mount --bind "$M${i}_H" "$M${i}_T"`),
      ...devices.map(
        (_, i) =>
          `{ [ -e "$D${i}_T" ] || { mkdir -p "$(dirname "$D${i}_T")" && : > "$D${i}_T"; }; } && mount --bind "$D${i}_H" "$D${i}_T"`,
      ),
      'exec "$@"',
    ].join("\n");
    for (const [i, m] of mounts.entries()) {
      env[`M${i}_H`] = m.host;
      env[`M${i}_T`] = m.target;
    }
    for (const [i, d] of devices.entries()) {
      env[`D${i}_H`] = d.host;
      env[`D${i}_T`] = d.target;
    }
    const logFile = path.join(podDir, "container.log");
    const run: PodRun = {
      namespace: ns,
      name: pod.metadata.name!,
      node,
      serviceAccount: pod.spec.serviceAccountName ?? "default",
      image: container.image,
      args: argv,
      startedAt: Date.now(),
      log: logFile,
    };
    this.runs.push(run);
    const child = spawn(
      "setpriv",
      [
        "--pdeathsig",
        "KILL",
        "--",
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        ...this.programFor(container.image),
        ...argv,
      ],
      { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    const log = createWriteStream(logFile);
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.running.set(key, { child, run, dir: podDir });
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await this.patchStatus(pod, {
      phase: "Running",
      startTime: now,
      hostIP: "127.0.0.1",
      conditions: [
        { type: "Initialized", status: "True", lastTransitionTime: now },
        { type: "Ready", status: "True", lastTransitionTime: now },
        { type: "ContainersReady", status: "True", lastTransitionTime: now },
      ],
      containerStatuses: [
        {
          name: container.name,
          image: container.image,
          imageID: "",
          ready: true,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: now } },
        },
      ],
    }).catch(() => {});
    child.on("exit", (code, signal) => {
      run.endedAt = Date.now();
      run.exitCode = code;
      run.signal = signal;
      this.running.delete(key);
      const exitCode = code ?? 137;
      const end = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      void this.patchFinalStatus(pod, {
        phase: exitCode === 0 ? "Succeeded" : "Failed",
        conditions: [
          { type: "Ready", status: "False", reason: "PodCompleted", lastTransitionTime: end },
          { type: "ContainersReady", status: "False", reason: "PodCompleted", lastTransitionTime: end },
        ],
        containerStatuses: [
          {
            name: container.name,
            image: container.image,
            imageID: "",
            ready: false,
            started: false,
            restartCount: 0,
            state: {
              terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt: now, finishedAt: end },
            },
          },
        ],
      })
        .catch((err: unknown) => {
          run.statusError = String(err);
        })
        .then(async () => {
          const live = this.informer.get(key);
          if (live?.metadata.deletionTimestamp) await this.forceDelete(live);
        });
    });
  }

  private async patchStatus(pod: Pod, status: Record<string, unknown>): Promise<void> {
    await this.client.patch(
      Resources.Pod,
      pod.metadata.namespace,
      pod.metadata.name!,
      { status },
      { subresource: "status" },
    );
  }

  /**
   * A pod's last status, written until the API server takes it (as a kubelet keeps syncing a pod's status):
   * a container that exits while the API server is down must not leave its pod Running for ever.
   */
  private async patchFinalStatus(pod: Pod, status: Record<string, unknown>): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        return await this.patchStatus(pod, status);
      } catch (err) {
        if (isNotFound(err) || this.stopped || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async forceDelete(pod: Pod): Promise<void> {
    await this.client
      .request("DELETE", `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, {
        body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 },
      })
      .catch(() => {});
  }
}
