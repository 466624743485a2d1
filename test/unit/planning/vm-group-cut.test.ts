import assert from "node:assert/strict";
import { vmGroupSnapshotClass } from "../../../src/planning/index.js";

describe("vmGroupSnapshotClass", () => {
  const g = (cls: string) => ({ groupSnapshot: true, volumeGroupSnapshotClassName: cls });
  it("is the class when every CSI claim of the VM is groupSnapshot with that one class", () => {
    assert.equal(vmGroupSnapshotClass([g("rbd-group"), g("rbd-group")]), "rbd-group");
    assert.equal(vmGroupSnapshotClass([g("rbd-group")]), "rbd-group");
  });
  it("is undefined for no claim, a claim without group support, or two classes", () => {
    assert.equal(vmGroupSnapshotClass([]), undefined);
    assert.equal(vmGroupSnapshotClass([g("rbd-group"), {}]), undefined);
    assert.equal(vmGroupSnapshotClass([{}, g("rbd-group")]), undefined);
    assert.equal(vmGroupSnapshotClass([g("rbd-group"), g("other-group")]), undefined);
    assert.equal(vmGroupSnapshotClass([{ groupSnapshot: false, volumeGroupSnapshotClassName: "x" }]), undefined);
  });
});
