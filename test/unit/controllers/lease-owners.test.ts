import assert from "node:assert/strict";
import { activeInCache, LeaseOwners } from "../../../src/controllers/runtime/lease-owners.js";
import type { KubeObject } from "../../../src/k8s/types.js";

describe("LeaseOwners", () => {
  it("asks the kind that registered whether its run is active, with the run's key and UID", () => {
    const owners = new LeaseOwners();
    const asked: Array<[string, string | undefined]> = [];
    owners.register("FederatedBackup", (key, uid) => {
      asked.push([key, uid]);
      return uid === "u1";
    });
    owners.register("WorkloadRestore", () => false);
    assert.equal(owners.ownerActive("FederatedBackup/ns/nightly/u1"), true);
    assert.equal(owners.ownerActive("FederatedBackup/ns/nightly/u2"), false);
    assert.equal(owners.ownerActive("WorkloadRestore/ns/nightly/u1"), false);
    assert.deepEqual(asked, [
      ["ns/nightly", "u1"],
      ["ns/nightly", "u2"],
    ]);
  });

  it("takes an owner of a kind nobody registered for inactive", () => {
    const owners = new LeaseOwners();
    owners.register("FederatedBackup", () => true);
    assert.equal(owners.ownerActive("Schedule/ns/nightly/u1"), false);
    assert.equal(owners.ownerActive(""), false);
  });

  it("refuses a kind registered twice", () => {
    const owners = new LeaseOwners();
    owners.register("FederatedBackup", () => true);
    assert.throws(() => owners.register("FederatedBackup", () => false), /registered already/);
  });
});

describe("activeInCache", () => {
  type Run = KubeObject & { done?: boolean };
  const cache = (runs: Run[]) => ({
    get: (key: string) => runs.find((r) => `${r.metadata.namespace}/${r.metadata.name}` === key),
  });
  const running = (r: Run | undefined) => !!r && !r.done;

  it("is active while the cached run with that UID is going", () => {
    const active = activeInCache(cache([{ metadata: { namespace: "ns", name: "a", uid: "u1" } }]), running);
    assert.equal(active("ns/a", "u1"), true);
  });

  it("is not active once the run finished, was deleted, or was created again under the same name", () => {
    const finished = activeInCache(
      cache([{ metadata: { namespace: "ns", name: "a", uid: "u1" }, done: true }]),
      running,
    );
    assert.equal(finished("ns/a", "u1"), false);
    assert.equal(activeInCache(cache([]), running)("ns/a", "u1"), false);
    const recreated = activeInCache(cache([{ metadata: { namespace: "ns", name: "a", uid: "u2" } }]), running);
    assert.equal(recreated("ns/a", "u1"), false);
  });
});
