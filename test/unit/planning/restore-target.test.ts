import assert from "node:assert/strict";
import { isCopy, restoreTarget } from "../../../src/planning/restore-target.js";

const source = { namespace: "vms", name: "db-0" };

describe("restoreTarget", () => {
  it("is the captured VM itself when nothing asks for another target", () => {
    assert.deepEqual(restoreTarget(source, undefined, undefined), source);
    assert.deepEqual(restoreTarget(source, {}, {}), source);
  });

  it("takes targetName, keeping the source's namespace", () => {
    assert.deepEqual(restoreTarget(source, { targetName: "db-0-copy" }, undefined), {
      namespace: "vms",
      name: "db-0-copy",
    });
  });

  it("maps the namespace through namespaceMapping, only for the source's namespace", () => {
    assert.deepEqual(restoreTarget(source, undefined, { vms: "staging" }), { namespace: "staging", name: "db-0" });
    assert.deepEqual(restoreTarget(source, undefined, { other: "staging" }), source);
  });

  it("prefers targetNamespace over namespaceMapping", () => {
    assert.deepEqual(restoreTarget(source, { targetNamespace: "qa", targetName: "x" }, { vms: "staging" }), {
      namespace: "qa",
      name: "x",
    });
  });
});

describe("isCopy", () => {
  it("is false for the same namespace and name", () => {
    assert.equal(isCopy(source, { namespace: "vms", name: "db-0" }), false);
  });

  it("is true for another name or another namespace", () => {
    assert.equal(isCopy(source, { namespace: "vms", name: "db-1" }), true);
    assert.equal(isCopy(source, { namespace: "staging", name: "db-0" }), true);
  });
});
