import assert from "node:assert/strict";
import { SharedInformers } from "../../../src/controllers/runtime/shared-informers.js";
import { Resources } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { FakeCluster } from "./fake-cluster.js";

const quiet = { warn: () => {} };

describe("SharedInformers", () => {
  it("gives the same cache for the same resource and selectors, and another for anything else", () => {
    const caches = new SharedInformers(new FakeCluster().client, quiet);
    const managed = caches.informer(Resources.Job, { labelSelector: "app=x" });
    assert.equal(caches.informer(Resources.Job, { labelSelector: "app=x" }), managed);
    assert.notEqual(caches.informer(Resources.Job), managed);
    assert.notEqual(caches.informer(Resources.Job, { labelSelector: "app=y" }), managed);
    assert.notEqual(caches.informer(Resources.Job, { labelSelector: "app=x", namespace: "ns" }), managed);
    assert.notEqual(caches.informer(Resources.Pod, { labelSelector: "app=x" }), managed);
    assert.equal(caches.all().length, 5);
  });

  it("refuses one cache asked for with two different transforms (they would disagree on what it holds)", () => {
    const caches = new SharedInformers(new FakeCluster().client, quiet);
    const slim = (o: KubeObject) => o;
    caches.informer(Resources.Pod, {}, slim);
    assert.doesNotThrow(() => caches.informer(Resources.Pod, {}, slim));
    assert.throws(() => caches.informer(Resources.Pod, {}), /another transform/);
    assert.throws(() => caches.informer(Resources.Pod, {}, (o: KubeObject) => o), /another transform/);
  });

  it("lists each cache once on start, is synced after, and takes no new cache then", async () => {
    const cluster = new FakeCluster();
    const caches = new SharedInformers(cluster.client, quiet);
    caches.informer(Resources.Node);
    caches.informer(Resources.Node);
    caches.informer(Resources.Lease, { namespace: "ops" });
    assert.equal(caches.synced, false);
    await caches.start();
    assert.equal(caches.synced, true);
    assert.deepEqual(
      cluster.lists.map((l) => l.plural),
      ["nodes", "leases"],
    );
    assert.equal(caches.informer(Resources.Node), caches.all()[0], "an existing cache is still given");
    assert.throws(() => caches.informer(Resources.Pod), /after the caches started/);
    await caches.stop();
  });
});
