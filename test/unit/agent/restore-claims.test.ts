// restoreWorkload with VM disks on claims, from real backups (runNodeBackup, Copy): Filesystem-mode claims as
// real directories with a disk.img, Block-mode claims as real loop devices (as root; those tests skip
// otherwise), exposed under the devices directory with mknod as a container runtime exposes volumeDevices.
// Every refusal is checked against the whole content of every disk: nothing written.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { promises as fsp } from "node:fs";
import {
  chmod,
  copyFile,
  link,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { basename, dirname, join } from "node:path";
import type { PlannedClaim } from "../../../src/agent/backup.js";
import { runNodeBackup } from "../../../src/agent/backup.js";
import type { WorkloadManifest } from "../../../src/agent/manifest.js";
import type { NodeRestoreResult } from "../../../src/agent/node-restore.js";
import { runNodeRestore } from "../../../src/agent/node-restore.js";
import type { AllowedClaim, RestoreErrorReason, RestoreRequest, RestoreResult } from "../../../src/agent/restore.js";
import { RestoreError, restoreWorkload } from "../../../src/agent/restore.js";
import type { LoopDevice } from "../../harness/block-volumes.js";
import { attachLoopDevice, fill, loopDevicesUsable } from "../../harness/block-volumes.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  describeTree,
  flipByte,
  makeTempDir,
  memoryLog,
  nodeBackupPlan,
  realClock,
  releaseFifo,
  writeRandomFile,
} from "./helpers.js";

const SECRET = "host secret\n";
const disk = "vms/a/disk.img";
const fsClaim: AllowedClaim = { volume: "root", claimName: "pvc-a", volumeMode: "Filesystem" };
const blockClaim: AllowedClaim = { volume: "data", claimName: "pvc-blk", volumeMode: "Block" };

describe("agent/restore restoreWorkload with disks on claims", function () {
  this.timeout(60_000);
  let root: string;
  let cleanup: () => Promise<void>;
  let shared: string;
  let location: string;
  let claims: string;
  let devices: string;
  let pristine: string;
  let secret: string;
  const claimImage = () => join(claims, "pvc-a/disk.img");

  beforeEach(async () => {
    ({ dir: root, cleanup } = makeTempDir("restore-claims"));
    shared = join(root, "shared");
    location = join(root, "location/backups/nightly");
    claims = join(root, "claims");
    devices = join(root, "devices");
    pristine = join(root, "pristine");
    secret = join(root, "secret.txt");
    await writeFile(secret, SECRET);
    await mkdir(devices, { recursive: true });
    await mkdir(pristine, { recursive: true });
  });
  afterEach(() => cleanup());

  /** Backs up prod/a with these files and claims, keeps a copy of every file, then changes them all. */
  async function backUp(files: string[], planned: PlannedClaim[]): Promise<void> {
    const result = await runNodeBackup(
      nodeBackupPlan(shared, location, {
        method: "Copy",
        claimsRoot: claims,
        devicesRoot: devices,
        workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files, claims: planned }],
      }),
      {
        freezer: new RecordingFreezer(),
        isActiveOnNode: alwaysActive,
        clock: realClock,
        log: memoryLog(),
        signals: [],
      },
    );
    assert.deepEqual(result.failed, []);
    const images = [
      ...files.map((f) => join(shared, f)),
      ...planned.filter((c) => c.volumeMode === "Filesystem").map((c) => join(claims, c.claimName, "disk.img")),
    ];
    for (const image of images) {
      await copyFile(image, pristineOf(image));
      const handle = await open(image, "r+");
      await handle.write(Buffer.from("written after the backup"), 0, 24, 1000);
      await handle.close();
    }
  }
  const pristineOf = (image: string) => join(pristine, image.slice(root.length).replaceAll("/", "_"));

  const request = (overrides: Partial<RestoreRequest> = {}): RestoreRequest => ({
    locationRoot: dirname(location),
    backupPath: basename(location),
    namespace: "prod",
    name: "a",
    sharedRoot: shared,
    allowedFiles: [disk],
    allowedClaims: [fsClaim, blockClaim],
    claimsRoot: claims,
    devicesRoot: devices,
    ...overrides,
  });

  async function refused(overrides: Partial<RestoreRequest> = {}): Promise<RestoreError> {
    const error = await restoreWorkload(request(overrides)).then(
      () => assert.fail("the restore should have failed"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof RestoreError, `not a RestoreError: ${String(error)}`);
    return error;
  }

  /** Everything a restore could write: the shared volume, the claims, the devices' content, the host file. */
  async function snapshot(extra: string[] = []): Promise<unknown> {
    const trees = await Promise.all([shared, claims].map((d) => describeTree(d).catch(() => ({}))));
    return [...trees, await readFile(secret, "utf8"), ...(await Promise.all(extra.map((p) => readFile(p))))];
  }

  async function assertRefusedUntouched(
    reason: RestoreErrorReason,
    message: RegExp,
    overrides: Partial<RestoreRequest> = {},
    extra: string[] = [],
  ): Promise<void> {
    const before = await snapshot(extra);
    const error = await refused(overrides);
    assert.equal(error.reason, reason, error.message);
    assert.match(error.message, message);
    assert.deepEqual(await snapshot(extra), before, "something was written");
  }

  /** prod/a's result from runNodeRestore, as `agent restore` runs it, with these claims allowed. */
  async function restoreStep(allowed: AllowedClaim[]): Promise<NodeRestoreResult | undefined> {
    const [result] = await runNodeRestore(
      {
        node: "node-1",
        sharedRoot: shared,
        locationRoot: dirname(location),
        claimsRoot: claims,
        devicesRoot: devices,
        workloads: [{ namespace: "prod", name: "a", backupPath: basename(location), files: [disk], claims: allowed }],
      },
      { runningOn: () => Promise.resolve(undefined), report: () => Promise.resolve(), log: memoryLog() },
    );
    return result;
  }

  const editManifest = async (edit: (m: WorkloadManifest) => void) => {
    const path = join(location, "prod/a/manifest.json");
    const manifest = JSON.parse(await readFile(path, "utf8")) as WorkloadManifest;
    edit(manifest);
    await writeFile(path, JSON.stringify(manifest));
  };

  describe("Filesystem-mode claims", () => {
    beforeEach(async () => {
      await writeRandomFile(join(shared, disk), 2 * MiB + 3);
      await writeRandomFile(claimImage(), 3 * MiB + 5);
      await chmod(claimImage(), 0o640);
      await backUp([disk], [fsClaim]);
    });

    it("restores the claim's disk.img and the VM's file byte for byte, counts both, leaves nothing behind", async () => {
      await chmod(claimImage(), 0o600);
      const result: RestoreResult = await restoreWorkload(request());
      assert.deepEqual(result, { files: 2, bytes: 2 * MiB + 3 + 3 * MiB + 5, verified: true });
      await assertSameBytes(pristineOf(claimImage()), claimImage());
      await assertSameBytes(pristineOf(join(shared, disk)), join(shared, disk));
      // The mode of the disk.img it replaces.
      assert.equal((await stat(claimImage())).mode & 0o777, 0o600);
      assert.deepEqual(Object.keys(await describeTree(claims)), ["pvc-a", "pvc-a/disk.img"]);
    });

    it("creates a disk.img missing from the claim, with the mode recorded at backup time", async () => {
      await rm(claimImage());
      await restoreWorkload(request());
      await assertSameBytes(pristineOf(claimImage()), claimImage());
      assert.equal((await stat(claimImage())).mode & 0o777, 0o640);
    });

    it("a corrupt disk.img at the location: ChecksumMismatch, the claim and the file untouched", async () => {
      // Flipped, not overwritten with a constant: the random byte there is that constant once in 256 runs.
      await flipByte(join(location, "prod/a/claims/root/disk.img"), 2 * MiB);
      await assertRefusedUntouched(
        "ChecksumMismatch",
        /backup file for the disk\.img of claim pvc-a \(volume root\) is corrupt/,
      );
    });

    it("a backup naming a claim that is not allowed: ForeignFile, nothing written", async () => {
      await assertRefusedUntouched(
        "ForeignFile",
        /holds claim pvc-a \(volume root\), which is not a claim prod\/a may be restored to/,
        {
          allowedClaims: [],
        },
      );
      // The same claim under another volume, or another claim under the same volume, is not it either.
      for (const other of [
        { ...fsClaim, volume: "data" },
        { ...fsClaim, claimName: "pvc-b" },
      ]) {
        await assertRefusedUntouched("ForeignFile", /pvc-a/, { allowedClaims: [other] });
      }
      // A manifest edited to restore A's disk onto B's claim, which A is not allowed.
      await editManifest((m) => (m.filesystemDisks![0]!.source.claimName = "pvc-b"));
      await mkdir(join(claims, "pvc-b"));
      await assertRefusedUntouched("ForeignFile", /holds claim pvc-b \(volume root\)/);
    });

    it("a claim in Block mode now, its backup in Filesystem mode: VolumeModeMismatch, nothing written", async () => {
      await assertRefusedUntouched(
        "VolumeModeMismatch",
        /claim pvc-a \(volume root\) in Filesystem mode, but the claim is in Block mode now/,
        { allowedClaims: [{ ...fsClaim, volumeMode: "Block" }] },
      );
    });

    it("a disk.img in the claim replaced by a symlink (to a host file): UnsafeFile, nothing written through it", async () => {
      await rm(claimImage());
      await symlink(secret, claimImage());
      await assertRefusedUntouched("UnsafeFile", /pvc-a\/disk\.img is a symbolic link/);
    });

    it("a disk.img in the claim that is a hard link (to a host file) or a FIFO: UnsafeFile, nothing written", async () => {
      await rm(claimImage());
      await link(secret, claimImage());
      await assertRefusedUntouched("UnsafeFile", /pvc-a\/disk\.img has 2 hard links/);
      await rm(claimImage());
      execFileSync("mkfifo", [claimImage()]);
      try {
        await assertRefusedUntouched("UnsafeFile", /pvc-a\/disk\.img is a FIFO/);
      } finally {
        await releaseFifo(claimImage());
      }
    });

    it("a .fedbackup-prev planted as a symlink in the claim: UnsafeFile, nothing written", async () => {
      await rm(claimImage());
      await symlink(secret, `${claimImage()}.fedbackup-prev`);
      await assertRefusedUntouched("UnsafeFile", /pvc-a\/disk\.img\.fedbackup-prev is a symbolic link/);
    });

    it("a claim mount that is a symlink (to another claim) is refused: UnsafeFile", async () => {
      await rename(join(claims, "pvc-a"), join(claims, "pvc-other"));
      await symlink("pvc-other", join(claims, "pvc-a"));
      await assertRefusedUntouched("UnsafeFile", /pvc-a is a symbolic link/);
    });

    it("a claim that is not mounted fails the VM, naming it, before anything is written", async () => {
      await rm(join(claims, "pvc-a"), { recursive: true });
      const before = await snapshot();
      await assert.rejects(
        restoreWorkload(request()),
        /claim pvc-a \(volume root\) is not mounted at .*\/claims\/pvc-a/,
      );
      assert.deepEqual(await snapshot(), before);
    });

    it("recovers leftovers of an interrupted restore in the claim: the disk moved aside is put back, the temp removed", async () => {
      await rename(claimImage(), `${claimImage()}.fedbackup-prev`);
      await writeFile(join(claims, "pvc-a/.disk.img.tmp-0123456789ab"), "partial copy");
      const log = memoryLog();
      await restoreWorkload(request({ log }));
      await assertSameBytes(pristineOf(claimImage()), claimImage());
      assert.deepEqual(Object.keys(await describeTree(claims)), ["pvc-a", "pvc-a/disk.img"]);
      assert.ok(log.lines.some((l) => l.includes("putting back a disk file an interrupted restore had moved aside")));
    });

    it("a VM on claims only is restored without a shared volume", async () => {
      await rm(join(location, "prod"), { recursive: true });
      await backUp([], [fsClaim]);
      await rm(shared, { recursive: true });
      assert.deepEqual(await restoreWorkload(request({ allowedFiles: [] })), {
        files: 1,
        bytes: 3 * MiB + 5,
        verified: true,
      });
      await assertSameBytes(pristineOf(claimImage()), claimImage());
    });

    it("runNodeRestore passes the step's claims and roots, and counts the claim in the VM's result", async () => {
      const result = await restoreStep([fsClaim]);
      assert.deepEqual(result, {
        namespace: "prod",
        name: "a",
        restored: true,
        files: 2,
        bytes: 2 * MiB + 3 + 3 * MiB + 5,
        verified: true,
      });
      await assertSameBytes(pristineOf(claimImage()), claimImage());
    });
  });

  describe("Block-mode claims (loop devices)", function () {
    const loops: LoopDevice[] = [];
    const node = () => join(devices, blockClaim.claimName);
    let backedUp: Buffer;

    before(function () {
      const usable = loopDevicesUsable();
      if (usable !== true) {
        console.log(`      (skipped: ${usable})`);
        this.skip();
      }
    });
    afterEach(() => {
      for (const loop of loops.splice(0)) loop.detach();
    });

    /** A loop device of `bytes` exposed as the claim's device node (replacing the one there). */
    async function attach(bytes: number, content: "mixed" | "random", at = node()): Promise<LoopDevice> {
      const loop = attachLoopDevice(bytes, content);
      loops.push(loop);
      const [major, minor] = execFileSync("stat", ["-c", "%t %T", loop.device], { encoding: "utf8" })
        .trim()
        .split(" ")
        .map((hex) => String(parseInt(hex, 16)));
      await rm(at, { force: true });
      execFileSync("mknod", [at, "b", major!, minor!]);
      return loop;
    }

    /**
     * The restore's error when the data file of volume `volume` changes while the files are copied, between
     * its device's check and its write: what an edit at the location by someone else would do. Only the
     * read-back can catch it.
     */
    async function refusedWithDataChanged(volume: string, overrides: Partial<RestoreRequest> = {}) {
      const dataFile = join(location, `prod/a/devices/${volume}.data`);
      const realOpen = fsp.open;
      let changed = false;
      fsp.open = async (path, ...rest) => {
        if (!changed && /\.tmp-[0-9a-f]{12}$/.test(String(path))) {
          changed = true;
          await flipByte(dataFile, 17);
        }
        return realOpen(path, ...rest);
      };
      syncBuiltinESMExports();
      try {
        return await refused(overrides);
      } finally {
        fsp.open = realOpen;
        syncBuiltinESMExports();
        assert.ok(changed, "the data file was not changed");
      }
    }

    // VM prod/a: a file, a Filesystem-mode claim and a Block-mode claim of 1 MiB runs of data and zeros
    // (holes), backed up, then every disk changed: the device filled with other data throughout.
    beforeEach(async () => {
      await writeRandomFile(join(shared, disk), 2 * MiB + 3);
      await writeRandomFile(claimImage(), MiB);
      await attach(8 * MiB, "mixed");
      await backUp([disk], [fsClaim, blockClaim]);
      backedUp = await readFile(node());
      fill(node(), 8 * MiB, "random");
      assert.ok(!(await readFile(node())).equals(backedUp));
    });

    it("restores the device byte for byte, holes as zeros, with the file and the claim's disk.img", async () => {
      const manifest = JSON.parse(await readFile(join(location, "prod/a/manifest.json"), "utf8")) as WorkloadManifest;
      assert.equal(manifest.blockDisks?.[0]?.holes.length, 4, "the backup has holes");
      const result = await restoreWorkload(request());
      assert.deepEqual(result, { files: 3, bytes: 2 * MiB + 3 + MiB + 8 * MiB, verified: true });
      assert.ok((await readFile(node())).equals(backedUp), "the device is not its backup");
      await assertSameBytes(pristineOf(claimImage()), claimImage());
      await assertSameBytes(pristineOf(join(shared, disk)), join(shared, disk));
    });

    it("a corrupt data file: ChecksumMismatch, the device and every file untouched", async () => {
      await flipByte(join(location, "prod/a/devices/data.data"), 3 * MiB + 17);
      await assertRefusedUntouched("ChecksumMismatch", /claim pvc-blk \(volume data\).* is corrupt/, {}, [node()]);
    });

    it("a truncated or missing data file: SizeMismatch or MissingFile, nothing written", async () => {
      const dataFile = join(location, "prod/a/devices/data.data");
      await truncate(dataFile, MiB);
      await assertRefusedUntouched(
        "SizeMismatch",
        /backup file for the device of claim pvc-blk \(volume data\) has 1048576 bytes, the manifest lists 4194304/,
        {},
        [node()],
      );
      await rm(dataFile);
      await assertRefusedUntouched("MissingFile", /the device of claim pvc-blk \(volume data\) is missing/, {}, [
        node(),
      ]);
    });

    it("a device smaller than the backup's: ClaimTooSmall naming the claim and sizes, nothing written", async () => {
      await attach(4 * MiB, "random");
      await assertRefusedUntouched(
        "ClaimTooSmall",
        /claim pvc-blk \(volume data\): .* has 4194304 bytes, the backup has 8388608: the device is too small; nothing was written/,
        {},
        [node()],
      );
    });

    it("a claim in Filesystem mode now, its backup a device: VolumeModeMismatch, nothing written", async () => {
      await assertRefusedUntouched(
        "VolumeModeMismatch",
        /claim pvc-blk \(volume data\) in Block mode, but the claim is in Filesystem mode now/,
        { allowedClaims: [fsClaim, { ...blockClaim, volumeMode: "Filesystem" }] },
        [node()],
      );
    });

    it("a regular file or a symlink in place of the device: UnsafeFile, nothing written through it", async () => {
      await rm(node());
      await symlink(secret, node());
      await assertRefusedUntouched("UnsafeFile", /is a symbolic link, not a block device/);
      await rm(node());
      await writeFile(node(), "not a device");
      await assertRefusedUntouched("UnsafeFile", /is a regular file, not a block device/, {}, [node()]);
    });

    it("a claim too full for the copy of its disk.img: RestoreFailed (ENOSPC), the device and every file untouched", async () => {
      // The claim becomes a 1.5 MiB filesystem holding its current 1 MiB disk.img: no room for the copy.
      const current = await readFile(claimImage());
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1536k", "tmpfs", join(claims, "pvc-a")]);
      try {
        await writeFile(claimImage(), current);
        const before = await snapshot([node()]);
        const result = await restoreStep([fsClaim, blockClaim]);
        assert.equal(result?.restored, false);
        assert.equal(result?.reason, "RestoreFailed", result?.message);
        assert.match(result?.message ?? "", /ENOSPC/);
        assert.deepEqual(await snapshot([node()]), before, "something was written");
      } finally {
        execFileSync("umount", [join(claims, "pvc-a")]);
      }
    });

    it("a data file changed after its verification: ClaimPartlyWritten, files not swapped, temporaries removed", async () => {
      const before = await snapshot();
      const error = await refusedWithDataChanged("data");
      assert.equal(error.reason, "ClaimPartlyWritten", error.message);
      assert.match(
        error.message,
        /the device of claim pvc-blk \(volume data\) is partly written: .* reads back with sha256/,
      );
      assert.match(
        error.message,
        /cannot be put back as it was: do not start prod\/a on it.*the VM's files were not replaced/,
      );
      // The files are as they were (no temporaries left); the device is not its backup any more.
      assert.deepEqual(await snapshot(), before);
      assert.ok(!(await readFile(node())).equals(backedUp));
    });

    it("a second device that fails after the first was written: ClaimPartlyWritten naming the one written", async () => {
      const second: AllowedClaim = { volume: "data2", claimName: "pvc-blk2", volumeMode: "Block" };
      const secondNode = join(devices, second.claimName);
      await attach(4 * MiB, "mixed", secondNode);
      await rm(join(location, "prod"), { recursive: true });
      await backUp([disk], [fsClaim, blockClaim, second]);
      const first = await readFile(node());
      fill(node(), 8 * MiB, "random");
      const before = await snapshot();
      const error = await refusedWithDataChanged("data2", { allowedClaims: [fsClaim, blockClaim, second] });
      assert.equal(error.reason, "ClaimPartlyWritten", error.message);
      assert.match(
        error.message,
        /the device of claim pvc-blk2 \(volume data2\) is partly written: .*\(written in full before: claim pvc-blk \(volume data\)\)/,
      );
      assert.ok((await readFile(node())).equals(first), "the first device is not its backup");
      assert.deepEqual(await snapshot(), before);
    });
  });
});
