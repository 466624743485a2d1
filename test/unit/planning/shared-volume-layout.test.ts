import assert from "node:assert/strict";
import {
  backupSnapshotsPath,
  isInSharedVolumeTop,
  isWorkloadSnapshotPath,
  snapshotRunPath,
  workloadSnapshotPath,
} from "../../../src/planning/index.js";

describe("src/planning/shared-volume-layout.ts", () => {
  const nightly = { namespace: "team-a", name: "nightly", uid: "6d1f0c2e-aaaa" };
  const vm = { namespace: "prod", name: "db" };

  it("keys a backup's snapshots by its namespace, name and uid", () => {
    assert.equal(backupSnapshotsPath(nightly), ".fedbackup/snapshots/team-a/nightly-6d1f0c2e-aaaa");
    assert.equal(snapshotRunPath(nightly, "node-1", 2), ".fedbackup/snapshots/team-a/nightly-6d1f0c2e-aaaa/node-1-r2");
    assert.equal(
      workloadSnapshotPath(nightly, "node-1", 2, vm),
      ".fedbackup/snapshots/team-a/nightly-6d1f0c2e-aaaa/node-1-r2/prod/db",
    );
  });

  it("gives two backups of one name in two namespaces, or a recreated one, different directories", () => {
    const paths = [nightly, { ...nightly, namespace: "team-b" }, { ...nightly, uid: "0b7e9a41-bbbb" }].map(
      backupSnapshotsPath,
    );
    assert.equal(new Set(paths).size, 3);
    for (const a of paths) for (const b of paths) if (a !== b) assert.ok(!a.startsWith(`${b}/`), `${a} is inside ${b}`);
  });

  it("refuses keys that are not one path component", () => {
    for (const bad of ["", ".", "..", "a/b", "a\0b"]) {
      assert.throws(() => backupSnapshotsPath({ ...nightly, namespace: bad }), /invalid backup namespace/);
      assert.throws(() => backupSnapshotsPath({ ...nightly, name: bad }), /invalid backup name/);
      assert.throws(() => snapshotRunPath(nightly, bad, 1), /invalid node/);
      assert.throws(() => workloadSnapshotPath(nightly, "n", 1, { ...vm, name: bad }), /invalid VM name/);
    }
    assert.throws(() => snapshotRunPath(nightly, "n", -1), /invalid round/);
  });

  it("recognises a VM's kept snapshot directory and nothing else", () => {
    assert.ok(isWorkloadSnapshotPath(workloadSnapshotPath(nightly, "node-1", 2, vm), vm));
    for (const other of [
      workloadSnapshotPath(nightly, "node-1", 2, { ...vm, name: "web" }),
      workloadSnapshotPath(nightly, "node-1", 2, { ...vm, namespace: "dev" }),
      snapshotRunPath(nightly, "node-1", 2),
      ".fedbackup/snapshots/team-a/nightly-x/node-1-r2/prod/db/more",
      ".fedbackup/snapshots/team-a/nightly-x/node-1/prod/db",
      ".fedbackup/snapshots/team-a/../node-1-r2/prod/db",
      "vms/prod/db",
      "x/snapshots/team-a/nightly-x/node-1-r2/prod/db",
    ]) {
      assert.ok(!isWorkloadSnapshotPath(other, vm), other);
    }
  });

  it("tells paths inside fedbackup's own directory", () => {
    assert.ok(isInSharedVolumeTop(".fedbackup"));
    assert.ok(isInSharedVolumeTop(".fedbackup/snapshots/x"));
    assert.ok(!isInSharedVolumeTop(".fedbackup-other/x"));
    assert.ok(!isInSharedVolumeTop("vms/.fedbackup"));
  });
});
