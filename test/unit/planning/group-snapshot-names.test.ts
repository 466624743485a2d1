import assert from "node:assert/strict";
import { groupSnapshotName } from "../../../src/planning/index.js";

describe("groupSnapshotName", () => {
  it("is the step's and the VM's names with a hash of the step and the VM, the same for the same inputs", () => {
    const name = groupSnapshotName("nightly-r1-node-a", { namespace: "apps", name: "db" });
    assert.match(name, /^nightly-r1-node-a-db-[0-9a-f]{8}$/);
    assert.equal(groupSnapshotName("nightly-r1-node-a", { namespace: "apps", name: "db" }), name);
  });

  it("keeps apart VMs of one name in two namespaces, and pairs whose joined names are the same", () => {
    assert.notEqual(
      groupSnapshotName("s", { namespace: "a", name: "vm" }),
      groupSnapshotName("s", { namespace: "b", name: "vm" }),
    );
    assert.notEqual(
      groupSnapshotName("b-r1-n", { namespace: "x", name: "a-x" }),
      groupSnapshotName("b-r1-n-a", { namespace: "x", name: "x" }),
    );
  });

  it("is a valid label value: at most 63 characters, alphanumeric at both ends", () => {
    const long = groupSnapshotName("a".repeat(63), { namespace: "n", name: `${"b".repeat(40)}.c` });
    assert.ok(long.length <= 63, long);
    assert.match(long, /^[a-z0-9][-a-z0-9.]*[a-z0-9]$/);
    assert.match(groupSnapshotName("s".repeat(53), { namespace: "n", name: "x" }), /^s+-[0-9a-f]{8}$/);
  });
});
