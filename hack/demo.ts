// `make demo`: the whole product in one command, on a throw-away local cluster. It starts a real
// control plane with 3 simulated nodes, the KubeVirt freeze/unfreeze API double and the pod runner (which
// executes the node agent's pods as local processes, hence root), creates VMs with real disk files on a
// shared volume, runs the operator in-process as its own ServiceAccount, applies
// samples/federatedbackup.yaml, prints the backup's progress node by node as it happens, and ends with
// what was captured, read from the status and from the manifests at the backup location, each file
// checked against its sha256. Exit status 0 only if the backup is Completed and every file checks out.
// Everything it starts is stopped and every directory it creates is removed, also on Ctrl-C.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as yaml from "js-yaml";
import { LABEL_BACKUP } from "../src/api/labels.js";
import type { FederatedBackup, FederatedBackupStatusNode, NodeSnapshot } from "../src/api/v1alpha1/index.js";
import { Manager } from "../src/controllers/manager.js";
import { KubeClient } from "../src/k8s/client.js";
import { Informer } from "../src/k8s/informer.js";
import { Resources } from "../src/k8s/resources.js";
import type { KubeObject } from "../src/k8s/types.js";
import { createLogger } from "../src/telemetry/logger.js";
import { OperatorMetrics } from "../src/telemetry/metrics.js";
import { REPO_ROOT } from "../test/harness/binaries.js";
import { ControlPlane, defaultNodes } from "../test/harness/control-plane.js";
import { applyOperatorRbac } from "../test/harness/operator-rbac.js";
import { KubeVirtDouble } from "../test/harness/kubevirt-double.js";
import { PodRunner } from "../test/harness/pod-runner.js";
import { createVm, createVolume, NODE_MOUNT_PATH, type VmFixture } from "../test/harness/workloads.js";

const NAMESPACE = "demo";
const OPERATOR_NAMESPACE = "fedbackup-system";
const OPERATOR_SERVICE_ACCOUNT = "fedbackup-operator";
const SHARED_CLAIM = "vmdisks";
const LOCATION_CLAIM = "backups";
const SAMPLE = "samples/federatedbackup.yaml";
const BACKUP_TIMEOUT_MS = 120_000;
const EXCLUDE_LABEL = "fedbackup.io/exclude";

const MiB = 1024 * 1024;
/** Spread unevenly: the WorkloadCount ordering takes node-b (4 selected VMs) first, node-a (1) last. */
const VMS: VmFixture[] = [
  { name: "db-0", node: "node-b", disks: [6 * MiB, 2 * MiB] },
  { name: "db-1", node: "node-b", disks: [6 * MiB, 2 * MiB] },
  { name: "web-0", node: "node-b", disks: [3 * MiB] },
  { name: "web-1", node: "node-b", disks: [3 * MiB] },
  // Not selected: samples/federatedbackup.yaml skips VMs labelled fedbackup.io/exclude.
  { name: "scratch-0", node: "node-b", disks: [1 * MiB], labels: { [EXCLUDE_LABEL]: "true" } },
  { name: "web-2", node: "node-c", disks: [3 * MiB] },
  { name: "cache-0", node: "node-c", disks: [4 * MiB] },
  { name: "queue-0", node: "node-c", disks: [2 * MiB, 1 * MiB] },
  { name: "monitor-0", node: "node-a", disks: [2 * MiB] },
];

type Backup = FederatedBackup & KubeObject;
type Step = NodeSnapshot & KubeObject;
const FINISHED = ["Completed", "PartiallyFailed", "Failed"];

/** The fields of a per-VM manifest at the location (src/agent/manifest.ts) that the summary shows. */
interface VmManifest {
  node: string;
  round: number;
  method: string;
  indication: string;
  freeze: { windowMs: number };
  files: Array<{ path: string; bytes: number; sha256: string }>;
}

// ---- output ----

const startedAt = Date.now();
let backupCreatedAt = 0;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const say = (line = ""): void => void process.stdout.write(`${line}\n`);
const step = (what: string, detail: string): void => say(`  ${what.padEnd(14)} ${detail}`);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const stamp = (): string => `[${((Date.now() - backupCreatedAt) / 1000).toFixed(1).padStart(4)}s]`;

function table(header: string[], rows: string[][], rightAligned: Set<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

// ---- live progress ----

interface Seen {
  phase: string;
  round: number;
  coordinatingNode: string;
  nodes: Map<string, string>;
  runningSince: Map<string, number>;
}

/** Prints a line whenever the phase, the round, the coordinating node or a node step's phase changes. */
class ProgressPrinter {
  private seen: Seen = { phase: "", round: 0, coordinatingNode: "", nodes: new Map(), runningSince: new Map() };

  constructor(private readonly steps: Informer<Step>) {}

  update(fb: Backup): void {
    const s = fb.status ?? {};
    const phase = s.phase ?? "";
    if (!phase) return;
    const round = s.progress?.round ?? 0;
    const coordinating = s.coordinatingNode ?? "";
    const nodes = [...(s.nodes ?? [])].sort(
      (a, b) => (a.round ?? 0) - (b.round ?? 0) || (a.order ?? 0) - (b.order ?? 0),
    );
    const before: string[] = [];
    const after: string[] = [];

    if (phase !== this.seen.phase || round !== this.seen.round) {
      const text = this.phaseText(fb, nodes);
      (["Verifying", ...FINISHED].includes(phase) ? after : before).push(text);
    }
    let coordinationShown = coordinating === this.seen.coordinatingNode;
    const nodeLines: string[] = [];
    for (const node of nodes) {
      // A node takes part once per round: a migrated VM may be chased on a node done in round 1.
      const key = `${node.name}@${node.round ?? 1}`;
      const nodePhase = node.phase ?? "Pending";
      if (this.seen.nodes.get(key) === nodePhase) continue;
      this.seen.nodes.set(key, nodePhase);
      const isCoordinating = node.name === coordinating && nodePhase === "Running";
      if (isCoordinating) coordinationShown = true;
      const inRound = nodes.filter((n) => (n.round ?? 1) === (node.round ?? 1)).length;
      const position = `${node.order ?? "?"}/${inRound}${(node.round ?? 1) > 1 ? `, round ${node.round}` : ""}`;
      nodeLines.push(`${node.name} (${position}) ${this.nodeText(key, node, isCoordinating)}`);
    }
    if (!coordinationShown) {
      nodeLines.push(
        coordinating
          ? `${coordinating} is now the coordinating node of the shared volume`
          : `the shared volume is released (no coordinating node)`,
      );
    }
    for (const text of [...before, ...nodeLines, ...after]) say(`${stamp()} ${phase.padEnd(15)} ${text}`);
    this.seen = { ...this.seen, phase, round, coordinatingNode: coordinating };
  }

  private phaseText(fb: Backup, nodes: FederatedBackupStatusNode[]): string {
    const s = fb.status!;
    const p = s.progress ?? {};
    switch (s.phase) {
      case "New":
        return "accepted; discovering the selected VMs and where they run";
      case "InProgress":
      case "Reconciling": {
        const round = p.round ?? 1;
        const inRound = nodes.filter((n) => (n.round ?? 1) === round);
        const order = inRound.map((n) => n.name).join(" → ");
        const vms = plural(
          inRound.reduce((sum, n) => sum + (n.workloads ?? 0), 0),
          "VM",
        );
        return round <= 1
          ? `round 1: ${vms} on ${plural(inRound.length, "node")}, one node at a time: ${order}`
          : `round ${round}: chasing the VMs not captured yet (${vms}) where they run now: ${order}`;
      }
      case "Verifying":
        return "every node done: comparing the VMs expected with the VMs captured";
      default:
        return `${p.workloadsCaptured ?? 0}/${p.workloadsExpected ?? 0} VMs captured, ${p.workloadsMissing ?? 0} missing, in ${plural(p.round ?? 1, "round")}`;
    }
  }

  private nodeText(key: string, node: FederatedBackupStatusNode, coordinating: boolean): string {
    const vms = plural(node.workloads ?? 0, "VM");
    switch (node.phase) {
      case "Running":
        this.seen.runningSince.set(key, Date.now());
        return `${coordinating ? "coordinating node, " : ""}capturing ${vms}`;
      case "Succeeded": {
        const since = this.seen.runningSince.get(key);
        const took = since === undefined ? "" : ` in ${seconds(Date.now() - since)}`;
        const captured = this.steps.get(`${NAMESPACE}/${node.step}`)?.status?.captured ?? [];
        const detail = captured.length
          ? `, ${mib(captured.reduce((n, c) => n + (c.bytes ?? 0), 0))}: ${captured.map((c) => c.name).join(" ")}`
          : "";
        return `done${took}: captured ${node.captured ?? 0}/${vms}${detail}`;
      }
      case "Failed":
        return `failed: ${node.message ?? "see the NodeSnapshot"}`;
      case "Skipped":
        return `skipped${node.message ? `: ${node.message}` : ""}`;
      default:
        return `waiting for its turn (${vms})`;
    }
  }
}

// ---- the demo ----

async function waitForFinish(
  backups: Informer<Backup>,
  name: string,
  signal: AbortSignal,
): Promise<Backup | undefined> {
  const deadline = Date.now() + BACKUP_TIMEOUT_MS;
  for (;;) {
    const fb = backups.get(`${NAMESPACE}/${name}`);
    if (fb && FINISHED.includes(fb.status?.phase ?? "")) return fb;
    if (signal.aborted) return undefined;
    if (Date.now() > deadline) {
      say(`the backup did not finish within ${seconds(BACKUP_TIMEOUT_MS)}`);
      return fb;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function sha256Of(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

function loadSample(): Backup {
  const doc = yaml.load(readFileSync(path.join(REPO_ROOT, SAMPLE), "utf8")) as Backup;
  // The sample as written, moved to the demo namespace and pointed at the demo's claims.
  doc.metadata = { name: doc.metadata.name, namespace: NAMESPACE };
  doc.spec.sharedVolume = { ...doc.spec.sharedVolume, claimName: SHARED_CLAIM, nodeMountPath: NODE_MOUNT_PATH };
  doc.spec.location = {
    persistentVolumeClaim: { ...doc.spec.location.persistentVolumeClaim, claimName: LOCATION_CLAIM },
  };
  return doc;
}

async function demo(signal: AbortSignal, cleanups: Array<() => Promise<void> | void>): Promise<number> {
  say("fedbackup demo: KubeVirt VMs on a shared volume, backed up one node at a time");
  say();
  const cp = await ControlPlane.start({ nodes: defaultNodes(3) });
  cleanups.push(() => cp.stop());
  step(
    "control plane",
    `kube-apiserver ${cp.serverVersion} at ${cp.server}, etcd, kube-controller-manager, kwok (${seconds(Date.now() - startedAt)})`,
  );
  step("nodes", "node-a (control-plane), node-b, node-c: simulated by kwok, Ready");
  const admin = new KubeClient(cp.kubeConfig);
  cleanups.push(() => admin.close());

  const kubevirt = new KubeVirtDouble(cp);
  cleanups.push(() => kubevirt.stop());
  await kubevirt.start();
  step("kubevirt", "freeze/unfreeze API (a recording double) behind the API server's aggregation layer");
  const runner = new PodRunner(cp);
  cleanups.push(() => runner.stop());
  await runner.start();
  step("pod runner", "executes the node agent's pods as local processes in mount namespaces of their own");
  if (signal.aborted) return 130;

  await admin.create(Resources.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } });
  const root = mkdtempSync(path.join(os.tmpdir(), "fedbackup-demo-"));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const shared = await createVolume(admin, NAMESPACE, SHARED_CLAIM, path.join(root, "shared"));
  const location = await createVolume(admin, NAMESPACE, LOCATION_CLAIM, path.join(root, "location"));
  step(
    "volumes",
    `namespace ${NAMESPACE}: PVC ${SHARED_CLAIM} (shared VM disks, on every node at ${NODE_MOUNT_PATH}) and PVC ${LOCATION_CLAIM} (backup location), RWX hostPath PVs on temp dirs`,
  );
  for (const vm of VMS) await createVm(admin, NAMESPACE, shared.hostDir, vm);
  const byNode = new Map<string, string[]>();
  for (const vm of VMS) {
    const size = mib((vm.disks ?? []).reduce((a, b) => a + b, 0));
    const label = `${vm.name} (${plural(vm.disks?.length ?? 1, "disk")}, ${size}${vm.labels?.[EXCLUDE_LABEL] ? `, ${EXCLUDE_LABEL}` : ""})`;
    byNode.set(vm.node!, [...(byNode.get(vm.node!) ?? []), label]);
  }
  step("VMs", `${VMS.length} running VMIs with random disk data on the shared volume:`);
  for (const [node, vms] of [...byNode.entries()].sort()) step("", `${node}: ${vms.join(", ")}`);

  await applyOperatorRbac(admin);
  const operatorConfig = await cp.serviceAccountKubeConfig(OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT);
  const metrics = new OperatorMetrics(false);
  const operatorClient = new KubeClient(operatorConfig, metrics.observeRequest);
  const manager = new Manager({
    client: operatorClient,
    log: createLogger("operator", process.env.FEDBACKUP_LOG_LEVEL ?? "error"),
    metrics,
    namespace: OPERATOR_NAMESPACE,
    settings: { agentImage: "fedbackup:demo", imagePullPolicy: "Never" },
    leaseDurationSeconds: 15,
    migrationWaitMs: 10_000,
  });
  cleanups.push(async () => {
    await manager.stop();
    operatorClient.close();
  });
  await manager.start();
  step(
    "operator",
    `in-process, as system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SERVICE_ACCOUNT} (RBAC of deploy/rbac.yaml)`,
  );
  if (signal.aborted) return 130;

  const backups = new Informer<Backup>(admin, Resources.FederatedBackup, { namespace: NAMESPACE }, { warn: () => {} });
  const steps = new Informer<Step>(admin, Resources.NodeSnapshot, { namespace: NAMESPACE }, { warn: () => {} });
  cleanups.push(async () => {
    await backups.stop();
    await steps.stop();
  });
  await Promise.all([backups.start(), steps.start()]);
  const printer = new ProgressPrinter(steps);
  backups.on((event, fb) => {
    if (event !== "delete") printer.update(fb);
  });

  const manifest = loadSample();
  const name = manifest.metadata.name!;
  say();
  say(
    `$ kubectl apply -f ${SAMPLE}   # as ${NAMESPACE}/${name}, claims ${SHARED_CLAIM} and ${LOCATION_CLAIM}, started after ${seconds(Date.now() - startedAt)}`,
  );
  backupCreatedAt = Date.now();
  await admin.create(Resources.FederatedBackup, manifest);
  const fb = await waitForFinish(backups, name, signal);
  if (!fb) return 130;
  const status = fb.status ?? {};

  // ---- summary: status, NodeSnapshots, manifests at the location ----
  const stepList = (
    await admin.list<Step>(Resources.NodeSnapshot, { namespace: NAMESPACE, labelSelector: `${LABEL_BACKUP}=${name}` })
  ).items.sort((a, b) => a.spec.round - b.spec.round || a.spec.order - b.spec.order);
  const captures = new Map<string, { manifestPath: string; order: number }>();
  for (const s of stepList) {
    for (const c of s.status?.captured ?? []) {
      const manifestPath = c.manifest ?? path.posix.join(status.backupPath ?? "", c.namespace, c.name, "manifest.json");
      captures.set(`${c.namespace}/${c.name}`, { manifestPath, order: s.spec.round * 1000 + s.spec.order });
    }
  }
  const rows: string[][] = [];
  let totalBytes = 0;
  let totalFiles = 0;
  const problems: string[] = [];
  const methods = new Set<string>();
  const capturedOn = new Map<string, string>();
  const sorted = [...captures.entries()].sort(([a, x], [b, y]) => x.order - y.order || a.localeCompare(b));
  for (const [key, { manifestPath }] of sorted) {
    const [namespace, vm] = key.split("/") as [string, string];
    let m: VmManifest;
    try {
      m = JSON.parse(readFileSync(path.join(location.hostDir, manifestPath), "utf8")) as VmManifest;
    } catch (err) {
      problems.push(`${key}: no readable manifest at ${manifestPath}: ${(err as Error).message}`);
      continue;
    }
    methods.add(m.method);
    capturedOn.set(vm, m.node);
    const bytes = m.files.reduce((n, f) => n + f.bytes, 0);
    totalBytes += bytes;
    totalFiles += m.files.length;
    // Every copy at the location must hash to its manifest's sha256, and so must the source disk.
    for (const f of m.files) {
      const copy = path.join(location.hostDir, path.posix.dirname(manifestPath), "files", f.path);
      if (sha256Of(copy) !== f.sha256) problems.push(`${key}: ${f.path} at the location does not match its sha256`);
      if (sha256Of(path.join(shared.hostDir, f.path)) !== f.sha256)
        problems.push(`${key}: ${f.path} on the shared volume does not match the sha256 in the manifest`);
    }
    rows.push([
      `${namespace}/${vm}`,
      m.node,
      String(m.round),
      bytes.toLocaleString("en-US"),
      String(m.files.length),
      m.files[0]?.sha256.slice(0, 12) ?? "",
      String(m.freeze.windowMs),
      m.indication,
    ]);
  }

  say();
  say(
    `Captured (from the NodeSnapshots' status and the manifests under ${status.backupPath ?? "?"}/ at the location):`,
  );
  for (const line of table(
    ["VM", "NODE", "ROUND", "BYTES", "FILES", "SHA256", "FREEZE MS", "INDICATION"],
    rows,
    new Set([2, 3, 4, 6]),
  ))
    say(`  ${line}`);
  say(
    `  ${plural(rows.length, "VM")}, ${plural(totalFiles, "file")}, ${mib(totalBytes)}; method ${[...methods].join(", ") || "?"}; ` +
      (problems.length ? `${plural(problems.length, "problem")}:` : "every file re-hashed: copies and sources match"),
  );
  for (const p of problems) say(`    ${p}`);
  for (const missing of status.missing ?? [])
    say(`  missing: ${missing.namespace}/${missing.name} (${missing.reason}) ${missing.message ?? ""}`);
  const excluded = VMS.filter((vm) => vm.labels?.[EXCLUDE_LABEL]).map((vm) => vm.name);
  if (excluded.length) say(`  not selected: ${excluded.join(", ")} (labelled ${EXCLUDE_LABEL})`);

  const calls = kubevirt.callsFor(NAMESPACE);
  const freezes = calls.filter((c) => c.op === "freeze").length;
  const thaws = calls.filter((c) => c.op === "unfreeze").length;
  // The double records the node each VM ran on when the call arrived: it must be the node that captured it.
  const elsewhere = calls.filter((c) => c.node !== capturedOn.get(c.name)).length;
  say(
    `  KubeVirt API: ${plural(freezes, "freeze")} and ${plural(thaws, "unfreeze")}, ` +
      (elsewhere
        ? `${elsewhere} of them while the VM ran on another node than the one that captured it`
        : "each while the VM ran on the node that captured it"),
  );
  say();
  say(`$ kubectl get fb -n ${NAMESPACE}`);
  say(cp.kubectl(["get", "fb", "-n", NAMESPACE]).trimEnd());
  say(`$ kubectl get nodesnapshots -n ${NAMESPACE} -l ${LABEL_BACKUP}=${name}`);
  say(cp.kubectl(["get", "nodesnapshots", "-n", NAMESPACE, "-l", `${LABEL_BACKUP}=${name}`]).trimEnd());
  say();
  const ok = status.phase === "Completed" && problems.length === 0;
  say(
    `${ok ? "OK" : "FAILED"}: backup ${status.phase ?? "unknown"} in ${seconds(Date.now() - backupCreatedAt)}` +
      ` (whole demo ${seconds(Date.now() - startedAt)}); stopping everything`,
  );
  return ok ? 0 : 1;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      "make demo needs root: the pod runner runs the node agent's pods in mount namespaces of their own\n" +
        "and bind-mounts the volumes into them (try: sudo make demo)\n",
    );
    return 2;
  }
  const abort = new AbortController();
  // Handled for as long as the demo runs: a second signal (tsx relays the first one to this process
  // too) must not end the process before everything is stopped.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!abort.signal.aborted) say(`\n${signal}: stopping`);
    abort.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const cleanups: Array<() => Promise<void> | void> = [];
  try {
    return await demo(abort.signal, cleanups);
  } catch (err) {
    // Ctrl-C reaches the control plane's processes too, so whatever was starting fails: not worth a trace.
    if (abort.signal.aborted) return 130;
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  } finally {
    // Reverse order: the operator and the watchers first, the control plane last, then the directories.
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        process.stderr.write(`cleanup: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

process.exitCode = await main();
