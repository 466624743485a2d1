import assert from "node:assert/strict";
import { claimSnapshotName, restoredClaimSnapshotName } from "../../../src/planning/index.js";

describe("claimSnapshotName", () => {
  it("is the step's and the claim's names with a hash of both, the same for the same inputs", () => {
    const name = claimSnapshotName("nightly-r1-node-a", "db-root");
    assert.match(name, /^nightly-r1-node-a-db-root-[0-9a-f]{8}$/);
    assert.equal(claimSnapshotName("nightly-r1-node-a", "db-root"), name);
    assert.equal(restoredClaimSnapshotName(name), `${name}-restore`);
  });

  it("keeps apart pairs whose joined names are the same", () => {
    assert.notEqual(claimSnapshotName("b-r1-n", "a-x"), claimSnapshotName("b-r1-n-a", "x"));
  });

  it("stays within 63 characters with its restored claim, and ends with no '-' or '.' before the hash", () => {
    const long = claimSnapshotName("a".repeat(63), `${"b".repeat(40)}.c`);
    assert.ok(long.length <= 55, long);
    assert.ok(restoredClaimSnapshotName(long).length <= 63);
    const cut = claimSnapshotName("s".repeat(44), "-x");
    assert.match(cut, /^s+-[0-9a-f]{8}$/);
    assert.match(claimSnapshotName("s".repeat(43), "x"), /^[a-z0-9][-a-z0-9.]*[a-z0-9]$/);
  });
});
