// The operator's domain metrics, scraped from its registry as /metrics serves it, during and after a
// backup of 2 VMs on 2 nodes and a restore of them, and across an operator restart (the last-success
// gauge comes back from the cluster; nothing is counted twice).
import assert from "node:assert/strict";
import type { FederatedBackup, WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import { createVirtualMachine, type VmFixture } from "../harness/workloads.js";
import {
  adminClient,
  backupManifest,
  backupEnv,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type RunningOperator,
} from "./operator-env.js";

type Backup = FederatedBackup & KubeObject;
type Restore = WorkloadRestore & KubeObject;
const FINISHED = ["Completed", "PartiallyFailed", "Failed"];

/** Samples of the Prometheus text format: name, labels, value. */
function parse(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(op: RunningOperator) {
  const samples = parse(await op.metrics.registry.metrics());
  /** The sample's value; 0 when absent (a counter or histogram not observed yet). */
  const value = (name: string, labels: Record<string, string> = {}): number =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
  const has = (name: string, labels: Record<string, string> = {}): boolean =>
    samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return { samples, value, has };
}

describe("Metrics", function () {
  this.timeout(180_000);

  it("counts a backup and a restore once each, with their durations, VMs, freeze windows, node steps and queues", async () => {
    const env = await backupEnv("metrics");
    await kubevirtDouble();
    await podRunner();
    const sim = new SimulatedVmController(adminClient());
    await sim.start();
    let operator = await startOperator();
    try {
      const vms: VmFixture[] = [
        { name: "m1", node: "node-b" },
        { name: "m2", node: "node-c" },
      ];
      for (const vm of vms) await createVirtualMachine(adminClient(), env.namespace, env.shared.hostDir, vm);
      const series = { namespace: env.namespace, name: "nightly" };
      const before = await scrape(operator);
      const startedAt = Math.floor(Date.now() / 1000);

      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "nightly", { snapshot: { method: "Copy" } }),
      );

      // During: the run is going, nothing is counted for it yet, the queues are measured.
      const during = await waitFor("the backup to be in progress", 60_000, async () => {
        const b = await adminClient().get<Backup>(Resources.FederatedBackup, env.namespace, "nightly");
        return ["InProgress", "Verifying"].includes(b.status?.phase ?? "") ? scrape(operator) : undefined;
      });
      assert.equal(during.value("fedbackup_backup_total", { result: "Completed" }), 0);
      assert.ok(during.has("fedbackup_backup_total", { result: "PartiallyFailed" }), "results start at 0");
      assert.ok(!during.has("fedbackup_backup_last_success_timestamp_seconds", series));
      assert.ok(during.value("fedbackup_workqueue_adds_total", { controller: "federatedbackup" }) > 0);
      assert.ok(during.has("fedbackup_workqueue_depth", { controller: "federatedbackup" }));
      assert.ok(during.has("fedbackup_api_requests_total", { verb: "POST", resource: "nodesnapshots", code: "201" }));

      const backup = await waitFor("the backup to finish", 120_000, async () => {
        const b = await adminClient().get<Backup>(Resources.FederatedBackup, env.namespace, "nightly");
        return FINISHED.includes(b.status?.phase ?? "") ? b : undefined;
      });
      assert.equal(backup.status?.phase, "Completed", JSON.stringify(backup.status?.conditions));
      const finishedAt = Math.ceil(Date.now() / 1000);
      // The operator counts a run once its status write has returned, which a reader can see first; the
      // last-success gauge follows the status as its cache receives it (state-gauges.ts), which can come
      // after the count.
      const after = await waitFor("the backup to be counted and its success seen", 10_000, async () => {
        const s = await scrape(operator);
        return s.value("fedbackup_backup_total", { result: "Completed" }) >
          before.value("fedbackup_backup_total", { result: "Completed" }) &&
          s.has("fedbackup_backup_last_success_timestamp_seconds", series)
          ? s
          : undefined;
      });
      const delta = (name: string, labels: Record<string, string> = {}) =>
        after.value(name, labels) - before.value(name, labels);
      assert.equal(delta("fedbackup_backup_total", { result: "Completed" }), 1);
      assert.equal(delta("fedbackup_backup_total", { result: "PartiallyFailed" }), 0);
      assert.equal(delta("fedbackup_backup_duration_seconds_count"), 1);
      const lastSuccess = after.value("fedbackup_backup_last_success_timestamp_seconds", series);
      assert.ok(lastSuccess >= startedAt && lastSuccess <= finishedAt, `last success ${lastSuccess}`);
      assert.equal(lastSuccess, Date.parse(backup.status.completionTime!) / 1000);
      assert.equal(delta("fedbackup_workloads_captured_total"), 2);
      assert.ok(!after.has("fedbackup_workloads_missing", series), "nothing missing, no reason");
      assert.equal(delta("fedbackup_freeze_duration_seconds_count"), 2);
      assert.equal(delta("fedbackup_node_step_duration_seconds_count", { kind: "backup" }), 2);
      assert.ok(after.value("fedbackup_workqueue_queue_duration_seconds_count", { controller: "federatedbackup" }) > 0);
      assert.ok(after.value("fedbackup_reconciles_total", { controller: "federatedbackup", result: "success" }) > 0);

      // A restarted operator counts nothing again, and reads the last success back from the cluster.
      await operator.stop();
      operator = await startOperator();
      const restarted = await waitFor("the last success after a restart", 30_000, async () => {
        const s = await scrape(operator);
        return s.has("fedbackup_backup_last_success_timestamp_seconds", series) ? s : undefined;
      });
      assert.equal(restarted.value("fedbackup_backup_last_success_timestamp_seconds", series), lastSuccess);
      await operator.manager.queue("federatedbackup").idle();
      const settled = await scrape(operator);
      assert.equal(settled.value("fedbackup_backup_total", { result: "Completed" }), 0);
      assert.equal(settled.value("fedbackup_freeze_duration_seconds_count"), 0);

      await adminClient().create(Resources.WorkloadRestore, {
        apiVersion: "fedbackup.io/v1alpha1",
        kind: "WorkloadRestore",
        metadata: { name: "back", namespace: env.namespace },
        spec: {
          backupRef: { name: "nightly" },
          workloads: vms.map((v) => ({ namespace: env.namespace, name: v.name })),
        },
      } as KubeObject);
      const restore = await waitFor("the restore to finish", 150_000, async () => {
        const r = await adminClient().get<Restore>(Resources.WorkloadRestore, env.namespace, "back");
        return FINISHED.includes(r.status?.phase ?? "") ? r : undefined;
      });
      assert.equal(restore.status?.phase, "Completed", JSON.stringify(restore.status?.results));
      const restored = await waitFor("the restore to be counted", 10_000, async () => {
        const s = await scrape(operator);
        return s.value("fedbackup_restore_total", { result: "Completed" }) > 0 ? s : undefined;
      });
      assert.equal(restored.value("fedbackup_restore_total", { result: "Completed" }), 1);
      assert.equal(restored.value("fedbackup_restore_total", { result: "Failed" }), 0);
      assert.equal(restored.value("fedbackup_restore_duration_seconds_count"), 1);
      assert.equal(restored.value("fedbackup_node_step_duration_seconds_count", { kind: "restore" }), 2);
      assert.ok(restored.value("fedbackup_workqueue_adds_total", { controller: "workloadrestore" }) > 0);
      assert.ok(
        restored.value("fedbackup_workqueue_queue_duration_seconds_count", { controller: "workloadrestore" }) > 0,
      );
      // The backup's counters did not move.
      assert.equal(restored.value("fedbackup_backup_total", { result: "Completed" }), 0);

      // Deleting the backup drops its series, as a restart would.
      await adminClient().delete(Resources.FederatedBackup, env.namespace, "nightly");
      await waitFor("the series to go", 60_000, async () =>
        (await scrape(operator)).has("fedbackup_backup_last_success_timestamp_seconds", series) ? undefined : true,
      );
    } finally {
      await operator.stop();
      await sim.stop();
      env.cleanup();
    }
  });
});
