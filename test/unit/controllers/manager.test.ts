// The operator's wiring: both controllers registered on one manager, sharing its caches.
import assert from "node:assert/strict";
import type { FederatedBackup } from "../../../src/api/v1alpha1/index.js";
import { backupStateGauges } from "../../../src/controllers/federatedbackup/state-gauges.js";
import { Manager } from "../../../src/controllers/manager.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { OperatorMetrics } from "../../../src/telemetry/metrics.js";
import { FakeCluster } from "./fake-cluster.js";

describe("Manager", () => {
  it("lists and watches each resource once, whichever controllers read it", async () => {
    const cluster = new FakeCluster();
    const manager = new Manager({
      client: cluster.client,
      log: createLogger("test", "error"),
      metrics: new OperatorMetrics(false),
      namespace: "ops",
      settings: { agentImage: "fedbackup:test" },
    });
    await manager.start();
    const managed = { labelSelector: "app.kubernetes.io/managed-by=fedbackup" };
    const listed = new Map(cluster.lists.map((l) => [l.plural, l.options]));
    assert.equal(listed.size, cluster.lists.length, "a resource was listed twice");
    assert.deepEqual(Object.fromEntries(listed), {
      backuplocations: {},
      backupschedules: {},
      federatedbackups: {},
      nodesnapshots: managed,
      jobs: managed,
      virtualmachineinstances: {},
      virtualmachines: {},
      nodes: {},
      pods: { fieldSelector: "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed" },
      leases: { namespace: "ops", ...managed },
      workloadrestores: {},
      noderestores: managed,
      virtualmachineinstancemigrations: managed,
    });
    assert.ok(manager.queue("backuplocation"));
    assert.ok(manager.queue("backupschedule"));
    assert.ok(manager.queue("federatedbackup"));
    assert.ok(manager.queue("workloadrestore"));
    assert.equal(manager.isWorking, true);
    await manager.stop();
  });
});

describe("backupStateGauges", () => {
  it("sets a backup's gauges from its status, and forgets them when it is deleted", () => {
    const calls: unknown[][] = [];
    const handler = backupStateGauges({
      observeBackupState: (...args) => void calls.push(["observe", ...args]),
      forgetBackup: (...args) => void calls.push(["forget", ...args]),
    });
    const backup = {
      metadata: { namespace: "ns", name: "nightly" },
      spec: {},
      status: { phase: "Completed", completionTime: "2024-01-01T00:00:00Z" },
    } as unknown as FederatedBackup;
    handler("update", backup);
    handler("delete", backup);
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[0]!.slice(0, 3), ["observe", "ns", "nightly"]);
    assert.deepEqual(calls[1], ["forget", "ns", "nightly"]);
  });
});
