// `make demo`: the whole product in one command, on a throw-away local cluster. It starts a real
// control plane with 3 simulated nodes, the KubeVirt freeze/unfreeze API double, a simulated KubeVirt VM
// controller (it runs the VirtualMachines' instances and carries out live migrations) and the pod runner
// (which executes the node agent's pods as local processes, hence root), creates VirtualMachines with real
// disk files on a shared volume, starts a real S3 server (SeaweedFS, test/harness/object-store.ts) and
// makes it the backup location (samples/backuplocation.yaml's BackupLocation offsite, with a credentials
// Secret), runs the operator in-process as its own ServiceAccount, applies samples/federatedbackup.yaml
// pointed at that BackupLocation, prints the backup's progress node by node as it happens, and shows what
// was captured, read from the status and from the manifests in the bucket, each copy in the bucket checked
// against its sha256. Then a bad upgrade: the disks of the VMs samples/workloadrestore.yaml restores are
// overwritten and one of them is live-migrated to another node; the demo applies that sample, prints the
// restore's progress, plan and results (the restore reads the bucket), checks that every restored disk is
// byte-identical to its backup and to its copy in the bucket and that each VM runs again on its restore
// node, and ends with the digest (`fedbackup digest`). Exit status 0 only if the backup and the restore
// are Completed and every check holds.
// Everything it starts is stopped and every directory it creates is removed, also on Ctrl-C.
import { createHash, randomBytes } from "node:crypto";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as yaml from "js-yaml";
import type { VirtualMachineInstance } from "../src/api/kubevirt.js";
import { LABEL_BACKUP, LABEL_RESTORE } from "../src/api/labels.js";
import type {
  BackupLocation,
  FederatedBackup,
  FederatedBackupStatusNode,
  NodeRestore,
  NodeSnapshot,
  WorkloadRestore,
} from "../src/api/v1alpha1/index.js";
import { runDigest } from "../src/cli/digest.js";
import { Manager } from "../src/controllers/manager.js";
import { CREATOR_POLICY_GRACE_MS, CREATOR_POLICY_NAME } from "../src/controllers/runtime/creator-access.js";
import { ANNOTATION_RESTORE_HOLD, HOSTNAME_LABEL } from "../src/controllers/workloadrestore/vm-hold.js";
import type { DigestRow } from "../src/digest/index.js";
import { AccessResources } from "../src/k8s/access-review.js";
import { KubeClient } from "../src/k8s/client.js";
import { Informer, type InformerEvent } from "../src/k8s/informer.js";
import { Resources } from "../src/k8s/resources.js";
import type { KubeObject } from "../src/k8s/types.js";
import { createLogger } from "../src/telemetry/logger.js";
import { OperatorMetrics } from "../src/telemetry/metrics.js";
import { countBackupObjects } from "../test/harness/backup-objects.js";
import { REPO_ROOT } from "../test/harness/binaries.js";
import { ControlPlane, defaultNodes } from "../test/harness/control-plane.js";
import { applyOperatorRbac } from "../test/harness/operator-rbac.js";
import { KubeVirtDouble } from "../test/harness/kubevirt-double.js";
import { SimulatedVmController, type VirtualMachine } from "../test/harness/kubevirt-vms.js";
import { startObjectStore } from "../test/harness/object-store.js";
import { PodRunner } from "../test/harness/pod-runner.js";
import {
  createVirtualMachine,
  createVolume,
  diskPaths,
  NODE_MOUNT_PATH,
  type VmFixture,
} from "../test/harness/workloads.js";

const NAMESPACE = "demo";
const OPERATOR_NAMESPACE = "fedbackup-system";
const OPERATOR_SERVICE_ACCOUNT = "fedbackup-operator";
const SHARED_CLAIM = "vmdisks";
const SAMPLE = "samples/federatedbackup.yaml";
/** Its S3 BackupLocation (offsite) is the demo's, pointed at the demo's S3 server. */
const LOCATION_SAMPLE = "samples/backuplocation.yaml";
/** The key prefix of every backup of the demo's BackupLocation (the sample's is cluster-a). */
const LOCATION_PREFIX = "demo";
/** The ClusterRole (and binding) that lets the operator read the location's credentials Secret. */
const SECRET_READS = "fedbackup-operator-s3-secrets";
const LOCATION_TIMEOUT_MS = 30_000;
const RESTORE_SAMPLE = "samples/workloadrestore.yaml";
const BACKUP_TIMEOUT_MS = 120_000;
const RESTORE_TIMEOUT_MS = 150_000;
/** How long a live migration, or a restored VM's release by the restore, may take. */
const SETTLE_TIMEOUT_MS = 20_000;
const EXCLUDE_LABEL = "fedbackup.io/exclude";
/**
 * The bad upgrade also moves one of the VMs it breaks away from the rest of its group (shop: web-0 and
 * db-0 in samples/workloadrestore.yaml): the restore finds it there and live-migrates it back.
 */
const MOVED = { name: "web-0", to: "node-c" };

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
type Location = BackupLocation & KubeObject;
type Step = NodeSnapshot & KubeObject;
type Restore = WorkloadRestore & KubeObject;
type RestoreStep = NodeRestore & KubeObject;
type Vmi = VirtualMachineInstance & KubeObject;
interface Migration extends KubeObject {
  spec: { vmiName: string; addedNodeSelector?: Record<string, string> };
  status?: { phase?: string };
}
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
/** When the backup, then the restore, was created: the origin of the progress lines' timestamps. */
let phaseStartedAt = 0;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const say = (line = ""): void => void process.stdout.write(`${line}\n`);
const step = (what: string, detail: string): void => say(`  ${what.padEnd(14)} ${detail}`);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const stamp = (): string => `[${((Date.now() - phaseStartedAt) / 1000).toFixed(1).padStart(4)}s]`;
const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
const sum = (values: Array<number | undefined>): number => values.reduce<number>((n, v) => n + (v ?? 0), 0);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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

// ---- live progress of the restore ----

/**
 * Prints a line whenever the restore's phase or coordinating node or a node step's phase changes, and,
 * once following, whenever an instance of one of the restored VMs starts, moves or stops.
 */
class RestoreProgressPrinter {
  private phase = "";
  private coordinatingNode = "";
  /** The node of the step last shown starting its work: it holds the shared volume's Lease by then. */
  private announcedNode = "";
  private following = false;
  private readonly stepPhases = new Map<string, string>();
  private readonly busySince = new Map<string, number>();
  /** Per VM: its instance as last seen. */
  private readonly instances = new Map<string, { uid: string; node: string }>();

  constructor(
    private readonly restores: Informer<Restore>,
    private readonly steps: Informer<RestoreStep>,
    private readonly name: string,
    private readonly vms: ReadonlySet<string>,
  ) {}

  /** From now on the VMs' instances are reported too (before, only recorded). */
  follow(): void {
    this.following = true;
  }

  update(): void {
    const r = this.restores.get(`${NAMESPACE}/${this.name}`);
    const s = r?.status ?? {};
    const phase = s.phase ?? "";
    if (!r || !phase) return;
    const steps = this.steps
      .list((st) => st.spec.restoreUID === r.metadata.uid)
      .sort((a, b) => a.spec.order - b.spec.order);
    const planned = new Set(
      (s.plan ?? []).flatMap((e) => (e.action !== "Skip" && e.restoreNode ? [e.restoreNode] : [])),
    );
    // The steps are created together with the plan: the order of the nodes is theirs.
    if (phase === "InProgress" && steps.length < planned.size) return;
    const before: string[] = [];
    const after: string[] = [];
    if (phase !== this.phase) (FINISHED.includes(phase) ? after : before).push(this.phaseText(r, steps));
    const coordinating = s.coordinatingNode ?? "";
    const nodeLines: string[] = [];
    for (const step of steps) {
      const stepPhase = step.status?.phase ?? "Pending";
      const previous = this.stepPhases.get(step.metadata.name!);
      if (previous === stepPhase) continue;
      this.stepPhases.set(step.metadata.name!, stepPhase);
      // The operator claims the shared volume for a step's node before it touches anything of the step.
      const announce = !["Pending", "Succeeded", "Failed"].includes(stepPhase) && (previous ?? "Pending") === "Pending";
      if (announce) this.announcedNode = step.spec.node;
      // Said once: not when the restore's status named the node already.
      const announcePrefix = announce && this.coordinatingNode !== step.spec.node;
      nodeLines.push(
        `${step.spec.node} (${step.spec.order}/${steps.length}) ${this.stepText(step, stepPhase, announcePrefix)}`,
      );
    }
    if (coordinating !== this.coordinatingNode && (!coordinating || coordinating !== this.announcedNode)) {
      nodeLines.push(
        coordinating
          ? `${coordinating} is now the coordinating node of the shared volume`
          : `the shared volume is released (no coordinating node)`,
      );
    }
    for (const text of [...before, ...nodeLines, ...after]) say(`${stamp()} ${phase.padEnd(15)} ${text}`);
    this.phase = phase;
    this.coordinatingNode = coordinating;
  }

  /** A VM's instance appeared, moved to another node or went away. */
  instance(event: InformerEvent, vmi: Vmi): void {
    const name = vmi.metadata.name!;
    const node = vmi.status?.nodeName ?? "";
    const known = this.instances.get(name);
    let text: string | undefined;
    if (event === "delete") {
      this.instances.delete(name);
      text = `${name} stopped${known?.node ? ` on ${known.node}` : ""}`;
    } else {
      this.instances.set(name, { uid: vmi.metadata.uid!, node });
      // A new instance is started once it has a node; a known one with another node has moved.
      if (!node) text = undefined;
      else if (!known || known.uid !== vmi.metadata.uid || !known.node) text = `${name} started on ${node}`;
      else if (known.node !== node) text = `${name} live-migrated ${known.node} → ${node}`;
    }
    if (text && this.following && this.vms.has(name)) say(`${stamp()} ${this.phase.padEnd(15)} ${text}`);
  }

  private phaseText(r: Restore, steps: RestoreStep[]): string {
    const s = r.status!;
    switch (s.phase) {
      case "New":
        return "accepted";
      case "Planning":
        return "choosing a restore node and an action for every VM";
      case "InProgress": {
        const plan = s.plan ?? [];
        const todo = plan.filter((e) => e.action !== "Skip").length;
        const order = steps.map((st) => `${st.spec.node} (${st.spec.workloads.map((w) => w.name).join(" ")})`);
        const skipped = plan.length - todo;
        return (
          `planned: ${plural(todo, "VM")} on ${plural(steps.length, "node")}, one node at a time: ${order.join(" → ")}` +
          (skipped ? `; ${skipped} skipped` : "")
        );
      }
      default: {
        const p = s.progress ?? {};
        const failed = s.conditions?.find((c) => c.type === "Failed" && c.status === "True");
        return (
          `${p.restored ?? "0/0"} VMs restored, ${p.workloadsFailed ?? 0} failed` +
          (failed ? `: ${failed.reason}: ${failed.message}` : "")
        );
      }
    }
  }

  private stepText(step: RestoreStep, phase: string, announce: boolean): string {
    const key = step.metadata.name!;
    const workloads = step.spec.workloads;
    const vms = plural(workloads.length, "VM");
    const names = workloads.map((w) => w.name).join(" ");
    const status = step.status ?? {};
    if (phase !== "Pending" && !this.busySince.has(key)) this.busySince.set(key, Date.now());
    switch (phase) {
      case "Preparing": {
        const what = workloads.map((w) => {
          switch (w.action) {
            case "MigrateThenRestore":
              return `live-migrating ${w.name} here from ${w.activeNode ?? "?"}, then stopping it`;
            case "StopThenRestore":
              return `stopping ${w.name} on ${w.activeNode ?? "?"}`;
            case "RestoreThenStart":
              return `${w.name} (not running)`;
            default:
              return `stopping ${w.name}`;
          }
        });
        return `${announce ? "coordinating node, " : ""}preparing ${vms}: ${what.join(", ")}`;
      }
      case "Restoring":
        return (
          `${announce ? "coordinating node, " : ""}restore Job: the node agent reads the backup's files from ` +
          `${locationText(step.spec.location)}, checks them against their sha256 and writes the disks of ${names} back`
        );
      case "Starting": {
        const results = status.results ?? [];
        const written = results.filter((x) => x.restored);
        const verified = written.length > 0 && written.every((x) => x.verified);
        const notWritten = results.filter((x) => !x.restored).map((x) => `${x.name} (${x.reason ?? "not restored"})`);
        if (written.length === 0) return `no disk written (${notWritten.join(", ")}); starting ${names} here again`;
        return (
          `disks written: ${plural(sum(written.map((x) => x.files)), "file")}, ${mib(sum(written.map((x) => x.bytes)))}` +
          `${verified ? ", every sha256 verified" : ", NOT verified"}` +
          `${notWritten.length ? `; not written: ${notWritten.join(", ")}` : ""}; starting ${names} here`
        );
      }
      case "Succeeded":
      case "Failed": {
        const since = this.busySince.get(key);
        const took = since === undefined ? "" : ` in ${seconds(Date.now() - since)}`;
        const outcomes = status.outcomes ?? [];
        const restored = outcomes.filter((o) => o.phase === "Restored");
        const failures = outcomes
          .filter((o) => o.phase !== "Restored")
          .map((o) => `${o.name}: ${o.message ?? "failed"}`);
        return (
          `${phase === "Succeeded" ? "done" : "failed"}${took}: restored ${restored.length}/${vms}` +
          `${restored.length ? `, ${mib(sum(restored.map((o) => o.bytes)))}: ${restored.map((o) => o.name).join(" ")}` : ""}` +
          `${failures.length ? `; ${failures.join("; ")}` : ""}${phase === "Failed" && status.message ? ` (${status.message})` : ""}`
        );
      }
      default:
        return `waiting for its turn (${vms}: ${names})`;
    }
  }
}

/** Where a restore step reads the backups, as its spec records it. */
function locationText(location: RestoreStep["spec"]["location"]): string {
  if (location.s3)
    return `s3://${path.posix.join(location.s3.bucket, location.s3.prefix ?? "")}/ at ${location.s3.endpoint}`;
  return `PVC ${location.persistentVolumeClaim?.claimName ?? "?"}`;
}

// ---- the demo ----

/** The named object once it is finished; undefined on Ctrl-C; as it is when it took too long. */
async function waitForFinish<T extends KubeObject & { status?: { phase?: string } }>(
  informer: Informer<T>,
  name: string,
  what: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const o = informer.get(`${NAMESPACE}/${name}`);
    if (o && FINISHED.includes(o.status?.phase ?? "")) return o;
    if (signal.aborted) return undefined;
    if (Date.now() > deadline) {
      say(`the ${what} did not finish within ${seconds(timeoutMs)}`);
      return o;
    }
    await sleep(100);
  }
}

/** Polls `problem` until it finds none (resolves undefined) or `timeoutMs` passed (resolves the last one). */
async function settle(
  timeoutMs: number,
  signal: AbortSignal,
  problem: () => Promise<string | undefined>,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await problem();
    if (found === undefined || signal.aborted || Date.now() > deadline) return found;
    await sleep(100);
  }
}

function sha256Of(file: string): string {
  return sha256(readFileSync(file));
}

function loadSample(location: string): Backup {
  const doc = yaml.load(readFileSync(path.join(REPO_ROOT, SAMPLE), "utf8")) as Backup;
  // The sample as written, moved to the demo namespace, pointed at the demo's shared claim and, instead
  // of its location claim, at the BackupLocation.
  doc.metadata = { name: doc.metadata.name, namespace: NAMESPACE };
  doc.spec.sharedVolume = { ...doc.spec.sharedVolume, claimName: SHARED_CLAIM, nodeMountPath: NODE_MOUNT_PATH };
  delete doc.spec.location;
  doc.spec.locationRef = { name: location };
  return doc;
}

/** The sample's S3 BackupLocation, moved to the demo namespace (its server is set by the caller). */
function loadLocationSample(): Location & { spec: { s3: NonNullable<BackupLocation["spec"]["s3"]> } } {
  const docs = yaml.loadAll(readFileSync(path.join(REPO_ROOT, LOCATION_SAMPLE), "utf8")) as Location[];
  const doc = docs.find((d) => d.spec.s3);
  if (!doc?.spec.s3) throw new Error(`${LOCATION_SAMPLE} has no S3 BackupLocation`);
  doc.metadata = { name: doc.metadata.name, namespace: NAMESPACE };
  return { ...doc, spec: { ...doc.spec, s3: doc.spec.s3 } };
}

/**
 * As the chart does with backupLocations.s3=true (deploy/rbac.yaml is rendered without it): get on Secrets
 * for the operator, which reads the location's credentials Secret to validate it.
 */
async function grantOperatorSecretReads(client: KubeClient): Promise<void> {
  const rbac = (plural: string, kind: string) => ({
    group: "rbac.authorization.k8s.io",
    version: "v1",
    plural,
    kind,
    namespaced: false,
  });
  await client.apply(rbac("clusterroles", "ClusterRole"), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: SECRET_READS },
    rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }],
  } as KubeObject);
  await client.apply(rbac("clusterrolebindings", "ClusterRoleBinding"), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: SECRET_READS },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: SECRET_READS },
    subjects: [{ kind: "ServiceAccount", name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }],
  } as KubeObject);
}

/**
 * Waits until the admission policies that record who created a resource have existed for the operator's
 * grace period: before that, the operator does not trust the creator they record, and a BackupLocation
 * created earlier would be Unavailable until its next validation. Returns how long it waited.
 */
async function creatorPoliciesSettled(client: KubeClient): Promise<number> {
  const types = [
    AccessResources.MutatingAdmissionPolicy,
    AccessResources.MutatingAdmissionPolicyBinding,
    AccessResources.ValidatingAdmissionPolicy,
    AccessResources.ValidatingAdmissionPolicyBinding,
  ];
  let newest = 0;
  for (const type of types) {
    const policy = await client.get(type, undefined, CREATOR_POLICY_NAME);
    newest = Math.max(newest, Date.parse(policy.metadata.creationTimestamp ?? ""));
  }
  // Creation times are whole seconds: one more for the rounding.
  const wait = Math.max(0, newest + CREATOR_POLICY_GRACE_MS + 1_000 - Date.now());
  await sleep(wait);
  return wait;
}

/** The whole object `key` of the bucket. */
async function getObject(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!out.Body) throw new Error(`s3://${bucket}/${key}: no body`);
  return Buffer.from(await out.Body.transformToByteArray());
}

/** Every object of the bucket under `prefix`, key and size, page after page. */
async function listObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<Array<{ key: string; size: number }>> {
  const objects: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const o of page.Contents ?? []) objects.push({ key: o.Key!, size: o.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

function loadRestoreSample(): Restore {
  const doc = yaml.load(readFileSync(path.join(REPO_ROOT, RESTORE_SAMPLE), "utf8")) as Restore;
  // The sample as written, moved to the demo namespace, VMs named in it included.
  const from = doc.metadata.namespace ?? "default";
  const moved = <T extends { namespace: string }>(ref: T): T =>
    ref.namespace === from ? { ...ref, namespace: NAMESPACE } : ref;
  doc.metadata = { name: doc.metadata.name, namespace: NAMESPACE };
  if (doc.spec.workloads) doc.spec.workloads = doc.spec.workloads.map(moved);
  if (doc.spec.groups) doc.spec.groups = doc.spec.groups.map((g) => ({ ...g, workloads: g.workloads.map(moved) }));
  return doc;
}

async function demo(signal: AbortSignal, cleanups: Array<() => Promise<void> | void>): Promise<number> {
  say("fedbackup demo: KubeVirt VMs on a shared volume, backed up one node at a time, then restored");
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
  const vmController = new SimulatedVmController(admin);
  cleanups.push(() => vmController.stop());
  await vmController.start();
  step("", "VM controller (simulated): runs the VirtualMachines' instances as runStrategy says, live-migrates them");
  const runner = new PodRunner(cp);
  cleanups.push(() => runner.stop());
  await runner.start();
  step("pod runner", "executes the node agent's pods as local processes in mount namespaces of their own");
  if (signal.aborted) return 130;
  const locationManifest = loadLocationSample();
  const bucket = locationManifest.spec.s3.bucket;
  const storeStartedAt = Date.now();
  const store = await startObjectStore({ buckets: [bucket] });
  cleanups.push(() => store.stop());
  const s3 = store.client();
  cleanups.push(() => s3.destroy());
  // The sample's location on this server: its bucket and Secret name, the demo's prefix, path-style.
  locationManifest.spec.s3 = {
    ...locationManifest.spec.s3,
    ...store.location(bucket, LOCATION_PREFIX),
    credentialsSecretRef: locationManifest.spec.s3.credentialsSecretRef,
  };
  step(
    "object store",
    `SeaweedFS S3 at ${store.endpoint} (weed mini, data in a temp dir), bucket ${bucket}, ready in ${seconds(Date.now() - storeStartedAt)}`,
  );
  if (signal.aborted) return 130;

  await admin.create(Resources.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } });
  const root = mkdtempSync(path.join(os.tmpdir(), "fedbackup-demo-"));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const shared = await createVolume(admin, NAMESPACE, SHARED_CLAIM, path.join(root, "shared"));
  step(
    "volume",
    `namespace ${NAMESPACE}: PVC ${SHARED_CLAIM} (shared VM disks, on every node at ${NODE_MOUNT_PATH}), an RWX hostPath PV on a temp dir`,
  );
  for (const vm of VMS) await createVirtualMachine(admin, NAMESPACE, shared.hostDir, vm);
  const byNode = new Map<string, string[]>();
  for (const vm of VMS) {
    const size = mib((vm.disks ?? []).reduce((a, b) => a + b, 0));
    const label = `${vm.name} (${plural(vm.disks?.length ?? 1, "disk")}, ${size}${vm.labels?.[EXCLUDE_LABEL] ? `, ${EXCLUDE_LABEL}` : ""})`;
    byNode.set(vm.node!, [...(byNode.get(vm.node!) ?? []), label]);
  }
  step("VMs", `${VMS.length} running VirtualMachines with random disk data on the shared volume:`);
  for (const [node, vms] of [...byNode.entries()].sort()) step("", `${node}: ${vms.join(", ")}`);

  await applyOperatorRbac(admin);
  await grantOperatorSecretReads(admin);
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
    `in-process, as system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SERVICE_ACCOUNT} (RBAC of deploy/rbac.yaml, ` +
      `plus ClusterRole ${SECRET_READS}: get on Secrets, as the chart grants with backupLocations.s3=true, ` +
      `to read the location's credentials)`,
  );
  if (signal.aborted) return 130;

  // ---- the backup location: the S3 server, through a BackupLocation and its credentials Secret ----
  const locationName = locationManifest.metadata.name!;
  const secretName = locationManifest.spec.s3.credentialsSecretRef.name;
  const waited = await creatorPoliciesSettled(admin);
  if (signal.aborted) return 130;
  say();
  say(
    `$ kubectl create secret generic ${secretName} -n ${NAMESPACE} --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=...` +
      `   # the S3 server's key pair`,
  );
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  await admin.apply(Resources.Secret, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: secretName, namespace: NAMESPACE },
    type: "Opaque",
    data: { AWS_ACCESS_KEY_ID: b64(store.accessKeyId), AWS_SECRET_ACCESS_KEY: b64(store.secretAccessKey) },
  } as KubeObject);
  const l = locationManifest.spec.s3;
  say(
    `$ kubectl apply -f ${LOCATION_SAMPLE}   # ${NAMESPACE}/${locationName}: endpoint ${l.endpoint}, bucket ${l.bucket}, ` +
      `prefix ${l.prefix}, forcePathStyle ${String(l.forcePathStyle)}` +
      (waited > 0 ? ` (after ${seconds(waited)} for the creator policies to settle)` : ""),
  );
  const locationCreatedAt = Date.now();
  await admin.create(Resources.BackupLocation, locationManifest);
  let location: Location | undefined;
  await settle(LOCATION_TIMEOUT_MS, signal, async () => {
    location = await admin.get<Location>(Resources.BackupLocation, NAMESPACE, locationName);
    return location.status?.phase === "Available" ? undefined : (location.status?.phase ?? "no phase");
  });
  if (signal.aborted) return 130;
  const ls = location?.status ?? {};
  step(
    "location",
    `BackupLocation ${NAMESPACE}/${locationName}: ${ls.phase ?? "no phase"} (${ls.reason ?? "no reason"}` +
      `${ls.message ? `: ${ls.message}` : ""}) after ${seconds(Date.now() - locationCreatedAt)}`,
  );
  if (ls.phase !== "Available") {
    say();
    say(`FAILED: the BackupLocation ${locationName} is not Available; no backup can use it; stopping everything`);
    return 1;
  }

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

  const manifest = loadSample(locationName);
  const name = manifest.metadata.name!;
  say();
  say(
    `$ kubectl apply -f ${SAMPLE}   # as ${NAMESPACE}/${name}, claim ${SHARED_CLAIM}, locationRef ${locationName} ` +
      `instead of the sample's location claim, started after ${seconds(Date.now() - startedAt)}`,
  );
  const backupCreatedAt = Date.now();
  phaseStartedAt = backupCreatedAt;
  await admin.create(Resources.FederatedBackup, manifest);
  const fb = await waitForFinish(backups, name, "backup", BACKUP_TIMEOUT_MS, signal);
  if (!fb) return 130;
  const backupTook = Date.now() - backupCreatedAt;
  const status = fb.status ?? {};

  // ---- summary: status, NodeSnapshots, manifests and copies in the bucket ----
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
  // Paths at the location (status.backupPath, the captures' manifests) are relative to the prefix.
  const prefix = locationManifest.spec.s3.prefix ?? "";
  const keyOf = (locationPath: string) => path.posix.join(prefix, locationPath);
  /** Per VM captured: its manifest, and the key prefix of its copies in the bucket. */
  const manifests = new Map<string, { m: VmManifest; filesKey: string }>();
  const sorted = [...captures.entries()].sort(([a, x], [b, y]) => x.order - y.order || a.localeCompare(b));
  for (const [key, { manifestPath }] of sorted) {
    const [namespace, vm] = key.split("/") as [string, string];
    let m: VmManifest;
    try {
      m = JSON.parse((await getObject(s3, bucket, keyOf(manifestPath))).toString("utf8")) as VmManifest;
    } catch (err) {
      problems.push(`${key}: no readable manifest at s3://${bucket}/${keyOf(manifestPath)}: ${(err as Error).message}`);
      continue;
    }
    methods.add(m.method);
    capturedOn.set(vm, m.node);
    const filesKey = keyOf(path.posix.join(path.posix.dirname(manifestPath), "files"));
    manifests.set(vm, { m, filesKey });
    const bytes = m.files.reduce((n, f) => n + f.bytes, 0);
    totalBytes += bytes;
    totalFiles += m.files.length;
    // Every copy in the bucket must hash to its manifest's sha256, and so must the source disk.
    for (const f of m.files) {
      const copyKey = path.posix.join(filesKey, f.path);
      const copy = await getObject(s3, bucket, copyKey).catch((err: Error) => err);
      if (copy instanceof Error)
        problems.push(`${key}: ${f.path}: no copy at s3://${bucket}/${copyKey}: ${copy.message}`);
      else if (sha256(copy) !== f.sha256) problems.push(`${key}: ${f.path} in the bucket does not match its sha256`);
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
    `Captured (from the NodeSnapshots' status and the manifests under s3://${bucket}/${keyOf(status.backupPath ?? "?")}/):`,
  );
  for (const line of table(
    ["VM", "NODE", "ROUND", "BYTES", "FILES", "SHA256", "FREEZE MS", "INDICATION"],
    rows,
    new Set([2, 3, 4, 6]),
  ))
    say(`  ${line}`);
  // The whole bucket: what the backup left under its directory (its VMs' disk images, manifests and
  // definitions, each node run's manifest), and anything else.
  const backupPrefix = `${keyOf(status.backupPath ?? "?")}/`;
  const objects = await listObjects(s3, bucket, "");
  const ofBackup = objects.filter((o) => status.backupPath && o.key.startsWith(backupPrefix));
  const notOfBackup = objects.filter((o) => !ofBackup.includes(o));
  if (ofBackup.length === 0) problems.push(`no objects under s3://${bucket}/${backupPrefix}`);
  const bytesOf = (list: typeof objects) => sum(list.map((o) => o.size));
  say(
    `  ${plural(rows.length, "VM")}, ${plural(totalFiles, "file")}, ${mib(totalBytes)}; method ${[...methods].join(", ") || "?"}; ` +
      (problems.length
        ? `${plural(problems.length, "problem")}:`
        : "every copy read back from the bucket and re-hashed: copies and sources match"),
  );
  for (const p of problems) say(`    ${p}`);
  say(
    `  bucket ${bucket} (ListObjectsV2): ${plural(objects.length, "object")}, ${bytesOf(objects).toLocaleString("en-US")} bytes ` +
      `(${mib(bytesOf(objects))}); under ${backupPrefix}: ` +
      countBackupObjects(ofBackup.map((o) => o.key.slice(backupPrefix.length)))
        .map(([kind, n]) => plural(n, kind))
        .join(", ") +
      (notOfBackup.length ? `; elsewhere: ${notOfBackup.map((o) => `${o.key} (${o.size} bytes)`).join(", ")}` : ""),
  );
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
  const backupOk = status.phase === "Completed" && problems.length === 0;
  if (!backupOk) {
    say();
    say(
      `FAILED: backup ${status.phase ?? "unknown"} in ${seconds(backupTook)}` +
        `${problems.length ? ` with ${plural(problems.length, "problem")}` : ""}; no restore without a good backup` +
        ` (whole demo ${seconds(Date.now() - startedAt)}); stopping everything`,
    );
    return 1;
  }
  if (signal.aborted) return 130;

  // ---- a bad upgrade: the disks of the VMs the restore sample restores, overwritten; one of them moved ----
  const restoreManifest = loadRestoreSample();
  const restoreName = restoreManifest.metadata.name!;
  const listed = (restoreManifest.spec.workloads ?? []).filter((w) => w.namespace === NAMESPACE).map((w) => w.name);
  // No list: the sample restores every VM of the backup.
  const damaged = VMS.filter((vm) => (listed.length ? listed.includes(vm.name) : capturedOn.has(vm.name)));
  const others = VMS.filter((vm) => !damaged.includes(vm));
  const vmis = new Informer<Vmi>(admin, Resources.VirtualMachineInstance, { namespace: NAMESPACE }, { warn: () => {} });
  const restores = new Informer<Restore>(
    admin,
    Resources.WorkloadRestore,
    { namespace: NAMESPACE },
    { warn: () => {} },
  );
  const restoreSteps = new Informer<RestoreStep>(
    admin,
    Resources.NodeRestore,
    { namespace: NAMESPACE },
    { warn: () => {} },
  );
  cleanups.push(async () => {
    await Promise.all([vmis.stop(), restores.stop(), restoreSteps.stop()]);
  });
  const restorePrinter = new RestoreProgressPrinter(
    restores,
    restoreSteps,
    restoreName,
    new Set(damaged.map((vm) => vm.name)),
  );
  vmis.on((event, vmi) => restorePrinter.instance(event, vmi));
  restores.on(() => restorePrinter.update());
  restoreSteps.on(() => restorePrinter.update());
  await Promise.all([vmis.start(), restores.start(), restoreSteps.start()]);

  say();
  say(
    `After the backup, a bad upgrade: the disks of ${damaged.map((vm) => vm.name).join(", ")} ` +
      `(the VMs ${RESTORE_SAMPLE} restores) overwritten, and ${MOVED.name} moved to ${MOVED.to}`,
  );
  /** The disks of the damaged VMs as they were backed up (the backup checked them against its manifests). */
  const beforeDamage = new Map<string, Buffer>();
  for (const vm of damaged) {
    const rels = diskPaths(NAMESPACE, vm);
    const hashes: string[] = [];
    let size = 0;
    for (const rel of rels) {
      const file = path.join(shared.hostDir, rel);
      const original = readFileSync(file);
      beforeDamage.set(rel, original);
      const garbage = randomBytes(original.length);
      writeFileSync(file, garbage);
      size += garbage.length;
      hashes.push(`${path.basename(rel)} ${sha256(original).slice(0, 12)} → ${sha256(garbage).slice(0, 12)}`);
    }
    step(
      "overwritten",
      `${vm.name}: ${plural(rels.length, "disk")}, ${mib(size)} of new random bytes (sha256 ${hashes.join(", ")})`,
    );
  }
  const movedFrom = vmis.get(`${NAMESPACE}/${MOVED.name}`)?.status?.nodeName ?? "?";
  const migrationName = `${MOVED.name}-to-${MOVED.to}`;
  const migrationStarted = Date.now();
  await admin.create(Resources.VirtualMachineInstanceMigration, {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachineInstanceMigration",
    metadata: { name: migrationName, namespace: NAMESPACE },
    spec: { vmiName: MOVED.name, addedNodeSelector: { [HOSTNAME_LABEL]: MOVED.to } },
  });
  let migration: Migration | undefined;
  const stuck = await settle(SETTLE_TIMEOUT_MS, signal, async () => {
    migration = await admin.get<Migration>(Resources.VirtualMachineInstanceMigration, NAMESPACE, migrationName);
    const phase = migration.status?.phase ?? "";
    const node = vmis.get(`${NAMESPACE}/${MOVED.name}`)?.status?.nodeName;
    return phase === "Failed" || (phase === "Succeeded" && node === MOVED.to) ? undefined : `${phase || "no phase"}`;
  });
  if (signal.aborted) return 130;
  const movedTo = vmis.get(`${NAMESPACE}/${MOVED.name}`)?.status?.nodeName ?? "?";
  step(
    "migrated",
    `${MOVED.name} live-migrated ${movedFrom} → ${movedTo} in ${seconds(Date.now() - migrationStarted)} ` +
      `(VirtualMachineInstanceMigration ${NAMESPACE}/${migrationName}: ${migration?.status?.phase ?? stuck ?? "?"})`,
  );
  if (movedTo !== MOVED.to) {
    say();
    say(`FAILED: the live migration of ${MOVED.name} to ${MOVED.to} did not happen; stopping everything`);
    return 1;
  }
  /** The VMs outside the restore, to check it leaves them alone: their disks and their instances. */
  const untouched = new Map(
    others.map((vm) => [
      vm.name,
      {
        disks: diskPaths(NAMESPACE, vm).map((rel) => sha256Of(path.join(shared.hostDir, rel))),
        vmi: vmis.get(`${NAMESPACE}/${vm.name}`),
      },
    ]),
  );

  // ---- the restore ----
  say();
  say(
    `$ kubectl apply -f ${RESTORE_SAMPLE}   # as ${NAMESPACE}/${restoreName}: ` +
      `${damaged.map((vm) => vm.name).join(", ")} from backup ${restoreManifest.spec.backupRef?.name ?? "(latest)"}, ` +
      `placement ${restoreManifest.spec.placement?.policy ?? "ActiveNode"}, conflictPolicy ${restoreManifest.spec.conflictPolicy ?? "Migrate"}` +
      `${(restoreManifest.spec.groups ?? []).map((g) => `, group ${g.name}: ${g.workloads.map((w) => w.name).join(" + ")}`).join("")}`,
  );
  const restoreCreatedAt = Date.now();
  phaseStartedAt = restoreCreatedAt;
  restorePrinter.follow();
  await admin.create(Resources.WorkloadRestore, restoreManifest);
  const wr = await waitForFinish(restores, restoreName, "restore", RESTORE_TIMEOUT_MS, signal);
  if (!wr) return 130;
  const restoreTook = Date.now() - restoreCreatedAt;
  const rs = wr.status ?? {};
  const plan = rs.plan ?? [];
  const results = rs.results ?? [];

  say();
  say(`Plan (status.plan of ${NAMESPACE}/${restoreName}):`);
  for (const line of table(
    ["VM", "ACTIVE NODE", "RESTORE NODE", "ACTION", "GROUP", "BACKUP"],
    plan.map((e) => [
      `${e.namespace}/${e.name}`,
      e.activeNode || "-",
      e.restoreNode ?? "-",
      e.action,
      e.group ?? "-",
      e.backup ?? "-",
    ]),
    new Set(),
  ))
    say(`  ${line}`);
  for (const e of plan) if (e.reason) say(`  ${e.name}: ${e.reason}`);
  say();
  say(`Results (status.results, ${rs.progress?.restored ?? "?"} restored):`);
  for (const line of table(
    ["VM", "NODE", "PHASE", "BYTES", "VERIFIED"],
    results.map((x) => [
      `${x.namespace}/${x.name}`,
      x.node ?? "-",
      x.phase,
      (x.bytes ?? 0).toLocaleString("en-US"),
      x.verified === undefined ? "-" : String(x.verified),
    ]),
    new Set([3]),
  ))
    say(`  ${line}`);
  for (const x of results) if (x.phase !== "Restored" && x.message) say(`  ${x.name}: ${x.message}`);

  // ---- checked for real: the disks, the VMs and their instances ----
  const restoreProblems: string[] = [];
  if (rs.phase !== "Completed") restoreProblems.push(`the restore is ${rs.phase ?? "unfinished"}, not Completed`);
  let restoredFiles = 0;
  let restoredBytes = 0;
  for (const vm of damaged) {
    const result = results.find((x) => x.namespace === NAMESPACE && x.name === vm.name);
    if (result?.phase !== "Restored" || result.verified !== true)
      restoreProblems.push(`${vm.name}: result ${result?.phase ?? "missing"}, verified ${String(result?.verified)}`);
    const backedUp = manifests.get(vm.name);
    if (!backedUp) restoreProblems.push(`${vm.name}: no manifest of the backup to compare with`);
    for (const rel of diskPaths(NAMESPACE, vm)) {
      const now = readFileSync(path.join(shared.hostDir, rel));
      restoredFiles++;
      restoredBytes += now.length;
      if (!now.equals(beforeDamage.get(rel)!))
        restoreProblems.push(`${rel} is not byte-identical to the disk as it was backed up`);
      const file = backedUp?.m.files.find((f) => f.path === rel);
      const copyKey = backedUp && path.posix.join(backedUp.filesKey, rel);
      const copy = copyKey && (await getObject(s3, bucket, copyKey).catch(() => undefined));
      if (!file) restoreProblems.push(`${rel} is not in the backup's manifest`);
      else if (!copy) restoreProblems.push(`${rel}: no copy at s3://${bucket}/${copyKey}`);
      else if (sha256(now) !== file.sha256 || !now.equals(copy))
        restoreProblems.push(`${rel} does not match its copy and sha256 in the bucket`);
    }
  }
  const runsOn: string[] = [];
  for (const e of plan.filter((x) => x.action !== "Skip")) {
    // A restored VM runs on its restore node, no longer held, pinned or stopped by the restore.
    const problem = await settle(SETTLE_TIMEOUT_MS, signal, async () => {
      const [vm, vmi] = await Promise.all([
        admin.get<VirtualMachine>(Resources.VirtualMachine, e.namespace, e.name),
        admin.get<Vmi>(Resources.VirtualMachineInstance, e.namespace, e.name).catch(() => undefined),
      ]);
      const where = vmi ? `${vmi.status?.phase ?? "no phase"} on ${vmi.status?.nodeName ?? "no node"}` : "not running";
      if (vmi?.status?.phase !== "Running" || vmi.status.nodeName !== e.restoreNode)
        return `${e.name}: ${where}, not Running on its restore node ${e.restoreNode}`;
      if (vm.metadata.annotations?.[ANNOTATION_RESTORE_HOLD]) return `${e.name}: still held by the restore`;
      if (vm.spec.template.spec.nodeSelector?.[HOSTNAME_LABEL]) return `${e.name}: still pinned to a node`;
      if (vm.spec.runStrategy !== "Always") return `${e.name}: runStrategy ${vm.spec.runStrategy}, not Always again`;
      return undefined;
    });
    if (signal.aborted) return 130;
    if (problem) restoreProblems.push(problem);
    else runsOn.push(`${e.name} on ${e.restoreNode}`);
  }
  for (const vm of others) {
    const before = untouched.get(vm.name)!;
    const now = vmis.get(`${NAMESPACE}/${vm.name}`);
    const disks = diskPaths(NAMESPACE, vm).map((rel) => sha256Of(path.join(shared.hostDir, rel)));
    if (disks.some((h, i) => h !== before.disks[i])) restoreProblems.push(`${vm.name}: its disks changed`);
    if (now?.metadata.uid !== before.vmi?.metadata.uid || now?.status?.nodeName !== before.vmi?.status?.nodeName)
      restoreProblems.push(`${vm.name}: its instance was stopped or moved`);
  }
  // The digest, as `fedbackup digest -n demo -o json` has it: the last backup and restore of every VM.
  let digestJson = "";
  const digestCode = await runDigest(
    ["--kubeconfig", cp.kubeconfigPath, "-n", NAMESPACE, "-o", "json"],
    (s) => void (digestJson += s),
    (s) => void (digestJson += s),
  );
  const digestRows = digestCode === 0 ? (JSON.parse(digestJson) as DigestRow[]) : [];
  if (digestCode !== 0) restoreProblems.push(`fedbackup digest -o json failed: ${digestJson.trim()}`);
  for (const row of digestRows) {
    const planned = plan.find((e) => e.name === row.name && e.action !== "Skip");
    if (capturedOn.has(row.name) && row.lastBackup?.backup !== `${NAMESPACE}/${name}`)
      restoreProblems.push(`digest: ${row.name} last backed up by ${row.lastBackup?.backup ?? "nothing"}`);
    if (planned && (row.lastRestore?.restore !== `${NAMESPACE}/${restoreName}` || row.node !== planned.restoreNode))
      restoreProblems.push(
        `digest: ${row.name} last restored by ${row.lastRestore?.restore ?? "nothing"}, on ${row.node}`,
      );
    if (!planned && row.lastRestore)
      restoreProblems.push(`digest: ${row.name} was restored by ${row.lastRestore.restore}`);
  }

  say();
  if (restoreProblems.length === 0) {
    say(
      `every restored disk matches its backup: ${plural(damaged.length, "VM")}, ${plural(restoredFiles, "file")}, ` +
        `${mib(restoredBytes)} byte-identical to the disks as backed up and to their copies in bucket ${bucket}`,
    );
    say(
      `  each runs again on its restore node, released by the restore (runStrategy Always, no hold, not pinned): ${runsOn.join(", ")}`,
    );
    say(`  the ${plural(others.length, "other VM")} were not touched: same disks, same instances on the same nodes`);
    say(`  the digest agrees: last backup ${NAMESPACE}/${name}, last restore ${NAMESPACE}/${restoreName} where it ran`);
  } else {
    say(`the restore did not check out: ${plural(restoreProblems.length, "problem")}:`);
    for (const p of restoreProblems) say(`  ${p}`);
  }
  say();
  say(`$ kubectl get wr -n ${NAMESPACE}`);
  say(cp.kubectl(["get", "wr", "-n", NAMESPACE]).trimEnd());
  say(`$ kubectl get noderestores -n ${NAMESPACE} -l ${LABEL_RESTORE}=${restoreName}`);
  say(cp.kubectl(["get", "noderestores", "-n", NAMESPACE, "-l", `${LABEL_RESTORE}=${restoreName}`]).trimEnd());
  say(`$ fedbackup digest -n ${NAMESPACE}`);
  let digestTable = "";
  const tableCode = await runDigest(
    ["--kubeconfig", cp.kubeconfigPath, "-n", NAMESPACE],
    (s) => void (digestTable += s),
    (s) => void (digestTable += s),
  );
  say(digestTable.trimEnd());
  if (tableCode !== 0) restoreProblems.push(`fedbackup digest exited with ${tableCode}`);
  say();
  const ok = restoreProblems.length === 0;
  say(
    `${ok ? "OK" : "FAILED"}: backup ${status.phase ?? "unknown"} in ${seconds(backupTook)}, ` +
      `restore ${rs.phase ?? "unknown"} in ${seconds(restoreTook)} (${rs.progress?.restored ?? "?"} VMs restored` +
      `${ok ? ", every disk byte-identical to its backup" : `; ${plural(restoreProblems.length, "problem")}`}); ` +
      `whole demo ${seconds(Date.now() - startedAt)}; stopping everything`,
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
