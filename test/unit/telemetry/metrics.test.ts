import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  FederatedBackup,
  FederatedBackupStatus,
  NodeRestore,
  NodeSnapshot,
  WorkloadRestore,
  WorkloadRestoreStatus,
} from "../../../src/api/v1alpha1/index.js";
import { secondsBetween } from "../../../src/api/timestamps.js";
import { backupState, backupTransition } from "../../../src/controllers/federatedbackup/transitions.js";
import { WorkQueue } from "../../../src/controllers/runtime/work-queue.js";
import { restoreTransition } from "../../../src/controllers/workloadrestore/transitions.js";
import { OperatorMetrics } from "../../../src/telemetry/metrics.js";

const backup = { metadata: { namespace: "tenant", name: "nightly", uid: "u1" } } as FederatedBackup;

function step(node: string | undefined, status: NodeSnapshot["status"]): NodeSnapshot {
  return { spec: { node, round: 1, order: 1 }, status } as unknown as NodeSnapshot;
}

const steps = [
  step("node-a", {
    phase: "Succeeded",
    startTime: "2026-01-01T00:00:10Z",
    completionTime: "2026-01-01T00:00:40Z",
    captured: [
      { namespace: "tenant", name: "vm-1", freezeWindowMs: 250 },
      { namespace: "tenant", name: "vm-2", freezeWindowMs: 1500 },
    ],
  }),
  step("node-b", { phase: "Failed", startTime: "2026-01-01T00:00:40Z", completionTime: "2026-01-01T00:01:40Z" }),
  step("node-c", { phase: "Pending" }),
  step(undefined, { phase: "Unplaced" }),
];

const finished: FederatedBackupStatus = {
  phase: "PartiallyFailed",
  startTime: "2026-01-01T00:00:00Z",
  completionTime: "2026-01-01T00:02:00Z",
  progress: { workloadsCaptured: 2, workloadsMissing: 3 },
  missing: [
    { namespace: "tenant", name: "vm-3", reason: "NodeFailed" },
    { namespace: "tenant", name: "vm-4", reason: "NodeFailed" },
    { namespace: "tenant", name: "vm-5", reason: "NotRunning" },
  ],
};

describe("metrics: what a backup's status transition records", () => {
  it("records a run once, in the write that moves it into a finished phase", () => {
    const record = backupTransition(backup, { phase: "Verifying" }, finished, steps);
    assert.deepEqual(record, {
      namespace: "tenant",
      name: "nightly",
      finished: { result: "PartiallyFailed", durationSeconds: 120, workloadsCaptured: 2 },
      nodeStepSeconds: [30, 60],
      freezeSeconds: [0.25, 1.5],
    });
  });

  it("records nothing for a write that does not finish the run, or after it finished", () => {
    assert.equal(backupTransition(backup, { phase: "New" }, { phase: "InProgress" }, steps), undefined);
    assert.equal(backupTransition(backup, finished, { ...finished, conditions: [] }, steps), undefined);
    assert.equal(backupTransition(backup, finished, { ...finished, phase: "Completed" }, steps), undefined);
  });

  it("records a run that finishes in its first status write, without a duration when it never started", () => {
    const record = backupTransition(backup, undefined, { phase: "Failed", completionTime: "2026-01-01T00:00:00Z" }, []);
    assert.deepEqual(record?.finished, { result: "Failed", workloadsCaptured: 0 });
  });

  it("reads the gauges from a finished status: last success when Completed, missing VMs by reason", () => {
    assert.deepEqual(backupState(undefined), {});
    assert.deepEqual(backupState({ phase: "InProgress", missing: finished.missing }), {});
    assert.deepEqual(backupState({ ...finished, missingTruncated: 7 }), {
      missing: { NodeFailed: 2, NotRunning: 1, Unlisted: 7 },
    });
    assert.deepEqual(backupState({ phase: "Completed", completionTime: "2026-01-01T00:02:00Z", missing: [] }), {
      successAt: Date.parse("2026-01-01T00:02:00Z") / 1000,
      missing: {},
    });
  });

  it("times only steps with both ends, and never backwards", () => {
    assert.equal(secondsBetween("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"), 1);
    assert.equal(secondsBetween(undefined, "2026-01-01T00:00:01Z"), undefined);
    assert.equal(secondsBetween("2026-01-01T00:00:02Z", "2026-01-01T00:00:01Z"), undefined);
    assert.equal(secondsBetween("garbage", "2026-01-01T00:00:01Z"), undefined);
  });
});

describe("metrics: what a restore's status transition records", () => {
  const restore = { spec: {} } as WorkloadRestore;
  const done: WorkloadRestoreStatus = {
    phase: "Completed",
    startTime: "2026-01-01T00:00:00Z",
    completionTime: "2026-01-01T00:00:30Z",
  };
  const nodeRestores = [
    { status: { startTime: "2026-01-01T00:00:05Z", completionTime: "2026-01-01T00:00:25Z" } },
    { status: { phase: "Pending" } },
  ] as unknown as NodeRestore[];

  it("records the result, the duration and the node steps once", () => {
    assert.deepEqual(restoreTransition(restore, { phase: "InProgress" }, done, nodeRestores), {
      finished: { result: "Completed", durationSeconds: 30 },
      nodeStepSeconds: [20],
    });
    assert.equal(restoreTransition(restore, done, { ...done, conditions: [] }, nodeRestores), undefined);
    assert.equal(restoreTransition(restore, { phase: "New" }, { phase: "Planning" }, nodeRestores), undefined);
  });

  it("records nothing for a dry run", () => {
    const dry = { spec: { dryRun: true } } as WorkloadRestore;
    assert.equal(restoreTransition(dry, { phase: "Planning" }, done, []), undefined);
  });
});

describe("OperatorMetrics", () => {
  const sample = async (m: OperatorMetrics, name: string, labels: Record<string, string> = {}) => {
    const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
    const values = (metric?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>;
    return values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))?.value;
  };

  it("counts finished runs and their steps", async () => {
    const m = new OperatorMetrics(false);
    m.recordBackup(backupTransition(backup, { phase: "Verifying" }, finished, steps)!);
    m.recordRestore({ finished: { result: "Completed", durationSeconds: 30 }, nodeStepSeconds: [20] });
    assert.equal(await sample(m, "fedbackup_backup_total", { result: "PartiallyFailed" }), 1);
    assert.equal(await sample(m, "fedbackup_workloads_captured_total"), 2);
    assert.equal(await sample(m, "fedbackup_freeze_duration_seconds", { le: "+Inf" }), 2);
    assert.equal(await sample(m, "fedbackup_node_step_duration_seconds", { kind: "backup", le: "+Inf" }), 2);
    assert.equal(await sample(m, "fedbackup_node_step_duration_seconds", { kind: "restore", le: "+Inf" }), 1);
    assert.equal(await sample(m, "fedbackup_restore_total", { result: "Completed" }), 1);
    assert.equal(await sample(m, "fedbackup_backup_duration_seconds", { le: "+Inf" }), 1);
  });

  it("starts every result at 0 and serves the Node process metrics", async () => {
    const m = new OperatorMetrics();
    assert.equal(await sample(m, "fedbackup_backup_total", { result: "PartiallyFailed" }), 0);
    assert.equal(await sample(m, "fedbackup_restore_total", { result: "Failed" }), 0);
    const text = await m.registry.metrics();
    assert.match(text, /^fedbackup_process_cpu_seconds_total /m);
    assert.match(text, /^fedbackup_nodejs_heap_size_used_bytes /m);
    assert.match(text, /^# HELP fedbackup_backup_last_success_timestamp_seconds \S/m);
  });

  it("keeps the latest success, zeroes a reason a later run no longer has, and forgets a deleted backup", async () => {
    const m = new OperatorMetrics(false);
    m.observeBackupState("tenant", "nightly", { successAt: 200, missing: { NodeFailed: 2 } });
    m.observeBackupState("tenant", "nightly", { successAt: 100, missing: {} });
    const series = { namespace: "tenant", name: "nightly" };
    assert.equal(await sample(m, "fedbackup_backup_last_success_timestamp_seconds", series), 200);
    assert.equal(await sample(m, "fedbackup_workloads_missing", { ...series, reason: "NodeFailed" }), 0);
    m.forgetBackup("tenant", "nightly");
    assert.equal(await sample(m, "fedbackup_backup_last_success_timestamp_seconds", series), undefined);
    assert.equal(await sample(m, "fedbackup_workloads_missing", series), undefined);
  });

  it("takes a work queue's depth, adds, waits and retries per controller", async () => {
    const m = new OperatorMetrics(false);
    let fail = true;
    const q = new WorkQueue(
      () => {
        if (!fail) return Promise.resolve();
        fail = false;
        return Promise.reject(new Error("conflict"));
      },
      { paused: true, baseDelayMs: 1, hooks: m.queueHooks("federatedbackup") },
    );
    q.add("a");
    q.add("b");
    q.add("b");
    const c = { controller: "federatedbackup" };
    assert.equal(await sample(m, "fedbackup_workqueue_adds_total", c), 2);
    q.start();
    await q.idle();
    await sleep(50);
    await q.idle();
    assert.equal(await sample(m, "fedbackup_workqueue_retries_total", c), 1);
    assert.equal(await sample(m, "fedbackup_workqueue_adds_total", c), 3);
    assert.equal(await sample(m, "fedbackup_workqueue_queue_duration_seconds", { ...c, le: "+Inf" }), 3);
    assert.equal(await sample(m, "fedbackup_workqueue_depth", c), 0);
    await q.shutdown();
  });
});
