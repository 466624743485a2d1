import assert from "node:assert/strict";
import { checkOneInstance, type InstanceState } from "../../chaos/invariants/instances.js";

const s = (revision: number, uid: string, running: boolean, deleted = false): InstanceState => ({
  vm: "ns/a",
  uid,
  revision: BigInt(revision),
  running,
  deleted,
  node: `node-${uid}`,
});

describe("chaos invariant: one running instance per VM", () => {
  it("accepts an instance replaced after the old one was deleted or stopped", () => {
    assert.deepEqual(checkOneInstance([s(1, "u1", true), s(2, "u1", true, true), s(3, "u2", true)]), []);
    assert.deepEqual(checkOneInstance([s(1, "u1", true), s(2, "u1", false), s(3, "u2", true)]), []);
  });

  it("catches a second instance running before the first stopped, whatever the order of arrival", () => {
    const v = checkOneInstance([s(3, "u1", true, true), s(2, "u2", true), s(1, "u1", true)]);
    assert.equal(v.length, 1);
    assert.match(v[0]!.detail, /ns\/a: u2 running on node-u2 while u1 ran on node-u1/);
  });
});
