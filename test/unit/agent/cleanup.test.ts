// Removing a deleted backup's files: only its own, never through a symlink a tenant planted.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cleanupBackup, type CleanupPlan } from "../../../src/agent/cleanup.js";
import { UnsafePathError } from "../../../src/agent/safe-fs.js";
import { backupSnapshotsPath, type BackupKey } from "../../../src/planning/index.js";
import { describeTree, makeTempDir } from "./helpers.js";

describe("agent/cleanup cleanupBackup", function () {
  let root: string;
  let cleanup: () => Promise<void>;
  let shared: string;
  let location: string;
  let victim: string;
  // Two backups with the same name in two namespaces, on one shared volume and one location.
  const nightlyA: BackupKey = { namespace: "team-a", name: "nightly", uid: "0f3c-aaaa" };
  const nightlyB: BackupKey = { namespace: "team-b", name: "nightly", uid: "71d2-bbbb" };
  const backupPathOf = (b: BackupKey) => `${b.namespace}/${b.name}-${b.uid.slice(0, 4)}`;
  const planOf = (b: BackupKey): CleanupPlan => ({
    locationRoot: location,
    sharedRoot: shared,
    backupPath: backupPathOf(b),
    snapshotsPath: backupSnapshotsPath(b),
  });

  beforeEach(async () => {
    ({ dir: root, cleanup } = makeTempDir("cleanup"));
    shared = join(root, "shared");
    location = join(root, "location");
    victim = join(root, "victim");
    for (const b of [nightlyA, nightlyB]) {
      const kept = join(shared, backupSnapshotsPath(b), "node-1-r1", "prod", b.namespace, "vms/x");
      await mkdir(kept, { recursive: true });
      await writeFile(join(kept, "disk.img"), `kept snapshot of ${b.namespace}`);
      const files = join(location, backupPathOf(b), "prod/x/files/vms/x");
      await mkdir(files, { recursive: true });
      await writeFile(join(files, "disk.img"), `backup of ${b.namespace}`);
      await writeFile(join(location, backupPathOf(b), "prod/x/manifest.json"), "{}");
    }
    await mkdir(join(shared, "vms/x"), { recursive: true });
    await writeFile(join(shared, "vms/x/disk.img"), "a live disk");
    await mkdir(victim);
    await writeFile(join(victim, "keep.txt"), "the victim's file");
  });
  afterEach(() => cleanup());

  // Everything but A's two directories, as it is now.
  async function othersNow() {
    const trees = {
      shared: await describeTree(shared),
      location: await describeTree(location),
      victim: await describeTree(victim),
    };
    for (const [tree, prefix] of [
      [trees.shared, backupSnapshotsPath(nightlyA)],
      [trees.location, backupPathOf(nightlyA)],
    ] as const) {
      for (const path of Object.keys(tree)) if (path === prefix || path.startsWith(`${prefix}/`)) delete tree[path];
    }
    return trees;
  }

  it("keys kept snapshots by namespace, name and uid, and removes only the deleted backup's", async () => {
    assert.equal(backupSnapshotsPath(nightlyA), ".fedbackup/snapshots/team-a/nightly-0f3c-aaaa");
    const before = await othersNow();
    const removed = await cleanupBackup(planOf(nightlyA));
    assert.deepEqual(removed, [join(location, backupPathOf(nightlyA)), join(shared, backupSnapshotsPath(nightlyA))]);
    assert.equal(existsSync(join(shared, backupSnapshotsPath(nightlyA))), false);
    assert.equal(existsSync(join(location, backupPathOf(nightlyA))), false);
    assert.deepEqual(await othersNow(), before, "another backup's files changed");
  });

  it("without a snapshots path (a backup without a shared volume) removes its location directory only", async () => {
    const removed = await cleanupBackup({
      locationRoot: location,
      sharedRoot: shared,
      backupPath: backupPathOf(nightlyA),
    });
    assert.deepEqual(removed, [join(location, backupPathOf(nightlyA))]);
    assert.equal(existsSync(join(location, backupPathOf(nightlyA))), false);
    assert.equal(existsSync(join(shared, backupSnapshotsPath(nightlyA))), true, "the shared volume is not touched");
  });

  it("removes symlinks planted inside the trees as names, never what they point to", async () => {
    const kept = join(shared, backupSnapshotsPath(nightlyA));
    await symlink(join(shared, backupSnapshotsPath(nightlyB)), join(kept, "to-b"));
    await symlink(join(shared, "vms"), join(kept, "node-1-r1/prod/to-vms"));
    await symlink(victim, join(location, backupPathOf(nightlyA), "prod/x/files/to-victim"));
    const before = await othersNow();
    await cleanupBackup(planOf(nightlyA));
    assert.equal(existsSync(kept), false);
    assert.deepEqual(await othersNow(), before, "something was removed through a symlink");
  });

  it("removes a backup directory replaced by a symlink as a name, not the directory it points to", async () => {
    await rm(join(location, backupPathOf(nightlyA)), { recursive: true });
    await symlink(victim, join(location, backupPathOf(nightlyA)));
    const before = await othersNow();
    await cleanupBackup(planOf(nightlyA));
    assert.equal(existsSync(join(location, backupPathOf(nightlyA))), false);
    assert.deepEqual(await othersNow(), before);
    assert.equal(await readFile(join(victim, "keep.txt"), "utf8"), "the victim's file");
  });

  it("refuses a path whose directory on the way is a symlink, naming it, and removes nothing there", async () => {
    // A tenant moves A's namespace directory of snapshots elsewhere and links to a directory of its choice
    // that has the same layout: following the link would delete the victim's files.
    await mkdir(join(victim, "nightly-0f3c-aaaa"));
    await writeFile(join(victim, "nightly-0f3c-aaaa/precious"), "not fedbackup's");
    await rename(join(shared, ".fedbackup/snapshots/team-a"), join(root, "moved-away"));
    await symlink(victim, join(shared, ".fedbackup/snapshots/team-a"));
    const victimBefore = await describeTree(victim);
    const error = await cleanupBackup(planOf(nightlyA)).then(
      () => assert.fail("the cleanup followed the symlink"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof UnsafePathError, String(error));
    assert.match(
      error.message,
      /\.fedbackup\/snapshots\/team-a is a symbolic link, on the way to \.fedbackup\/snapshots\/team-a\/nightly-0f3c-aaaa/,
    );
    assert.deepEqual(await describeTree(victim), victimBefore);
  });
});
