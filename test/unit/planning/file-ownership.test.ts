import assert from "node:assert/strict";
import { describeFileProblem, resolveFileOwnership, type FileClaimant } from "../../../src/planning/index.js";

const vm = (key: string, disks: string[], extra: string[] = []): FileClaimant => {
  const [namespace, name] = key.split("/") as [string, string];
  return { namespace, name, disks, extra };
};

describe("resolveFileOwnership", () => {
  it("gives each VM its disks and the extra files beside them", () => {
    const owned = resolveFileOwnership([
      vm("a/web", ["a/web/disk.img"], ["a/web/nvram.fd"]),
      vm("b/db", ["b/db/root.img", "b/db/data.img"]),
    ]);
    assert.deepEqual(owned.get("a/web"), { files: ["a/web/disk.img", "a/web/nvram.fd"], problems: [] });
    assert.deepEqual(owned.get("b/db"), { files: ["b/db/data.img", "b/db/root.img"], problems: [] });
  });

  it("refuses an extra file that is not in the directory of one of the VM's own disks", () => {
    const owned = resolveFileOwnership([
      vm("a/web", ["a/web/disk.img"], ["b/db/root.img", "a/web/sub/x", "a/secrets"]),
    ]).get("a/web")!;
    assert.deepEqual(owned.files, ["a/web/disk.img"]);
    assert.deepEqual(
      owned.problems.map((p) => [p.reason, p.path]),
      [
        ["UnsafeFile", "a/secrets"],
        ["UnsafeFile", "a/web/sub/x"],
        ["UnsafeFile", "b/db/root.img"],
      ],
    );
  });

  it("gives a path two VMs name to neither, and tells each which other VM names it", () => {
    const owned = resolveFileOwnership([
      vm("a/thief", ["a/thief/disk.img", "b/db/root.img"]),
      vm("b/db", ["b/db/root.img"]),
    ]);
    const thief = owned.get("a/thief")!;
    const db = owned.get("b/db")!;
    assert.deepEqual(thief.files, ["a/thief/disk.img"]);
    assert.deepEqual(db.files, []);
    assert.equal(describeFileProblem(thief.problems[0]!), "b/db/root.img is also named by VM b/db");
    assert.equal(describeFileProblem(db.problems[0]!), "b/db/root.img is also named by VM a/thief");
  });

  it("counts an extra file naming another VM's disk as a conflict, whatever its directory", () => {
    const owned = resolveFileOwnership([vm("a/x", ["shared/x.img"], ["shared/y.img"]), vm("b/y", ["shared/y.img"])]);
    assert.deepEqual(owned.get("b/y")!.problems, [
      { reason: "SharedFile", path: "shared/y.img", others: [{ namespace: "a", name: "x" }] },
    ]);
    assert.deepEqual(owned.get("a/x")!.files, ["shared/x.img"]);
  });

  it("merges a VM listed twice (its VirtualMachine and its instance): it never conflicts with itself", () => {
    const owned = resolveFileOwnership([vm("a/web", ["a/web/disk.img"]), vm("a/web", ["a/web/disk.img"], ["a/web/n"])]);
    assert.deepEqual(owned.get("a/web"), { files: ["a/web/disk.img", "a/web/n"], problems: [] });
  });
});
