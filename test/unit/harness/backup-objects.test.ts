import assert from "node:assert/strict";
import { backupObjectKind, countBackupObjects } from "../../harness/backup-objects.js";

describe("backup objects by kind", () => {
  it("names each file of the layout", () => {
    assert.equal(backupObjectKind("demo/db-0/manifest.json"), "VM manifest");
    assert.equal(backupObjectKind("demo/db-0/definition.json"), "definition");
    assert.equal(backupObjectKind("demo/db-0/secrets.json"), "Secrets file");
    assert.equal(backupObjectKind("demo/db-0/files/demo/db-0/disk-0.img"), "disk image");
    assert.equal(backupObjectKind("demo/db-0/devices/root.data"), "block disk");
    assert.equal(backupObjectKind("demo/db-0/claims/root/disk.img"), "claim disk");
    assert.equal(backupObjectKind("nodes/node-a-r1.json"), "node manifest");
  });

  it("calls anything else other", () => {
    for (const key of [
      "manifest.json",
      "demo/manifest.json",
      "demo/db-0/notes.txt",
      "demo/db-0/files",
      "demo/db-0/claims/root/other.img",
      "demo/db-0/devices/a/b.data",
      "demo//manifest.json",
      "nodes/node-a-r1.txt",
      "nodes/x/node-a-r1.json",
    ])
      assert.equal(backupObjectKind(key), "other", key);
  });

  it("counts them in the order first seen, other last", () => {
    assert.deepEqual(
      countBackupObjects([
        "odd",
        "demo/a/files/x.img",
        "demo/a/manifest.json",
        "demo/b/files/y.img",
        "nodes/node-b-r1.json",
        "demo/b/manifest.json",
      ]),
      [
        ["disk image", 2],
        ["VM manifest", 2],
        ["node manifest", 1],
        ["other", 1],
      ],
    );
    assert.deepEqual(countBackupObjects([]), []);
  });
});
