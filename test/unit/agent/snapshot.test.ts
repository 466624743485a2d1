import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { open, readFile, readdir, statfs, truncate } from "node:fs/promises";
import { join } from "node:path";
import type { NodeBackupPlan } from "../../../src/agent/backup.js";
import { runNodeBackup } from "../../../src/agent/backup.js";
import { readWorkloadManifest } from "../../../src/agent/manifest.js";
import { restoreWorkload } from "../../../src/agent/restore.js";
import { chooseSnapshotProvider, probeReflink } from "../../../src/agent/snapshot.js";
import {
  GiB,
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  realClock,
  referenceHash,
  writeRandomFile,
  writeSparseFile,
  nodeBackupPlan,
  mountReflinkVolume,
  type ReflinkVolume,
} from "./helpers.js";

const TMPFS_MAGIC = 0x01021994;

function plan(shared: string, location: string, overrides: Partial<NodeBackupPlan>): NodeBackupPlan {
  return nodeBackupPlan(shared, location, overrides);
}

const deps = (freezer = new RecordingFreezer()) => ({
  freezer,
  isActiveOnNode: alwaysActive,
  clock: realClock,
  log: memoryLog(),
  signals: [],
});

const ctx = (sharedRoot: string) => ({
  backup: { namespace: "backups", name: "nightly", uid: "uid-1" },
  node: "node-1",
  round: 1,
  sharedRoot,
});

describe("agent/snapshot", function () {
  this.timeout(30_000);

  describe("on filesystems without reflink", function () {
    let dir: string;
    let cleanup: () => Promise<void>;
    afterEach(() => cleanup());

    it("Auto picks Copy on ext4 (the probe says why) and leaves no probe files", async () => {
      ({ dir, cleanup } = makeTempDir("noreflink"));
      const probe = await probeReflink(dir, "probe");
      assert.equal(probe.supported, false);
      assert.match(probe.detail ?? "", /^E[A-Z]+: /);
      assert.deepEqual(await readdir(join(dir, "probe")), []);
      const choice = await chooseSnapshotProvider("Auto", ctx(dir));
      assert.equal(choice.provider.method, "Copy");
      assert.equal(choice.probe?.supported, false);
    });

    it("Auto picks Copy on tmpfs", async function () {
      if (!existsSync("/dev/shm") || (await statfs("/dev/shm")).type !== TMPFS_MAGIC) {
        console.log("      (skipped: /dev/shm is not a tmpfs on this machine)");
        this.skip();
      }
      ({ dir, cleanup } = makeTempDir("tmpfs", "/dev/shm"));
      const choice = await chooseSnapshotProvider("Auto", ctx(dir));
      assert.equal(choice.provider.method, "Copy");
    });

    it("an explicit Reflink on ext4 fails each VM with a clear reason", async () => {
      ({ dir, cleanup } = makeTempDir("noreflink"));
      await writeRandomFile(join(dir, "shared/vms/a/disk.img"), MiB);
      const freezer = new RecordingFreezer();
      const result = await runNodeBackup(
        plan(join(dir, "shared"), join(dir, "location"), {
          method: "Reflink",
          workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img"] }],
        }),
        deps(freezer),
      );
      assert.equal(result.method, "Reflink");
      assert.deepEqual(
        result.failed.map((f) => f.reason),
        ["CaptureFailed"],
      );
      assert.match(
        result.failed[0]?.message ?? "",
        /Reflink of vms\/a\/disk\.img failed: the filesystem does not support reflink/,
      );
      freezer.assertAllThawed();
      // No partial clone left behind (only the empty top directory of all snapshots).
      assert.deepEqual(await readdir(join(dir, "shared/.fedbackup/snapshots")), []);
    });
  });

  describe("on XFS with reflink (loop-mounted image)", function () {
    let dir: string;
    let shared: string;
    let volume: ReflinkVolume | undefined;

    before(async function () {
      this.timeout(60_000);
      const mounted = await mountReflinkVolume();
      if (typeof mounted === "string") {
        console.log(`      (skipped: ${mounted})`);
        this.skip();
      }
      volume = mounted;
      shared = mounted.mnt;
      dir = mounted.dir;
    });

    after(async function () {
      this.timeout(30_000);
      await volume?.unmount();
    });

    it("the probe finds reflink support", async () => {
      const probe = await probeReflink(shared, "probe-here");
      assert.deepEqual(probe, { supported: true });
      assert.deepEqual(await readdir(join(shared, "probe-here")), []);
    });

    it("Auto picks Reflink; a 64 MiB image and a 1 GiB sparse image are cloned within a short freeze window", async () => {
      await writeRandomFile(join(shared, "vms/a/disk.img"), 64 * MiB);
      await writeSparseFile(join(shared, "vms/b/disk.img"), GiB);
      const handle = await open(join(shared, "vms/b/disk.img"), "r+");
      await handle.write(Buffer.from("partition table"), 0, 15, 512);
      await handle.close();
      const location = join(dir, "location-backup");
      const freezer = new RecordingFreezer();
      const result = await runNodeBackup(
        plan(shared, location, {
          workloads: [
            { namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img"] },
            { namespace: "prod", name: "b", uid: "uid-b", files: ["vms/b/disk.img"] },
          ],
        }),
        deps(freezer),
      );
      assert.equal(result.method, "Reflink");
      assert.deepEqual(result.failed, []);
      // One window for the node: both frozen, both cloned, both thawed.
      assert.deepEqual(freezer.log.slice(0, 2).sort(), ["freeze prod/a", "freeze prod/b"]);
      assert.deepEqual(freezer.log.slice(2).sort(), ["unfreeze prod/a", "unfreeze prod/b"]);
      for (const captured of result.captured) {
        assert.equal(captured.indication, "GuestAgent");
        assert.equal(captured.consistency, "ApplicationConsistent");
        assert.ok(captured.freezeWindowMs < 1000, `${captured.name} was frozen for ${captured.freezeWindowMs} ms`);
      }
      for (const vm of ["a", "b"]) {
        const source = join(shared, `vms/${vm}/disk.img`);
        const extracted = join(location, `prod/${vm}/files/vms/${vm}/disk.img`);
        await assertSameBytes(source, extracted);
        const manifest = await readWorkloadManifest(location, "prod", vm);
        assert.equal(manifest.method, "Reflink");
        assert.equal(manifest.files[0]?.sha256, (await referenceHash(source)).sha256);
      }
      // The clones were deleted after the extraction.
      assert.deepEqual(await readdir(join(shared, ".fedbackup/snapshots")), []);
    });

    it("with extractAt Restore keeps the clones, records where they are, and restores from them", async () => {
      await writeRandomFile(join(shared, "vms/c/disk.img"), 8 * MiB);
      const original = await referenceHash(join(shared, "vms/c/disk.img"));
      const location = join(dir, "location-deferred");
      const result = await runNodeBackup(
        plan(shared, location, {
          extractAt: "Restore",
          workloads: [{ namespace: "prod", name: "c", uid: "uid-c", files: ["vms/c/disk.img"] }],
        }),
        deps(),
      );
      assert.deepEqual(result.failed, []);
      const manifest = await readWorkloadManifest(location, "prod", "c");
      assert.equal(manifest.extractAt, "Restore");
      assert.equal(manifest.snapshot?.location, ".fedbackup/snapshots/backups/nightly-uid-nightly/node-1-r1/prod/c");
      assert.deepEqual({ bytes: manifest.files[0]?.bytes, sha256: manifest.files[0]?.sha256 }, original);
      assert.equal(existsSync(join(location, "prod/c/files")), false, "nothing is extracted at backup time");
      const clone = join(shared, manifest.snapshot?.location ?? "", "vms/c/disk.img");
      assert.deepEqual(await referenceHash(clone), original);

      // The VM writes on: the clone is copy-on-write, so it keeps the captured data.
      await truncate(join(shared, "vms/c/disk.img"), 3 * MiB);
      assert.deepEqual(await referenceHash(clone), original);
      assert.deepEqual(
        await restoreWorkload({
          locationRoot: dir,
          backupPath: "location-deferred",
          namespace: "prod",
          name: "c",
          sharedRoot: shared,
          allowedFiles: ["vms/c/disk.img"],
        }),
        {
          files: 1,
          bytes: 8 * MiB,
          verified: true,
        },
      );
      assert.deepEqual(await referenceHash(join(shared, "vms/c/disk.img")), original);
      assert.ok((await readFile(join(location, "nodes/node-1-r1.json"), "utf8")).includes('"method": "Reflink"'));
    });
  });
});
