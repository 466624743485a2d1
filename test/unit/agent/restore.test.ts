import assert from "node:assert/strict";
import { promises as fsp } from "node:fs";
import { chmod, mkdir, open, readFile, readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import { RestoreError, restoreWorkload } from "../../../src/agent/restore.js";
import type { RestoreErrorReason } from "../../../src/agent/restore.js";
import {
  MiB,
  flipByte,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  realClock,
  writeRandomFile,
} from "./helpers.js";

describe("agent/restore restoreWorkload", function () {
  this.timeout(30_000);
  let root: string;
  let cleanup: () => Promise<void>;
  let shared: string;
  let location: string;
  let pristine: string;
  const disk = "vms/a/disk.img";
  const seed = "vms/a/seed.iso";

  // Each test starts from a fresh backup of VM prod/a (two files) whose disks then changed.
  beforeEach(async () => {
    ({ dir: root, cleanup } = makeTempDir("restore"));
    shared = join(root, "shared");
    location = join(root, "location");
    pristine = join(root, "pristine");
    await writeRandomFile(join(shared, disk), 5 * MiB + 1);
    await writeRandomFile(join(shared, seed), 4096);
    await chmod(join(shared, disk), 0o660);
    await mkdir(join(pristine, "vms/a"), { recursive: true });
    await fsp.copyFile(join(shared, disk), join(pristine, disk));
    await fsp.copyFile(join(shared, seed), join(pristine, seed));
    const result = await runNodeBackup(
      {
        backup: { namespace: "backups", name: "nightly", uid: "uid-1" },
        node: "node-1",
        round: 1,
        method: "Copy",
        quiesce: "GuestAgent",
        freezeTimeoutMs: 1000,
        maxFreezeMs: 30_000,
        extractAt: "Backup",
        sharedRoot: shared,
        locationRoot: root,
        backupPath: "location",
        workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files: [disk, seed] }],
      },
      {
        freezer: new RecordingFreezer(),
        isActiveOnNode: alwaysActive,
        clock: realClock,
        log: memoryLog(),
        signals: [],
      },
    );
    assert.equal(result.captured.length, 1);
    // The VM keeps running: its disk changes after the backup.
    const handle = await open(join(shared, disk), "r+");
    await handle.write(Buffer.from("written after the backup"), 0, 24, 1000);
    await handle.close();
  });
  afterEach(() => cleanup());

  const request = () => ({
    locationRoot: root,
    backupPath: "location",
    namespace: "prod",
    name: "a",
    sharedRoot: shared,
    allowedFiles: [disk, seed],
  });
  const backupFile = (path: string) => join(location, "prod/a/files", path);

  async function assertRejectsUntouched(reason: RestoreErrorReason, message: RegExp) {
    const before = await readFile(join(shared, disk));
    const error = await restoreWorkload(request()).then(
      () => assert.fail("restore should have failed"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof RestoreError, `not a RestoreError: ${String(error)}`);
    assert.equal(error.reason, reason);
    assert.match(error.message, message);
    assert.ok((await readFile(join(shared, disk))).equals(before), "the VM's disk was modified");
    assert.deepEqual((await readdir(join(shared, "vms/a"))).sort(), ["disk.img", "seed.iso"]);
  }

  it("verifies and restores every file, with the current file's mode, and leaves nothing behind", async () => {
    const result = await restoreWorkload(request());
    assert.deepEqual(result, { files: 2, bytes: 5 * MiB + 1 + 4096, verified: true });
    await assertSameBytes(join(pristine, disk), join(shared, disk));
    await assertSameBytes(join(pristine, seed), join(shared, seed));
    assert.equal((await stat(join(shared, disk))).mode & 0o777, 0o660);
    assert.deepEqual((await readdir(join(shared, "vms/a"))).sort(), ["disk.img", "seed.iso"]);
  });

  it("restores into a directory whose files were deleted, with the mode recorded at backup time", async () => {
    await rm(join(shared, "vms"), { recursive: true });
    await restoreWorkload(request());
    await assertSameBytes(join(pristine, disk), join(shared, disk));
    assert.equal((await stat(join(shared, disk))).mode & 0o777, 0o660);
  });

  it("detects a backup file that changed after the backup (same size) and does not touch the disk", async () => {
    // Flipped: a fixed value would leave the random file as it was once in 256 runs.
    await flipByte(backupFile(disk), 3 * MiB);
    await assertRejectsUntouched(
      "ChecksumMismatch",
      /vms\/a\/disk\.img is corrupt: sha256 [0-9a-f]{64}, the manifest lists/,
    );
  });

  it("refuses a truncated backup file and leaves the disk untouched", async () => {
    await truncate(backupFile(seed), 100);
    await assertRejectsUntouched("SizeMismatch", /vms\/a\/seed\.iso has 100 bytes, the manifest lists 4096/);
  });

  it("refuses a backup with a missing file", async () => {
    await rm(backupFile(seed));
    await assertRejectsUntouched("MissingFile", /backup file for vms\/a\/seed\.iso is missing/);
  });

  it("refuses a missing or corrupt manifest", async () => {
    const manifestPath = join(location, "prod/a/manifest.json");
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as { files: { path: string }[] };
    await rm(manifestPath);
    await assertRejectsUntouched("InvalidManifest", /no manifest/);
    await writeFile(manifestPath, "{ not json");
    await assertRejectsUntouched("InvalidManifest", /not valid JSON/);
    manifest.files[0] = { ...manifest.files[0], path: "../../etc/shadow" };
    await writeFile(manifestPath, JSON.stringify(manifest));
    await assertRejectsUntouched("InvalidManifest", /'\.\.' segment/);
  });

  it("puts the previous files back when a swap fails midway", async () => {
    const before = { disk: await readFile(join(shared, disk)), seed: await readFile(join(shared, seed)) };
    // Fail the rename that moves the second file's restored copy into place (after the first file was swapped).
    const realRename = fsp.rename;
    fsp.rename = async (from, to) => {
      // (The agent renames through /proc/self/fd/<directory>/<name>.)
      if (String(to).endsWith("/seed.iso") && String(from).includes(".tmp-")) throw new Error("injected I/O error");
      return realRename(from, to);
    };
    syncBuiltinESMExports();
    try {
      await assert.rejects(restoreWorkload(request()), /injected I\/O error/);
    } finally {
      fsp.rename = realRename;
      syncBuiltinESMExports();
    }
    assert.ok((await readFile(join(shared, disk))).equals(before.disk), "the first file was not rolled back");
    assert.ok((await readFile(join(shared, seed))).equals(before.seed));
    assert.deepEqual((await readdir(join(shared, "vms/a"))).sort(), ["disk.img", "seed.iso"]);
  });

  it("recovers from a restore killed midway: a disk moved aside is put back, leftovers are removed", async () => {
    // As left by a restore killed between "disk -> disk.fedbackup-prev" and "temp -> disk", with its
    // temporary copy still there; and a seed.iso whose swap had completed but whose previous file remained.
    await fsp.rename(join(shared, disk), join(shared, `${disk}.fedbackup-prev`));
    await writeFile(join(shared, "vms/a/.disk.img.tmp-0123456789ab"), "partial copy");
    await writeFile(join(shared, `${seed}.fedbackup-prev`), "old seed");
    const log = memoryLog();
    await restoreWorkload({ ...request(), log });
    await assertSameBytes(join(pristine, disk), join(shared, disk));
    await assertSameBytes(join(pristine, seed), join(shared, seed));
    assert.deepEqual((await readdir(join(shared, "vms/a"))).sort(), ["disk.img", "seed.iso"]);
    assert.ok(log.lines.some((l) => l.includes("putting back a disk file an interrupted restore had moved aside")));
  });
});
