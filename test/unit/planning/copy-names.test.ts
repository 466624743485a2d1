import assert from "node:assert/strict";
import { copyClaimName, copyFilePath } from "../../../src/planning/copy-names.js";

const source = { namespace: "vms", name: "db-0" };
const copy = { namespace: "vms", name: "db-0-copy" };
const elsewhere = { namespace: "staging", name: "db-0" };

describe("copyClaimName", () => {
  it("keeps the pattern of a claim named after its VM", () => {
    assert.equal(copyClaimName("db-0-root", source, copy), "db-0-copy-root");
    assert.equal(copyClaimName("db-0", source, copy), "db-0-copy");
  });

  it("puts the copy's name in front of any other claim", () => {
    assert.equal(copyClaimName("shared-data", source, copy), "db-0-copy-shared-data");
    // Starts with the VM's name but not as "<name>-": not named after it.
    assert.equal(copyClaimName("db-00-data", source, copy), "db-0-copy-db-00-data");
  });

  it("keeps the name for the same name in another namespace (claims are namespaced)", () => {
    assert.equal(copyClaimName("db-0-root", source, elsewhere), "db-0-root");
  });

  it("bounds names to 253 characters, still unique and a valid tail", () => {
    const target = { namespace: "vms", name: "c".repeat(250) };
    const a = copyClaimName(`other-${"a".repeat(240)}`, source, target);
    const b = copyClaimName(`other-${"a".repeat(239)}b`, source, target);
    for (const name of [a, b]) {
      assert.ok(name.length <= 253, `${name.length} characters`);
      assert.match(name, /-[0-9a-f]{8}$/);
      assert.ok(name.startsWith("c".repeat(40)));
    }
    assert.notEqual(a, b);
  });

  it("leaves no '-' before the hash where the cut falls on one", () => {
    const target = { namespace: "vms", name: "c".repeat(243) };
    // "<243 c>-xxx…": the cut at 244 characters ends on the "-".
    assert.match(copyClaimName("x".repeat(20), source, target), /^c+-[0-9a-f]{8}$/);
  });

  // A claim name fedbackup accepts is a DNS label (vm-disks.ts), as CDI requires of a DataVolume's name.
  it("gives claim names that are DNS labels (at most 63 characters, no '.'), still unique", () => {
    const long = { namespace: "vms", name: "c".repeat(60) };
    const dotted = { namespace: "vms", name: "db-0.copy" };
    const names = [
      copyClaimName("db-0-root", source, long),
      copyClaimName("db-0-data", source, long),
      copyClaimName("db-0-root", source, dotted),
    ];
    for (const name of names) assert.match(name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, name);
    assert.equal(new Set(names).size, names.length);
  });
});

describe("copyFilePath", () => {
  it("renames the VM's directory", () => {
    assert.equal(copyFilePath("vms/db-0/disk0.img", source, copy), "vms/db-0-copy/disk0.img");
  });

  it("renames the namespace directory above it for a copy in another namespace", () => {
    const target = { namespace: "staging", name: "db-1" };
    assert.equal(copyFilePath("vms/db-0/disk0.img", source, target), "staging/db-1/disk0.img");
    assert.equal(copyFilePath("vms/db-0/disk0.img", source, elsewhere), "staging/db-0/disk0.img");
  });

  it("gives the same name in another namespace a different path even without a namespace directory", () => {
    const path = "pool/db-0/disk0.img";
    const moved = copyFilePath(path, source, elsewhere);
    assert.notEqual(moved, path);
    assert.equal(moved, "pool/db-0/staging-disk0.img");
  });

  it("puts the copy's name in front of the file name of a path without the VM's name", () => {
    assert.equal(copyFilePath("images/disk0.img", source, copy), "images/db-0-copy-disk0.img");
    assert.equal(copyFilePath("disk0.img", source, copy), "db-0-copy-disk0.img");
  });

  it("does not take a file named like the VM for its directory", () => {
    assert.equal(copyFilePath("vms/db-0", source, copy), "vms/db-0-copy-db-0");
  });

  it("renames only the deepest directory of the VM's name", () => {
    assert.equal(copyFilePath("db-0/vms/db-0/disk0.img", source, copy), "db-0/vms/db-0-copy/disk0.img");
  });

  it("keeps the path when restoring in place", () => {
    assert.equal(copyFilePath("vms/db-0/disk0.img", source, { ...source }), "vms/db-0/disk0.img");
  });

  it("never gives a copy the original's path", () => {
    const paths = ["vms/db-0/disk0.img", "db-0/disk0.img", "disk0.img", "a/b/c.img", "db-0", "vms/db-0", "x/vms/y"];
    const targets = [copy, elsewhere, { namespace: "staging", name: "db-9" }, { namespace: "vms", name: "vms" }];
    for (const path of paths) {
      for (const target of targets) {
        assert.notEqual(copyFilePath(path, source, target), path, `${path} → ${target.namespace}/${target.name}`);
      }
    }
  });
});
