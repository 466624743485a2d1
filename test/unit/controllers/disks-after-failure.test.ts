import assert from "node:assert/strict";
import {
  describeDisksAfterFailure,
  disksAfterFailure,
  mayStartAgain,
} from "../../../src/controllers/workloadrestore/disks-after-failure.js";

const block = { claims: [{ volume: "root", claimName: "db-root", volumeMode: "Block" as const }] };
const filesystem = { claims: [{ volume: "root", claimName: "db-root", volumeMode: "Filesystem" as const }] };

describe("disks after a failed restore", () => {
  it("a verification failure leaves the disks untouched, and the VM may start again", () => {
    const state = disksAfterFailure("ChecksumMismatch", block);
    assert.equal(state, "Untouched");
    assert.equal(mayStartAgain(state), true);
    assert.equal(describeDisksAfterFailure(state), "its disks were not touched");
  });

  it("a device the agent wrote in part keeps the VM stopped", () => {
    const state = disksAfterFailure("ClaimPartlyWritten", block);
    assert.equal(state, "PartlyWritten");
    assert.equal(mayStartAgain(state), false);
    assert.match(describeDisksAfterFailure(state), /partly written.*Halted/);
  });

  it("no result for a VM with Block-mode claims: it may have been written, so it stays stopped", () => {
    assert.equal(disksAfterFailure("JobFailed", block), "MaybePartlyWritten");
    assert.equal(mayStartAgain("MaybePartlyWritten"), false);
  });

  it("no result for a VM on files or Filesystem-mode claims: they are swapped whole or not at all", () => {
    assert.equal(disksAfterFailure("JobFailed", filesystem), "Untouched");
    assert.equal(disksAfterFailure("JobFailed", {}), "Untouched");
  });

  it("a VM failed before the Job ran was never written", () => {
    assert.equal(disksAfterFailure("NodeFailed", block), "Untouched");
  });
});
