import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { ControllerManager } from "../../../src/controllers/runtime/controller-manager.js";
import { Resources } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { createLogger } from "../../../src/telemetry/logger.js";
import { OperatorMetrics } from "../../../src/telemetry/metrics.js";
import { FakeCluster, until } from "./fake-cluster.js";

const obj = (namespace: string, name: string, labels?: Record<string, string>): KubeObject => ({
  metadata: { namespace, name, uid: `${namespace}-${name}`, ...(labels ? { labels } : {}) },
});

function managerOf(cluster: FakeCluster) {
  return new ControllerManager({
    client: cluster.client,
    log: createLogger("test", "error"),
    metrics: new OperatorMetrics(false),
    namespace: "ops",
  });
}

describe("ControllerManager", () => {
  it("runs no pass before the caches are synced, then one for every primary object", async () => {
    const cluster = new FakeCluster().seed("federatedbackups", obj("ns", "a"), obj("ns", "b"));
    let listed!: () => void;
    cluster.hold("nodes", new Promise((resolve) => (listed = resolve)));
    const manager = managerOf(cluster);
    const seen: string[] = [];
    manager.informer(Resources.Node);
    manager.addController({
      name: "backups",
      for: manager.informer(Resources.FederatedBackup),
      reconcile: (key) => Promise.resolve(void seen.push(key)),
    });
    const started = manager.start();
    await sleep(30);
    assert.deepEqual(seen, [], "a pass ran before the node cache had its first list");
    assert.equal(manager.synced, false);
    assert.equal(manager.isWorking, false);
    listed();
    await started;
    assert.equal(manager.synced, true);
    assert.equal(manager.isWorking, true);
    await until(() => seen.length === 2);
    assert.deepEqual(seen.sort(), ["ns/a", "ns/b"]);
    await manager.stop();
  });

  it("runs a primary object's key on its events, and the keys each watch maps other objects' events to", async () => {
    const cluster = new FakeCluster();
    const manager = managerOf(cluster);
    const seen: string[] = [];
    const jobs = manager.informer(Resources.Job);
    manager
      .addController({
        name: "backups",
        for: manager.informer(Resources.FederatedBackup),
        reconcile: (key) => Promise.resolve(void seen.push(key)),
      })
      .watches(jobs, (_event, job) => [`${job.metadata.namespace}/${job.metadata.labels?.owner}`]);
    await manager.start();
    cluster.send("federatedbackups", "ADDED", obj("ns", "a"));
    await until(() => seen.includes("ns/a"));
    cluster.send("jobs", "ADDED", obj("ns", "a-job", { owner: "b" }));
    await until(() => seen.includes("ns/b"));
    assert.deepEqual(seen, ["ns/a", "ns/b"]);
    assert.ok(manager.queue("backups"));
    await manager.stop();
  });

  it("gives each controller its own queue and stops them all on stop()", async () => {
    const cluster = new FakeCluster();
    const manager = managerOf(cluster);
    const seen: string[] = [];
    const backups = manager.informer(Resources.FederatedBackup);
    const restores = manager.informer(Resources.WorkloadRestore);
    manager.addController({ name: "b", for: backups, reconcile: (k) => Promise.resolve(void seen.push(`b ${k}`)) });
    manager.addController({ name: "r", for: restores, reconcile: (k) => Promise.resolve(void seen.push(`r ${k}`)) });
    await manager.start();
    cluster.send("workloadrestores", "ADDED", obj("ns", "x"));
    await until(() => seen.length === 1);
    assert.deepEqual(seen, ["r ns/x"]);
    await manager.stop();
    assert.equal(manager.isWorking, false);
    manager.queue("b").add("ns/late");
    await sleep(20);
    assert.deepEqual(seen, ["r ns/x"], "a stopped queue ran a key");
    assert.throws(() => manager.queue("nope"), /no controller named nope/);
  });

  it("loads the leader's state before the caches, and does not start when it cannot", async () => {
    const cluster = new FakeCluster();
    const manager = managerOf(cluster);
    manager.informer(Resources.Node);
    manager.addLeaderState({ name: "record", load: () => Promise.reject(new Error("forbidden")) });
    await assert.rejects(manager.start(), /forbidden/);
    assert.deepEqual(cluster.lists, [], "a cache was listed before the leader state was loaded");
    assert.equal(manager.isWorking, false);
  });

  it("refuses a controller added twice or after start()", async () => {
    const manager = managerOf(new FakeCluster());
    const backups = manager.informer(Resources.FederatedBackup);
    const reconcile = () => Promise.resolve();
    manager.addController({ name: "b", for: backups, reconcile });
    assert.throws(() => manager.addController({ name: "b", for: backups, reconcile }), /registered already/);
    await manager.start();
    assert.throws(() => manager.addController({ name: "c", for: backups, reconcile }), /after the manager started/);
    await manager.stop();
  });
});
