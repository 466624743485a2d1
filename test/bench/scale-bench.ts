// `make bench-scale`: the operator at 100, 300 and 1,000 kwok nodes (issue 15, item 3).
//
//   tsx test/bench/scale-bench.ts
//   SCALE_SIZES=100            sizes to run, comma-separated (default 100,300,1000)
//   SCALE_OPERATOR=tsx         run the operator from source (default: compiled with tsc, as a container runs it)
//   SCALE_SOURCE=tree          the operator, CRDs and RBAC of the working tree (default: of the committed HEAD)
//   SCALE_PIPELINE='{"lookAhead":1}'   spec.pipeline of the backup (default {"lookAhead":12,"maxExtractions":8}:
//                              a Job's pod starts about a second after the Job here, and each extraction takes
//                              300 ms, so at 100 ms a step the look-ahead must cover 10 steps and 3 extractions;
//                              "default" leaves it out: the CRD's default, strict one step at a time)
//   SCALE_KUBECTL_NODES=200    steps the kubectl loop goes over, the rest extrapolated (default: all)
//   SCALE_NAMESPACES=1         namespaces the VMIs are spread over (default 10)
//   SCALE_MIGRATIONS=200       VMs moved to another node during the run (default 200)
//   SCALE_EXTRACTION_MS=300    how long each simulated agent's extraction takes (default 300)
//   SCALE_OPERATOR_NODE_OPTIONS=''   Node's options for the operator's process (default: the chart's heap limit)
//   SCALE_KCM_QPS=20           kube-controller-manager's --kube-api-qps and --kube-api-burst (default 100, as
//                              Kubernetes' own scalability tests run it; its default of 20 caps the Job
//                              controller at about 3 Jobs a second, each Job costing it some 6 requests)
//
// Per size, on a fresh control plane of the harness (kube-apiserver, etcd, kube-controller-manager, kwok):
// N simulated nodes with about 10 VMIs each, spread unevenly (spread.ts); the operator as its own process
// with the chart's RBAC; the agent simulated (scale/simulated-agent.ts); one FederatedBackup over every VMI,
// while 200 VMs migrate from nodes not yet visited to nodes already done (the operator must capture them in
// round 2). Then the same node steps by a kubectl create + kubectl wait loop, on the same cluster. Prints a
// table per size and the goals; writes bench-results/scale.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isFinished } from "../../src/api/phases.js";
import type { FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { runDigest } from "../../src/cli/digest.js";
import { KubeClient } from "../../src/k8s/client.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { ControlPlane } from "../harness/control-plane.js";
import { createVolume, migrateVm, NODE_MOUNT_PATH } from "../harness/workloads.js";
import { median, REPO_ROOT, table } from "./common.js";
import { etcdUrl, scrapeCluster, type ClusterScrape } from "./scale/cluster-metrics.js";
import { checkGoals, type GoalCheck } from "./scale/goals.js";
import { kubectlLoop } from "./scale/kubectl-loop.js";
import {
  OperatorProcess,
  prepareOperator,
  type OperatorBuild,
  type OperatorSource,
  type PreparedOperator,
} from "./scale/operator-process.js";
import {
  createNamespace,
  createNodes,
  createVmis,
  creatorPoliciesSettled,
  nodeName,
  placeVms,
  vmNamespace,
  type PlacedVm,
} from "./scale/population.js";
import { sumBy, subtract, type Sample } from "./scale/prometheus.js";
import { SimulatedAgents } from "./scale/simulated-agent.js";
import { seededRandom, spreadVmis } from "./scale/spread.js";
import { gaps, handoffDelays, jobGaps, spreadOf, type Spread } from "./scale/stats.js";
import { Timeline } from "./scale/timeline.js";
import { cpuBetween, sampleCpu } from "./scale/cpu-time.js";

const SIZES = (process.env.SCALE_SIZES ?? "100,300,1000").split(",").map(Number);
const BUILD_NAME = process.env.SCALE_OPERATOR ?? "compiled";
const PIPELINE_TEXT = process.env.SCALE_PIPELINE ?? '{"lookAhead":12,"maxExtractions":8}';
const PIPELINE = PIPELINE_TEXT === "default" ? undefined : (JSON.parse(PIPELINE_TEXT) as Record<string, number>);
const KUBECTL_NODES = process.env.SCALE_KUBECTL_NODES ? Number(process.env.SCALE_KUBECTL_NODES) : Infinity;
const VM_NAMESPACES = Number(process.env.SCALE_NAMESPACES ?? "10");
const MIGRATIONS = Number(process.env.SCALE_MIGRATIONS ?? "200");
const EXTRACTION_MS = Number(process.env.SCALE_EXTRACTION_MS ?? "300");
const KCM_QPS = Number(process.env.SCALE_KCM_QPS ?? "100");
const BACKUP_NS = "scale-backup";
const LOOP_NS = "scale-kubectl";
const BACKUP = "scale";
const BASELINE_MS = 5_000;
const BACKUP_TIMEOUT_MS = 3 * 3600_000;
const STALL_MS = 120_000;
const MiB = 1024 * 1024;

if (SIZES.some((n) => !Number.isInteger(n) || n < 2)) throw new Error(`SCALE_SIZES: ${process.env.SCALE_SIZES}`);
if (BUILD_NAME !== "compiled" && BUILD_NAME !== "tsx")
  throw new Error(`SCALE_OPERATOR must be compiled or tsx, not ${BUILD_NAME}`);
const BUILD: OperatorBuild = BUILD_NAME;
const SOURCE_NAME = process.env.SCALE_SOURCE ?? "head";
if (SOURCE_NAME !== "head" && SOURCE_NAME !== "tree")
  throw new Error(`SCALE_SOURCE must be head or tree, not ${SOURCE_NAME}`);
const SOURCE: OperatorSource = SOURCE_NAME;

const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

interface SizeResult {
  /** CPU seconds each process used from the backup's creation to its end (scale/cpu-time.ts). */
  cpuSecondsDuringBackup: Record<string, number>;
  nodes: number;
  vmis: number;
  nodeSteps: number;
  rounds: number;
  phase: string;
  captured: number;
  missing: number;
  pipelinedPods: number;
  agentErrors: string[];
  setupMs: number;
  wholeBackupMs: number;
  discoveryMs: number;
  stepEndToEndMs: Spread;
  jobGapMs: Spread;
  handoffMs: Spread;
  /** The part of the hand-off until the operator wrote the Lease (its renewTime); the rest is the watch. */
  handoffWrittenMs: Spread;
  /** The overhead the goals are held against: the hand-off with pipelining, else Job Complete → next Job. */
  overheadMs: Spread;
  /** The backup controller's reconcile passes per node step, and how long one took on average. */
  backupPasses: { perStep: number; meanMs: number };
  operatorRequests: {
    total: number;
    perStep: number;
    listsDuringBackup: number;
    byVerbResource: Record<string, number>;
  };
  apiserverRequests: {
    total: number;
    harness: number;
    byVerbResource: Record<string, number>;
    harnessByVerbResource: Record<string, number>;
  };
  memory: { peakRssBytes: number; peakHeapUsedBytes: number; peakHeapTotalBytes: number };
  backupObject: { statusBytes: number; storedBytes: number; managedFieldsBytes: number };
  etcd?: {
    walBytesDuringBackup: number;
    baselineWalBytesPerSecond: number;
    walBytesAboveBaseline: number;
    dbBytesAfter?: number;
  };
  migrations: { moved: number; capturedInRound2: number; capturedInRound1: number; notCaptured: number };
  digest: { rows: number; medianMs: number; runsMs: number[] };
  kubectlLoop: {
    steps: number;
    measuredSteps: number;
    measuredMs: number;
    totalMs: number;
    perStepMs: Spread;
    extrapolated: boolean;
  };
  ratio: number;
  goals: GoalCheck[];
}

const toRecord = (m: ReadonlyMap<string, number>) =>
  Object.fromEntries([...m.entries()].sort(([a], [b]) => a.localeCompare(b)));
const total = (m: ReadonlyMap<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** Moves MIGRATIONS VMs, paced by the cuts, from nodes not visited yet to the node most recently done. */
class Migrator {
  readonly moved: PlacedVm[] = [];
  private queue = Promise.resolve();
  private cuts = 0;
  private readonly order: PlacedVm[];

  constructor(
    private readonly client: KubeClient,
    vms: readonly PlacedVm[],
    private readonly stepsExpected: number,
    private readonly visited: (node: string) => boolean,
  ) {
    const random = seededRandom(200);
    this.order = vms.map((vm) => ({ ...vm }));
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
    }
  }

  /** After each cut: all MIGRATIONS VMs moved by the time a third of the steps have made their cut. */
  onCut(doneNode: string): void {
    this.cuts++;
    const due = Math.min(
      MIGRATIONS,
      Math.ceil((MIGRATIONS * this.cuts) / Math.max(1, Math.floor(this.stepsExpected / 3))),
    );
    const count = due - this.moved.length;
    if (count <= 0) return;
    const picked: PlacedVm[] = [];
    for (const vm of this.order) {
      if (picked.length === count) break;
      if (!this.visited(vm.node) && vm.node !== doneNode && !this.moved.includes(vm)) picked.push(vm);
    }
    this.moved.push(...picked);
    this.queue = this.queue.then(async () => {
      for (const vm of picked) {
        await migrateVm(this.client, vm.namespace, vm.name, vm.node, doneNode).catch((err: unknown) =>
          log(`migration of ${vm.namespace}/${vm.name} failed: ${String(err)}`),
        );
      }
    });
  }

  done(): Promise<void> {
    return this.queue;
  }
}

/**
 * The finished backup; progress logged every 30 s. A run where no Job appears and no step reports for
 * STALL_MS fails, with what the operator's own metrics say went wrong (requests refused, reconciles failed).
 */
async function waitForBackup(
  finished: Promise<FederatedBackup & KubeObject>,
  agents: SimulatedAgents,
  timeline: Timeline,
  operator: OperatorProcess,
  migrator: Migrator,
): Promise<FederatedBackup & KubeObject> {
  let done: (FederatedBackup & KubeObject) | undefined;
  void finished.then((fb) => (done = fb));
  let last = "";
  let lastChange = Date.now();
  let lastLog = Date.now();
  const started = Date.now();
  while (!done) {
    await sleep(500);
    const now = `${timeline.jobs.size} Jobs, ${agents.steps.length} steps reported, ${migrator.moved.length} VMs moved`;
    if (now !== last) [last, lastChange] = [now, Date.now()];
    if (Date.now() - lastLog >= 30_000) {
      log(`  ${now}`);
      lastLog = Date.now();
    }
    if (done) break;
    if (Date.now() - lastChange > STALL_MS || Date.now() - started > BACKUP_TIMEOUT_MS) {
      const samples = await operator.metrics().catch(() => []);
      const failures = samples
        .filter(
          (x) =>
            (x.name === "fedbackup_api_requests_total" && !/^2/.test(x.labels.code ?? "")) ||
            (x.name === "fedbackup_reconciles_total" && x.labels.result !== "success"),
        )
        .map((x) => `${x.name}${JSON.stringify(x.labels)} ${x.value}`);
      throw new Error(
        `the backup made no progress for ${STALL_MS / 1000} s (${now}); agent errors: ${agents.errors.slice(0, 5).join("; ") || "none"}; operator: ${failures.join(", ") || "no failed requests or reconciles"}`,
      );
    }
  }
  return done;
}

async function digestTimes(kubeconfig: string, runs = 3): Promise<{ rows: number; runsMs: number[] }> {
  const runsMs: number[] = [];
  let rows = 0;
  for (let i = 0; i < runs; i++) {
    let out = "";
    const t = performance.now();
    const code = await runDigest(
      ["--kubeconfig", kubeconfig, "-A", "-o", "json"],
      (s) => (out += s),
      (s) => process.stderr.write(s),
    );
    runsMs.push(performance.now() - t);
    if (code !== 0) throw new Error(`fedbackup digest exited ${code}`);
    rows = (JSON.parse(out) as unknown[]).length;
  }
  return { rows, runsMs };
}

function backupManifest(): FederatedBackup & KubeObject {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name: BACKUP, namespace: BACKUP_NS },
    spec: {
      workloads: { namespaces: Array.from({ length: VM_NAMESPACES }, (_, i) => vmNamespace(i)) },
      sharedVolume: { claimName: "vmdisks", nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: "backups" } },
      ...(PIPELINE ? { pipeline: PIPELINE } : {}),
    },
  };
}

async function runSize(n: number, prepared: PreparedOperator): Promise<SizeResult> {
  const setupStarted = Date.now();
  const cp = await ControlPlane.start({
    log,
    crds: [prepared.crds, path.join(REPO_ROOT, "test/fixtures/crds")],
    controllerManagerQps: KCM_QPS,
  });
  const volumes = mkdtempSync(path.join(os.tmpdir(), "fedbackup-scale-"));
  const admin = new KubeClient(cp.kubeConfig);
  const harness = new KubeClient(cp.kubeConfig);
  let operator: OperatorProcess | undefined;
  let agents: SimulatedAgents | undefined;
  let timeline: Timeline | undefined;
  try {
    const counts = spreadVmis(n);
    const vms = placeVms(counts, VM_NAMESPACES);
    const nodes = counts.map((_, i) => nodeName(i));
    await createNodes(admin, nodes);
    log(`${n} nodes Ready`);
    await createNamespace(admin, BACKUP_NS, { "pod-security.kubernetes.io/enforce": "baseline" });
    await createNamespace(admin, LOOP_NS);
    for (let i = 0; i < VM_NAMESPACES; i++) await createNamespace(admin, vmNamespace(i));
    await createVolume(admin, BACKUP_NS, "vmdisks", path.join(volumes, "shared"));
    await createVolume(admin, BACKUP_NS, "backups", path.join(volumes, "location"));
    const t = Date.now();
    await createVmis(admin, vms);
    log(
      `${vms.length} VMIs created in ${((Date.now() - t) / 1000).toFixed(1)} s (${counts.filter((c) => c === 0).length} nodes empty, max ${Math.max(...counts)} on a node)`,
    );
    await creatorPoliciesSettled(admin);

    const visitedNodes = new Set<string>();
    const stepsExpected = counts.filter((c) => c > 0).length;
    const migrator = new Migrator(
      harness,
      vms,
      stepsExpected,
      (node) => visitedNodes.has(node) || !!agents?.nodesSeen.has(node),
    );
    agents = new SimulatedAgents(harness, {
      extractionMs: EXTRACTION_MS,
      freezeWindowMs: 5,
      onCut: ({ node }) => {
        visitedNodes.add(node);
        migrator.onCut(node);
      },
    });
    await agents.start();
    timeline = new Timeline(harness, BACKUP_NS, "fedbackup-system");
    await timeline.start();
    operator = await OperatorProcess.start(cp, admin, prepared);
    log(`operator ready (pid ${operator.pid}, ${BUILD})`);
    const etcd = etcdUrl(cp);
    // Idle, to measure what the cluster writes without a backup (kwok's node heartbeats above all).
    const idle = await scrapeCluster(cp, etcd);
    await sleep(BASELINE_MS);
    const before: ClusterScrape = await scrapeCluster(cp, etcd);
    const operatorBefore = await operator.metrics();
    harness.stats.reset();
    const setupMs = Date.now() - setupStarted;

    const finished = new Promise<FederatedBackup & KubeObject>((resolve) => {
      const watch = new Informer<FederatedBackup & KubeObject>(
        harness,
        Resources.FederatedBackup,
        { namespace: BACKUP_NS },
        { warn: () => {} },
      ).on((event, fb) => {
        if (event !== "delete" && isFinished(fb.status?.phase)) {
          resolve(fb);
          void watch.stop();
        }
      });
      void watch.start();
    });
    const cpuProcesses = [...cp.processIds, { name: "operator", pid: operator.pid }];
    const cpuBefore = sampleCpu(cpuProcesses);
    const createdAt = Date.now();
    await admin.create(Resources.FederatedBackup, backupManifest());
    log(`FederatedBackup created over ${vms.length} VMIs on ${stepsExpected} nodes with VMIs`);
    await timeline.firstJob();
    const discoveryMs = timeline.firstJobAt! - createdAt;
    log(`first Job after ${discoveryMs} ms`);
    const fb = await waitForBackup(finished, agents, timeline, operator, migrator);
    const finishedAt = Date.now();
    const cpu = cpuBetween(cpuBefore, sampleCpu(cpuProcesses));
    await migrator.done();
    const wholeBackupMs = finishedAt - createdAt;
    log(`backup ${fb.status?.phase} after ${(wholeBackupMs / 1000).toFixed(1)} s`);

    const after = await scrapeCluster(cp, etcd);
    const operatorAfter = await operator.metrics();
    const harnessCounts = new Map(Object.entries(harness.stats.snapshot()));

    // Requests: the operator's own count (its client counts every request by verb and resource), and the API
    // server's, from which the harness's own requests are subtracted (what is left is the operator's, the
    // kube-controller-manager's and kwok's).
    const opBy = subtract(
      sumBy(operatorAfter, "fedbackup_api_requests_total", ["verb", "resource"]),
      sumBy(operatorBefore, "fedbackup_api_requests_total", ["verb", "resource"]),
    );
    const apiBy = subtract(after.apiserverRequests, before.apiserverRequests);
    const steps = timeline.jobs.size;
    const lists = [...opBy.entries()].filter(([k]) => k.startsWith("LIST ")).reduce((a, [, v]) => a + v, 0);
    // The backup controller's passes during the run, and the time they took (from its own metrics).
    const ofBackups = (labels: Record<string, string>) => labels.controller === "federatedbackup";
    const passCount = (samples: readonly Sample[], name: string) => total(sumBy(samples, name, [], ofBackups));
    const passes =
      passCount(operatorAfter, "fedbackup_reconcile_duration_seconds_count") -
      passCount(operatorBefore, "fedbackup_reconcile_duration_seconds_count");
    const passSeconds =
      passCount(operatorAfter, "fedbackup_reconcile_duration_seconds_sum") -
      passCount(operatorBefore, "fedbackup_reconcile_duration_seconds_sum");

    const stored = await admin.get<FederatedBackup & KubeObject>(Resources.FederatedBackup, BACKUP_NS, BACKUP);
    const storedBytes = Buffer.byteLength(JSON.stringify(stored));
    const snapshots = (
      await admin.list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
        namespace: BACKUP_NS,
        labelSelector: `fedbackup.io/backup=${BACKUP}`,
      })
    ).items;
    const capturedIn = (round: number) =>
      new Set(
        snapshots
          .filter((s) => s.spec.round === round)
          .flatMap((s) => (s.status?.captured ?? []).map((c) => `${c.namespace}/${c.name}`)),
      );
    const [round1, round2] = [capturedIn(1), capturedIn(2)];
    const movedKeys = migrator.moved.map((vm) => `${vm.namespace}/${vm.name}`);
    const capturedTotal = snapshots.reduce((sum, s) => sum + (s.status?.captured?.length ?? 0), 0);

    const cuts = new Map(agents.steps.map((s) => [s.step, s.cutAt]));
    const jobGapMs = spreadOf(jobGaps([...timeline.jobs.values()]));
    const handoffMs = spreadOf(handoffDelays(cuts, timeline.handoffs));
    const handoffWrittenMs = spreadOf(handoffDelays(cuts, timeline.handoffs, "written"));
    const pipelined = agents.pipelinedPods > 0;

    log("digest of every VMI (3 runs)");
    const digest = await digestTimes(cp.kubeconfigPath);

    // The kubectl loop over the same node steps, in the order the operator ran them.
    const stepNodes = [...agents.steps].sort((a, b) => a.cutAt - b.cutAt).map((s) => s.node);
    const loopNodes = stepNodes.slice(0, Math.min(stepNodes.length, KUBECTL_NODES));
    log(`kubectl loop over ${loopNodes.length} of ${stepNodes.length} node steps`);
    const loop = await kubectlLoop(cp.binaries.kubectl.path, cp.kubeconfigPath, LOOP_NS, loopNodes);
    const loopTotalMs = (loop.totalMs / loop.nodes) * stepNodes.length;

    await operator.stop();
    const result: Omit<SizeResult, "goals"> = {
      nodes: n,
      vmis: vms.length,
      nodeSteps: steps,
      rounds: Math.max(0, ...snapshots.map((s) => s.spec.round)),
      phase: fb.status?.phase ?? "",
      captured: capturedTotal,
      missing: fb.status?.progress?.workloadsMissing ?? fb.status?.missing?.length ?? 0,
      pipelinedPods: agents.pipelinedPods,
      agentErrors: agents.errors.slice(0, 20),
      setupMs,
      wholeBackupMs,
      discoveryMs,
      stepEndToEndMs: spreadOf(gaps(agents.steps.map((s) => s.cutAt))),
      jobGapMs,
      handoffMs,
      handoffWrittenMs,
      overheadMs: pipelined ? handoffMs : jobGapMs,
      backupPasses: { perStep: passes / Math.max(1, steps), meanMs: (passSeconds * 1000) / Math.max(1, passes) },
      operatorRequests: {
        total: total(opBy),
        perStep: total(opBy) / Math.max(1, steps),
        listsDuringBackup: lists,
        byVerbResource: toRecord(opBy),
      },
      apiserverRequests: {
        total: total(apiBy),
        harness: total(harnessCounts),
        byVerbResource: toRecord(apiBy),
        harnessByVerbResource: toRecord(harnessCounts),
      },
      memory: {
        peakRssBytes: operator.peaks.hwmBytes,
        peakHeapUsedBytes: operator.peaks.heapUsedBytes,
        peakHeapTotalBytes: operator.peaks.heapTotalBytes,
      },
      backupObject: {
        statusBytes: Buffer.byteLength(JSON.stringify(stored.status ?? {})),
        storedBytes,
        managedFieldsBytes: Buffer.byteLength(JSON.stringify(stored.metadata.managedFields ?? [])),
      },
      ...(before.etcdWalBytes !== undefined && after.etcdWalBytes !== undefined && idle.etcdWalBytes !== undefined
        ? {
            etcd: (() => {
              const baseline = ((before.etcdWalBytes - idle.etcdWalBytes) / (before.at - idle.at)) * 1000;
              const during = after.etcdWalBytes - before.etcdWalBytes;
              return {
                walBytesDuringBackup: during,
                baselineWalBytesPerSecond: baseline,
                walBytesAboveBaseline: during - (baseline * (after.at - before.at)) / 1000,
                ...(after.etcdDbBytes !== undefined ? { dbBytesAfter: after.etcdDbBytes } : {}),
              };
            })(),
          }
        : {}),
      migrations: {
        moved: movedKeys.length,
        capturedInRound2: movedKeys.filter((k) => round2.has(k)).length,
        capturedInRound1: movedKeys.filter((k) => round1.has(k)).length,
        notCaptured: movedKeys.filter((k) => !round1.has(k) && !round2.has(k)).length,
      },
      digest: { rows: digest.rows, medianMs: median(digest.runsMs), runsMs: digest.runsMs },
      kubectlLoop: {
        steps: stepNodes.length,
        measuredSteps: loop.nodes,
        measuredMs: loop.totalMs,
        totalMs: loopTotalMs,
        perStepMs: spreadOf(loop.perNodeMs),
        extrapolated: loop.nodes < stepNodes.length,
      },
      ratio: loopTotalMs / wholeBackupMs,
      cpuSecondsDuringBackup: Object.fromEntries(cpu.map((c) => [c.name, c.seconds])),
    };
    return {
      ...result,
      goals: checkGoals({
        nodes: n,
        wholeBackupMs,
        kubectlLoopMs: loopTotalMs,
        stepP50Ms: result.stepEndToEndMs.p50,
        overheadP50Ms: result.overheadMs.p50,
        overheadP99Ms: result.overheadMs.p99,
        discoveryMs,
        requestsPerStep: result.operatorRequests.perStep,
        peakRssBytes: result.memory.peakRssBytes,
        storedBackupBytes: storedBytes,
      }),
    };
  } finally {
    await operator?.stop().catch(() => {});
    await timeline?.stop().catch(() => {});
    await agents?.stop().catch(() => {});
    admin.close();
    harness.close();
    await cp.stop();
    rmSync(volumes, { recursive: true, force: true });
  }
}

const ms = (v: number) => (Number.isNaN(v) ? "-" : `${v.toFixed(0)} ms`);
const sec = (v: number) => `${(v / 1000).toFixed(1)} s`;
const mib = (v: number) => `${(v / MiB).toFixed(0)} MiB`;
const kib = (v: number) => `${(v / 1024).toFixed(0)} KiB`;
const p = (s: Spread) => `${ms(s.p50)} / ${ms(s.p99)} (n=${s.count})`;

function render(results: SizeResult[]): string {
  const col = (f: (r: SizeResult) => string) => results.map(f);
  const rows: string[][] = [
    ["", ...col((r) => `${r.nodes} nodes / ${r.vmis} VMIs`)],
    ["outcome", ...col((r) => `${r.phase}, ${r.captured} captured, ${r.missing} missing, ${r.rounds} rounds`)],
    [
      "node steps (Jobs)",
      ...col((r) => `${r.nodeSteps}${r.pipelinedPods ? ` (${r.pipelinedPods} pipelined)` : " (strict)"}`),
    ],
    ["whole backup", ...col((r) => sec(r.wholeBackupMs))],
    [
      "kubectl create + wait loop",
      ...col(
        (r) =>
          `${sec(r.kubectlLoop.totalMs)}${r.kubectlLoop.extrapolated ? ` (from ${r.kubectlLoop.measuredSteps} steps)` : ""}`,
      ),
    ],
    ["loop / operator", ...col((r) => `${r.ratio.toFixed(2)}×`)],
    ["per-step end to end p50 / p99", ...col((r) => p(r.stepEndToEndMs))],
    ["overhead Job Complete → next Job p50 / p99", ...col((r) => p(r.jobGapMs))],
    ["overhead cut done → Lease hand-off p50 / p99", ...col((r) => p(r.handoffMs))],
    ["  of which until the operator wrote the Lease", ...col((r) => p(r.handoffWrittenMs))],
    ["kubectl loop per step p50 / p99", ...col((r) => p(r.kubectlLoop.perStepMs))],
    ["discovery (creation → first Job)", ...col((r) => ms(r.discoveryMs))],
    ["operator API requests per node step", ...col((r) => r.operatorRequests.perStep.toFixed(2))],
    [
      "backup passes per node step / mean pass",
      ...col((r) => `${r.backupPasses.perStep.toFixed(1)} / ${r.backupPasses.meanMs.toFixed(0)} ms`),
    ],
    [
      "operator LISTs during the backup",
      ...col((r) => {
        const by = Object.entries(r.operatorRequests.byVerbResource).filter(([k]) => k.startsWith("LIST "));
        const detail = by.map(([k, v]) => `${k.slice(5)} ${v}`).join(", ");
        return `${r.operatorRequests.listsDuringBackup}${detail ? ` (${detail})` : ""}`;
      }),
    ],
    [
      "API server requests (all) / harness's",
      ...col((r) => `${r.apiserverRequests.total} / ${r.apiserverRequests.harness}`),
    ],
    ["operator peak RSS (VmHWM)", ...col((r) => mib(r.memory.peakRssBytes))],
    [
      "operator peak heap used / total",
      ...col((r) => `${mib(r.memory.peakHeapUsedBytes)} / ${mib(r.memory.peakHeapTotalBytes)}`),
    ],
    [
      "FederatedBackup status / stored (managedFields)",
      ...col(
        (r) =>
          `${kib(r.backupObject.statusBytes)} / ${kib(r.backupObject.storedBytes)} (${kib(r.backupObject.managedFieldsBytes)})`,
      ),
    ],
    [
      "etcd WAL bytes during the backup (above idle)",
      ...col((r) => (r.etcd ? `${mib(r.etcd.walBytesDuringBackup)} (${mib(r.etcd.walBytesAboveBaseline)})` : "-")),
    ],
    [
      "CPU used during the backup / the machine's",
      ...col((r) => {
        const used = Object.values(r.cpuSecondsDuringBackup).reduce((a, b) => a + b, 0);
        return `${used.toFixed(0)} s / ${((r.wholeBackupMs / 1000) * os.cpus().length).toFixed(0)} s`;
      }),
    ],
    [
      "  by process (CPU seconds)",
      ...col((r) =>
        Object.entries(r.cpuSecondsDuringBackup)
          .map(([name, s]) => `${name} ${s.toFixed(0)}`)
          .join(", "),
      ),
    ],
    [
      "migrated VMs: round 2 / round 1 / not captured",
      ...col(
        (r) =>
          `${r.migrations.moved}: ${r.migrations.capturedInRound2} / ${r.migrations.capturedInRound1} / ${r.migrations.notCaptured}`,
      ),
    ],
    ["digest -A -o json, median of 3", ...col((r) => `${ms(r.digest.medianMs)} (${r.digest.rows} rows)`)],
  ];
  const goals = results.map((r) => [
    `goals at ${r.nodes} nodes:`,
    ...r.goals.map((g) => `  ${g.met ? "met " : "MISS"} ${g.goal}: ${g.value}`),
  ]);
  const perStep = results.map((r) => {
    const entries = Object.entries(r.operatorRequests.byVerbResource).sort(([, a], [, b]) => b - a);
    const steps = Math.max(1, r.nodeSteps);
    return `operator requests per node step at ${r.nodes} nodes: ${entries.map(([k, v]) => `${k} ${(v / steps).toFixed(2)}`).join(", ")}`;
  });
  return [table(rows), "", ...perStep, "", ...goals.flat()].join("\n");
}

const prepared = await prepareOperator(SOURCE, BUILD, log);
const commit = prepared.commit;
const results: SizeResult[] = [];
for (const n of SIZES) {
  log(`=== ${n} nodes ===`);
  results.push(await runSize(n, prepared));
  console.log(render(results.slice(-1)));
}
console.log(
  `\nscale benchmark on ${commit} (${SOURCE}), operator ${BUILD}, VMIs in ${VM_NAMESPACES} namespaces, ` +
    `NODE_OPTIONS '${prepared.nodeOptions}', spec.pipeline ${PIPELINE ? JSON.stringify(PIPELINE) : "default"}, ` +
    `extraction ${EXTRACTION_MS} ms, kube-controller-manager --kube-api-qps ${KCM_QPS}, ${os.cpus().length} CPUs`,
);
console.log(render(results));
mkdirSync(path.join(REPO_ROOT, "bench-results"), { recursive: true });
const out = path.join(REPO_ROOT, "bench-results", "scale.json");
writeFileSync(
  out,
  JSON.stringify(
    {
      commit,
      operator: BUILD,
      pipeline: PIPELINE ?? null,
      extractionMs: EXTRACTION_MS,
      controllerManagerQps: KCM_QPS,
      cpus: os.cpus().length,
      at: new Date().toISOString(),
      results,
    },
    null,
    2,
  ) + "\n",
);
console.log(`\nwritten to ${path.relative(REPO_ROOT, out)}`);
