// What wakes which run: the maps from watched objects' events to the keys of the runs they concern.
import assert from "node:assert/strict";
import type { NodeObject } from "../../../src/api/kubevirt.js";
import type { FederatedBackup, WorkloadRestore } from "../../../src/api/v1alpha1/index.js";
import { allOf } from "../../../src/controllers/runtime/controller.js";
import { runsWaitingForLease } from "../../../src/controllers/runtime/lease-waiters.js";
import { onReadinessChange, readinessChanged } from "../../../src/controllers/runtime/node-readiness.js";
import { ownerByLabel } from "../../../src/controllers/runtime/owner-label.js";
import { restoresWaitingForBackup } from "../../../src/controllers/workloadrestore/waiting-for-backup.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { LEASE_OWNER_ANNOTATION, type LeaseObject } from "../../../src/k8s/volume-lease.js";

const run = (namespace: string, name: string): KubeObject => ({ metadata: { namespace, name } });
const node = (ready: "True" | "False" | undefined, since = "t1"): NodeObject & KubeObject => ({
  metadata: { name: "n1" },
  status: { conditions: ready ? [{ type: "Ready", status: ready, lastTransitionTime: since }] : [] },
});

describe("ownerByLabel", () => {
  it("wakes the run the label names, in the object's namespace", () => {
    const keys = ownerByLabel("fedbackup.io/backup");
    const job = { metadata: { namespace: "ns", name: "j", labels: { "fedbackup.io/backup": "nightly" } } };
    assert.deepEqual([...keys("add", job)], ["ns/nightly"]);
  });

  it("wakes nobody for an object without the label (another kind of run's, say)", () => {
    const keys = ownerByLabel("fedbackup.io/backup");
    const job = { metadata: { namespace: "ns", name: "j", labels: { "fedbackup.io/restore": "r" } } };
    assert.deepEqual([...keys("add", job)], []);
  });
});

describe("runsWaitingForLease", () => {
  const lease = (owner?: string): LeaseObject => ({
    metadata: { name: "vol", annotations: owner ? { [LEASE_OWNER_ANNOTATION]: owner } : {} },
  });
  const active = () => [run("ns", "a"), run("ns", "ab"), run("other", "a")];

  it("wakes every active run of the kind but the Lease's owner (its own renewals would loop)", () => {
    const keys = runsWaitingForLease("FederatedBackup", active);
    assert.deepEqual([...keys("update", lease("FederatedBackup/ns/a/u1"))], ["ns/ab", "other/a"]);
  });

  it("wakes them all when a run of another kind, or nobody, holds it", () => {
    const keys = runsWaitingForLease("FederatedBackup", active);
    assert.deepEqual([...keys("update", lease("WorkloadRestore/ns/a/u1"))], ["ns/a", "ns/ab", "other/a"]);
    assert.deepEqual([...keys("delete", lease())], ["ns/a", "ns/ab", "other/a"]);
  });
});

describe("node readiness", () => {
  it("changes when a node comes, goes, or turns (not) ready; not on a heartbeat", () => {
    assert.equal(readinessChanged("add", node("True")), true);
    assert.equal(readinessChanged("delete", node("True")), true);
    assert.equal(readinessChanged("update", node("False"), node("True")), true);
    assert.equal(readinessChanged("update", node("True"), node(undefined)), true);
    assert.equal(readinessChanged("update", node("True", "t2"), node("True", "t1")), false);
    assert.equal(readinessChanged("update", node("False", "t2"), node(undefined)), false);
  });

  it("wakes every active run on a change, and none otherwise", () => {
    const keys = onReadinessChange(() => [run("ns", "a"), run("ns", "b")]);
    assert.deepEqual([...keys("update", node("False"), node("True"))], ["ns/a", "ns/b"]);
    assert.deepEqual([...keys("update", node("True", "t2"), node("True"))], []);
  });
});

describe("allOf", () => {
  it("wakes every run listed, whatever the event", () => {
    assert.deepEqual([...allOf(() => [run("ns", "a")])("delete", {})], ["ns/a"]);
  });
});

describe("restoresWaitingForBackup", () => {
  const restore = (namespace: string, name: string, phase?: string) =>
    ({ metadata: { namespace, name }, spec: {}, ...(phase ? { status: { phase } } : {}) }) as WorkloadRestore &
      KubeObject;
  const all = [restore("ns", "new"), restore("ns", "planned", "New"), restore("ns", "running", "InProgress")];
  const cache = {
    list: (f?: (r: WorkloadRestore & KubeObject) => boolean) =>
      [...all, restore("other", "new")].filter(f ?? (() => true)),
  };

  it("wakes the restores of the backup's namespace not planned yet", () => {
    const backup = { metadata: { namespace: "ns", name: "nightly" } } as FederatedBackup & KubeObject;
    assert.deepEqual([...restoresWaitingForBackup(cache)("update", backup)], ["ns/new", "ns/planned"]);
  });
});
