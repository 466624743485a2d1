// A real, throw-away Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC, ServiceAccount
// tokens, aggregation layer), kube-controller-manager (job, garbage collector, serviceaccount, namespace
// controllers) and kwok playing the kubelet of simulated nodes. Tests, `make cluster` and the demo use it.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import * as yaml from "js-yaml";
import { REPO_ROOT, resolveBinaries, type BinaryName, type ResolvedBinary } from "./binaries.js";
import { createPki, type Pki } from "./pki.js";
import { freePort } from "./ports.js";
import { ManagedProcess } from "./processes.js";
import { kubeconfigYaml, writeKubeconfig } from "./kubeconfig.js";
import { KubeClient } from "../../src/k8s/client.js";
import type { ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";

export const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";

export interface SimulatedNode {
  name: string;
  labels?: Record<string, string>;
  /** Allocatable = capacity; defaults are generous so scheduling never limits a test. */
  capacity?: { cpu?: string; memory?: string; pods?: string };
  controlPlane?: boolean;
}

export interface ControlPlaneOptions {
  /** Working directory (certs, etcd data, logs). A fresh temporary one by default. */
  dir?: string;
  nodes?: SimulatedNode[];
  /** Files or directories of CRD manifests to install and wait for. */
  crds?: string[];
  /** Keep the working directory after stop (for debugging). */
  keep?: boolean;
  log?: (message: string) => void;
  /**
   * kube-controller-manager's client rate limit (--kube-api-qps and --kube-api-burst), when not its
   * default of 20 and 30: its Job controller creates a Job's pod and writes its status through it.
   */
  controllerManagerQps?: number;
}

const admissionType = (plural: string, kind: string): ResourceType => ({
  group: "admissionregistration.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced: false,
});

/** The kinds of object crds/ holds besides CRDs: the admission policies that come with them. */
const SHIPPED_WITH_CRDS: Record<string, ResourceType> = {
  ValidatingAdmissionPolicy: admissionType("validatingadmissionpolicies", "ValidatingAdmissionPolicy"),
  ValidatingAdmissionPolicyBinding: admissionType(
    "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding",
  ),
  MutatingAdmissionPolicy: admissionType("mutatingadmissionpolicies", "MutatingAdmissionPolicy"),
  MutatingAdmissionPolicyBinding: admissionType("mutatingadmissionpolicybindings", "MutatingAdmissionPolicyBinding"),
};

export const DEFAULT_CRDS = [path.join(REPO_ROOT, "crds"), path.join(REPO_ROOT, "test/fixtures/crds")];

export function defaultNodes(count: number): SimulatedNode[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `node-${String.fromCharCode(97 + i)}`,
    controlPlane: i === 0,
  }));
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ""}`,
      );
    }
    await sleep(100);
  }
}

function manifestFiles(paths: string[]): string[] {
  return paths.flatMap((p) => {
    try {
      return readdirSync(p)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => path.join(p, f));
    } catch {
      return [p];
    }
  });
}

export function loadManifests(paths: string[]): k8s.KubernetesObject[] {
  return manifestFiles(paths).flatMap((file) =>
    yaml.loadAll(readFileSync(file, "utf8")).filter((doc): doc is k8s.KubernetesObject => !!doc),
  );
}

export class ControlPlane {
  readonly kubeConfig = new k8s.KubeConfig();
  private readonly processes: ManagedProcess[] = [];

  /** The control plane's processes by name (kube-apiserver, etcd, ...), for their resource use. */
  get processIds(): Array<{ name: string; pid: number | undefined }> {
    return this.processes.map((p) => ({ name: p.name, pid: p.pid }));
  }
  private stopped = false;
  serverVersion = "";

  private constructor(
    readonly dir: string,
    readonly pki: Pki,
    readonly server: string,
    readonly kubeconfigPath: string,
    readonly binaries: Record<BinaryName, ResolvedBinary>,
    private readonly options: ControlPlaneOptions,
  ) {
    this.kubeConfig.loadFromFile(kubeconfigPath);
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const log = options.log ?? (() => {});
    const binaries = resolveBinaries();
    const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), "fedbackup-cp-"));
    mkdirSync(path.join(dir, "logs"), { recursive: true });
    mkdirSync(path.join(dir, "pki"), { recursive: true });
    const pki = createPki(path.join(dir, "pki"));
    const [etcdPort, etcdPeerPort, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfigPath = path.join(dir, "kubeconfig");
    writeKubeconfig(kubeconfigPath, server, pki.caCert, { clientCert: pki.adminCert, clientKey: pki.adminKey });
    const cp = new ControlPlane(dir, pki, server, kubeconfigPath, binaries, options);
    try {
      await cp.boot(etcdPort, etcdPeerPort, apiPort, log);
      await cp.createNodes(options.nodes ?? []);
      await cp.installCrds(options.crds ?? DEFAULT_CRDS);
    } catch (err) {
      await cp.stop();
      throw err;
    }
    return cp;
  }

  private startProcess(name: string, args: string[]): ManagedProcess {
    const proc = ManagedProcess.start(
      name,
      this.binaries[name as BinaryName].path,
      args,
      path.join(this.dir, "logs", `${name}.log`),
    );
    this.processes.push(proc);
    writeFileSync(path.join(this.dir, "pids"), this.processes.map((p) => `${p.pid} ${p.name}`).join("\n") + "\n");
    return proc;
  }

  private async boot(etcdPort: number, etcdPeerPort: number, apiPort: number, log: (m: string) => void): Promise<void> {
    const t0 = Date.now();
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = this.startProcess("etcd", [
      `--data-dir=${path.join(this.dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync=true",
      "--listen-metrics-urls=",
      "--log-level=warn",
    ]);
    const p = this.pki;
    this.apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${p.servingCert}`,
      `--tls-private-key-file=${p.servingKey}`,
      `--client-ca-file=${p.caCert}`,
      "--authorization-mode=RBAC",
      // As in clusters that enable it (OpenShift does): setting blockOwnerDeletion on an owner reference
      // needs update on the owner's finalizers, so the RBAC of the chart is proven against it.
      "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${p.serviceAccountPub}`,
      `--service-account-signing-key-file=${p.serviceAccountKey}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      "--endpoint-reconciler-type=none",
      "--profiling=false",
      // Aggregation layer, so extension API servers (KubeVirt's subresource API in tests) sit behind RBAC.
      `--requestheader-client-ca-file=${p.frontProxyCaCert}`,
      "--requestheader-allowed-names=front-proxy-client",
      "--requestheader-username-headers=X-Remote-User",
      "--requestheader-group-headers=X-Remote-Group",
      "--requestheader-extra-headers-prefix=X-Remote-Extra-",
      `--proxy-client-cert-file=${p.frontProxyClientCert}`,
      `--proxy-client-key-file=${p.frontProxyClientKey}`,
    ];
    await this.startApiServer(etcd);
    this.serverVersion = (JSON.parse((await this.get("/version")).body) as { gitVersion: string }).gitVersion;
    log(`kube-apiserver ${this.serverVersion} ready at ${this.server} after ${Date.now() - t0} ms`);
    this.startProcess("kube-controller-manager", [
      `--kubeconfig=${this.kubeconfigPath}`,
      "--controllers=job-controller,deployment-controller,replicaset-controller,garbage-collector-controller,serviceaccount-controller,namespace-controller,ttl-after-finished-controller,persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller",
      "--leader-elect=false",
      "--secure-port=0",
      "--use-service-account-credentials=false",
      `--root-ca-file=${p.caCert}`,
      ...(this.options.controllerManagerQps
        ? [
            `--kube-api-qps=${this.options.controllerManagerQps}`,
            `--kube-api-burst=${this.options.controllerManagerQps}`,
          ]
        : []),
    ]);
    this.startProcess("kwok", [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
      `--config=${path.join(REPO_ROOT, "test/harness/kwok/stages.yaml")}`,
      "--node-ip=127.0.0.1",
    ]);
    await waitFor("the default ServiceAccount (kube-controller-manager up)", 60_000, async () => {
      const kcm = this.processes.find((x) => x.name === "kube-controller-manager")!;
      if (!kcm.running) throw new Error(`kube-controller-manager exited:\n${kcm.tail()}`);
      await this.kubeConfig
        .makeApiClient(k8s.CoreV1Api)
        .readNamespacedServiceAccount({ name: "default", namespace: "default" });
      return true;
    });
  }

  private apiServerArgs: string[] = [];

  private async startApiServer(etcd: ManagedProcess): Promise<ManagedProcess> {
    const apiserver = this.startProcess("kube-apiserver", this.apiServerArgs);
    await waitFor("kube-apiserver /readyz", 60_000, async () => {
      if (!etcd.running) throw new Error(`etcd exited:\n${etcd.tail()}`);
      if (!apiserver.running) throw new Error(`kube-apiserver exited:\n${apiserver.tail()}`);
      return (await this.get("/readyz")).status === 200 ? true : undefined;
    });
    return apiserver;
  }

  /**
   * Stops kube-apiserver (SIGTERM, as a rolling restart does), leaves it down for `downMs`, and starts it
   * again with the same flags on the same port, etcd and every other process untouched: its clients see
   * their watches end and their requests refused until it is back, then reconnect and re-list.
   */
  async restartApiServer(downMs = 0): Promise<void> {
    const old = this.processes.find((x) => x.name === "kube-apiserver" && x.running);
    const etcd = this.processes.find((x) => x.name === "etcd")!;
    // Where it was in start order, so that stop() still stops it after its clients and before etcd.
    const at = old ? this.processes.indexOf(old) : 1;
    if (old) {
      await old.stop();
      this.processes.splice(at, 1);
    }
    if (downMs > 0) await sleep(downMs);
    const started = await this.startApiServer(etcd);
    this.processes.splice(this.processes.indexOf(started), 1);
    this.processes.splice(at, 0, started);
  }

  /** GET a path as the admin, without the client library (used before anything else is up). */
  get(urlPath: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.get(
        `${this.server}${urlPath}`,
        {
          ca: readFileSync(this.pki.caCert),
          cert: readFileSync(this.pki.adminCert),
          key: readFileSync(this.pki.adminKey),
          timeout: 5_000,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
    });
  }

  async createNodes(nodes: SimulatedNode[]): Promise<void> {
    const core = this.kubeConfig.makeApiClient(k8s.CoreV1Api);
    for (const node of nodes) {
      const capacity = { cpu: "32", memory: "128Gi", pods: "110", ...node.capacity };
      const labels: Record<string, string> = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        type: "kwok",
        ...(node.controlPlane ? { "node-role.kubernetes.io/control-plane": "" } : {}),
        ...node.labels,
      };
      await core.createNode({
        body: {
          metadata: { name: node.name, labels, annotations: { [KWOK_NODE_ANNOTATION]: "fake" } },
          status: { capacity, allocatable: capacity },
        },
      });
    }
    await Promise.all(nodes.map((n) => this.waitForNodeReady(n.name)));
  }

  async waitForNodeReady(name: string, timeoutMs = 30_000): Promise<void> {
    const core = this.kubeConfig.makeApiClient(k8s.CoreV1Api);
    await waitFor(`node ${name} Ready`, timeoutMs, async () => {
      const node = await core.readNode({ name });
      return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined;
    });
  }

  /**
   * Installs the CRDs of `paths` and waits until they are Established, then the other objects shipped with
   * them (the admission policies in crds/), as `kubectl apply -f crds/` would.
   */
  async installCrds(paths: string[]): Promise<void> {
    // Raw JSON, not the client library's typed models: those drop fields such as
    // x-kubernetes-int-or-string that they do not know.
    const client = new KubeClient(this.kubeConfig);
    const manifests = loadManifests(paths);
    const crds = manifests.filter((o) => o.kind === "CustomResourceDefinition");
    const others = manifests.filter((o) => o.kind !== "CustomResourceDefinition");
    for (const o of others) {
      if (!SHIPPED_WITH_CRDS[o.kind ?? ""]) throw new Error(`${o.kind} ${o.metadata?.name}: not a kind crds/ may hold`);
    }
    const crdType = {
      group: "apiextensions.k8s.io",
      version: "v1",
      plural: "customresourcedefinitions",
      kind: "CustomResourceDefinition",
      namespaced: false,
    };
    try {
      for (const crd of crds) {
        await client.apply(crdType, crd as KubeObject, { fieldManager: "fedbackup-harness" });
      }
      const ext = this.kubeConfig.makeApiClient(k8s.ApiextensionsV1Api);
      await Promise.all(
        crds.map((crd) =>
          waitFor(`CRD ${crd.metadata?.name} Established`, 30_000, async () => {
            const live = await ext.readCustomResourceDefinition({ name: crd.metadata!.name! });
            return live.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")
              ? true
              : undefined;
          }),
        ),
      );
      for (const o of others) {
        await client.apply(SHIPPED_WITH_CRDS[o.kind!]!, o as KubeObject, { fieldManager: "fedbackup-harness" });
      }
      if (others.length > 0) await this.waitForAdmissionOf(client, crds);
    } finally {
      client.close();
    }
  }

  /**
   * Admission policies that match custom resources resolve their kinds some time after the CRDs are
   * Established; until then the API server refuses those resources ("Resource kind ... not found").
   * Waits until a server-side dry run of a create of each kind gets past admission (any answer but that).
   */
  private async waitForAdmissionOf(client: KubeClient, crds: readonly object[]): Promise<void> {
    for (const crd of crds) {
      const spec = (crd as { spec: unknown }).spec as {
        group: string;
        names: { kind: string; plural: string };
        scope: string;
        versions: Array<{ name: string; storage?: boolean }>;
      };
      const version = spec.versions.find((v) => v.storage)?.name ?? spec.versions[0]!.name;
      const namespaced = spec.scope === "Namespaced";
      const path = `/apis/${spec.group}/${version}${namespaced ? "/namespaces/default" : ""}/${spec.names.plural}`;
      await waitFor(`admission of ${spec.names.kind}`, 60_000, async () => {
        try {
          await client.request("POST", path, {
            query: { dryRun: "All" },
            body: {
              apiVersion: `${spec.group}/${version}`,
              kind: spec.names.kind,
              metadata: { name: "admission-probe" },
            },
          });
          return true;
        } catch (err) {
          return /Resource kind .* not found/i.test(String(err)) ? undefined : true;
        }
      });
    }
  }

  /**
   * A kubeconfig (YAML) that authenticates as a ServiceAccount with a freshly minted token (TokenRequest),
   * valid for `expirationSeconds`. Nothing rotates it as a kubelet does a pod's: a process that outlives it
   * (the operator of a chaos run of more than an hour) needs a longer one.
   */
  async serviceAccountKubeconfigYaml(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
    const core = this.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const request = await core.createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { spec: { audiences: [], expirationSeconds } },
    });
    return kubeconfigYaml(this.server, this.pki.caCert, { token: request.status!.token });
  }

  async serviceAccountKubeConfig(namespace: string, name: string): Promise<k8s.KubeConfig> {
    const kc = new k8s.KubeConfig();
    kc.loadFromString(await this.serviceAccountKubeconfigYaml(namespace, name));
    return kc;
  }

  /** Runs the resolved kubectl against this control plane. */
  kubectl(args: string[], input?: string): string {
    return execFileSync(this.binaries.kubectl.path, [`--kubeconfig=${this.kubeconfigPath}`, ...args], {
      encoding: "utf8",
      input,
      stdio: ["pipe", "pipe", "pipe"],
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Reverse start order: clients of the API server first, etcd last.
    for (const proc of [...this.processes].reverse()) await proc.stop();
    if (!this.options.keep && !this.options.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
