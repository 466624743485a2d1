// A copy of a VM restored beside it (NodeRestore spec.workloads[].source, renamedFiles and
// claims[].capturedClaimName), from a real backup of prod/a (runNodeBackup, Copy): its file written at the
// copy's path, its claim disks to the copy's claims, which are blank (an empty directory, a device of zeros),
// and the original's disks never touched. Every refusal is checked against the whole content of every disk.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, copyFile, mkdir, open, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { PlannedClaim } from "../../../src/agent/backup.js";
import { runNodeBackup } from "../../../src/agent/backup.js";
import type { WorkloadManifest } from "../../../src/agent/manifest.js";
import type { NodeRestoreResult, NodeRestoreWorkload } from "../../../src/agent/node-restore.js";
import { runNodeRestore } from "../../../src/agent/node-restore.js";
import type { AllowedClaim, RestoreErrorReason, RestoreRequest } from "../../../src/agent/restore.js";
import { RestoreError, restoreWorkload } from "../../../src/agent/restore.js";
import type { LoopDevice } from "../../harness/block-volumes.js";
import { attachLoopDevice, loopDevicesUsable } from "../../harness/block-volumes.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  describeTree,
  makeTempDir,
  memoryLog,
  nodeBackupPlan,
  realClock,
  writeRandomFile,
} from "./helpers.js";

const disk = "vms/a/disk.img";
const copyDisk = "vms/a-copy/disk.img";
const fsClaim: AllowedClaim = { volume: "root", claimName: "pvc-a", volumeMode: "Filesystem" };
const blockClaim: AllowedClaim = { volume: "data", claimName: "pvc-blk", volumeMode: "Block" };
// The copy's claims, made again blank for it, and named after the claims its disks were captured from.
const fsCopy: AllowedClaim = { ...fsClaim, claimName: "pvc-a-copy", capturedClaimName: "pvc-a" };
const blockCopy: AllowedClaim = { ...blockClaim, claimName: "pvc-blk-copy", capturedClaimName: "pvc-blk" };

describe("agent/restore a copy of a VM (source, renamedFiles, capturedClaimName)", function () {
  this.timeout(60_000);
  let root: string;
  let cleanup: () => Promise<void>;
  let shared: string;
  let location: string;
  let claims: string;
  let devices: string;
  let pristine: string;
  let secret: string;
  const copyImage = () => join(claims, "pvc-a-copy/disk.img");

  beforeEach(async () => {
    ({ dir: root, cleanup } = makeTempDir("restore-copy"));
    shared = join(root, "shared");
    location = join(root, "location/backups/nightly");
    claims = join(root, "claims");
    devices = join(root, "devices");
    pristine = join(root, "pristine");
    secret = join(root, "secret.txt");
    await writeFile(secret, "host secret\n");
    await mkdir(devices, { recursive: true });
    await mkdir(pristine, { recursive: true });
  });
  afterEach(() => cleanup());

  /** Backs up prod/a, keeps a copy of its file and disk.img, then changes them (the original runs on). */
  async function backUp(planned: PlannedClaim[]): Promise<void> {
    const result = await runNodeBackup(
      nodeBackupPlan(shared, location, {
        method: "Copy",
        claimsRoot: claims,
        devicesRoot: devices,
        workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files: [disk], claims: planned }],
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
    for (const image of [join(shared, disk), join(claims, "pvc-a/disk.img")]) {
      await copyFile(image, pristineOf(image));
      const handle = await open(image, "r+");
      await handle.write(Buffer.from("written after the backup"), 0, 24, 1000);
      await handle.close();
    }
  }
  const pristineOf = (image: string) => join(pristine, image.slice(root.length).replaceAll("/", "_"));

  /** prod/a-copy of prod/a: the copy's file and claims, its claims' mount empty. */
  const copyRequest = (overrides: Partial<RestoreRequest> = {}): RestoreRequest => ({
    locationRoot: dirname(location),
    backupPath: basename(location),
    namespace: "prod",
    name: "a-copy",
    source: { namespace: "prod", name: "a" },
    renamedFiles: [{ from: disk, to: copyDisk }],
    sharedRoot: shared,
    allowedFiles: [copyDisk],
    allowedClaims: [fsCopy],
    claimsRoot: claims,
    devicesRoot: devices,
    ...overrides,
  });

  async function refused(overrides: Partial<RestoreRequest> = {}): Promise<RestoreError> {
    const error = await restoreWorkload(copyRequest(overrides)).then(
      () => assert.fail("the restore should have failed"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof RestoreError, `not a RestoreError: ${String(error)}`);
    return error;
  }

  /** Everything a restore could write (all below root: the shared volume, the claims, host files), and devices. */
  async function snapshot(extra: string[] = []): Promise<unknown> {
    return [await describeTree(root), ...(await Promise.all(extra.map((p) => readFile(p))))];
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

  describe("a file and a Filesystem-mode claim", () => {
    let originals: unknown;

    beforeEach(async () => {
      await writeRandomFile(join(shared, disk), 2 * MiB + 3);
      await chmod(join(shared, disk), 0o640);
      await writeRandomFile(join(claims, "pvc-a/disk.img"), 3 * MiB + 5);
      await chmod(join(claims, "pvc-a/disk.img"), 0o660);
      await backUp([fsClaim]);
      // The original's directory has a mode no default gives: the copy's directory must get it.
      await chmod(join(shared, "vms/a"), 0o751);
      // The copy's claim, made again for it: an empty directory.
      await mkdir(join(claims, "pvc-a-copy"));
      originals = await Promise.all([readFile(join(shared, disk)), readFile(join(claims, "pvc-a/disk.img"))]);
    });

    const assertOriginalsUntouched = async () =>
      assert.deepEqual(
        await Promise.all([readFile(join(shared, disk)), readFile(join(claims, "pvc-a/disk.img"))]),
        originals,
        "the original VM's disks were written",
      );

    it("writes the file at its new path, in a directory made like the original's, and the disk.img to the blank claim", async () => {
      const result = await restoreWorkload(copyRequest());
      assert.deepEqual(result, { files: 2, bytes: 2 * MiB + 3 + 3 * MiB + 5, verified: true });
      await assertSameBytes(pristineOf(join(shared, disk)), join(shared, copyDisk));
      await assertSameBytes(pristineOf(join(claims, "pvc-a/disk.img")), copyImage());
      await assertOriginalsUntouched();
      assert.equal((await stat(join(shared, "vms/a-copy"))).mode & 0o7777, 0o751);
      // A new file gets the mode recorded at backup time.
      assert.equal((await stat(join(shared, copyDisk))).mode & 0o777, 0o640);
      assert.equal((await stat(copyImage())).mode & 0o777, 0o660);
      assert.deepEqual(Object.keys(await describeTree(join(claims, "pvc-a-copy"))), ["disk.img"]);
      assert.deepEqual(Object.keys(await describeTree(join(shared, "vms/a-copy"))), ["disk.img"]);
    });

    it("creates every missing directory on the way to a renamed file", async () => {
      const deep = "copies/team-1/a-copy/disk.img";
      await restoreWorkload(copyRequest({ renamedFiles: [{ from: disk, to: deep }], allowedFiles: [deep] }));
      await assertSameBytes(pristineOf(join(shared, disk)), join(shared, deep));
      for (const dir of ["copies", "copies/team-1", "copies/team-1/a-copy"])
        assert.equal((await stat(join(shared, dir))).mode & 0o7777, 0o751, dir);
      await assertOriginalsUntouched();
    });

    it("runNodeRestore passes the source, renamed files and captured claims through to the VM's result", async () => {
      const workload: NodeRestoreWorkload = {
        namespace: "prod",
        name: "a-copy",
        backupPath: basename(location),
        source: { namespace: "prod", name: "a" },
        renamedFiles: [{ from: disk, to: copyDisk }],
        files: [copyDisk],
        claims: [fsCopy],
      };
      const [result] = await runNodeRestore(
        {
          node: "node-1",
          sharedRoot: shared,
          locationRoot: dirname(location),
          claimsRoot: claims,
          devicesRoot: devices,
          workloads: [workload],
        },
        { runningOn: () => Promise.resolve(undefined), report: () => Promise.resolve(), log: memoryLog() },
      );
      assert.deepEqual(result, {
        namespace: "prod",
        name: "a-copy",
        restored: true,
        files: 2,
        bytes: 2 * MiB + 3 + 3 * MiB + 5,
        verified: true,
      } satisfies NodeRestoreResult);
      await assertSameBytes(pristineOf(join(shared, disk)), join(shared, copyDisk));
      await assertOriginalsUntouched();
    });

    it("without its source the copy has no backup of its own: MissingBackup naming it", async () => {
      const [result] = await runNodeRestore(
        {
          node: "node-1",
          sharedRoot: shared,
          locationRoot: dirname(location),
          claimsRoot: claims,
          workloads: [{ namespace: "prod", name: "a-copy", backupPath: basename(location), files: [copyDisk] }],
        },
        { runningOn: () => Promise.resolve(undefined), report: () => Promise.resolve(), log: memoryLog() },
      );
      assert.equal(result?.reason, "MissingBackup");
      assert.match(result?.message ?? "", /prod\/a-copy\/manifest\.json does not exist/);
    });

    it("a file not renamed is written at its captured path, which must then be allowed: ForeignFile otherwise", async () => {
      await assertRefusedUntouched("ForeignFile", /lists vms\/a\/disk\.img, which is not a file prod\/a-copy may be/, {
        renamedFiles: [],
      });
      // Renamed to a path the copy may not write (the original's other file, say): ForeignFile too.
      await assertRefusedUntouched(
        "ForeignFile",
        /lists vms\/a\/disk\.img \(written as vms\/b\/disk\.img\), which is not a file prod\/a-copy may be/,
        { renamedFiles: [{ from: disk, to: "vms/b/disk.img" }] },
      );
    });

    it("a claim disk is matched by the claim it was captured from: another one, or none, is ForeignFile", async () => {
      // Without capturedClaimName the copy's claim is taken for the claim captured: the backup's is pvc-a.
      await assertRefusedUntouched(
        "ForeignFile",
        /holds claim pvc-a \(volume root\), which is not a claim prod\/a-copy/,
        {
          allowedClaims: [{ ...fsCopy, capturedClaimName: undefined }],
        },
      );
      await assertRefusedUntouched("ForeignFile", /holds claim pvc-a \(volume root\)/, {
        allowedClaims: [{ ...fsCopy, capturedClaimName: "pvc-other" }],
      });
      // The right captured claim under another volume is not it either.
      await assertRefusedUntouched("ForeignFile", /holds claim pvc-a \(volume root\)/, {
        allowedClaims: [{ ...fsCopy, volume: "data" }],
      });
    });

    it("the copy's claim not mounted: RestoreFailed naming the claim written to, nothing written", async () => {
      await rm(join(claims, "pvc-a-copy"), { recursive: true });
      const before = await snapshot();
      const error = await restoreWorkload(copyRequest()).then(
        () => assert.fail("the restore should have failed"),
        (err: unknown) => err as Error,
      );
      assert.match(error.message, /claim pvc-a-copy \(volume root, captured from pvc-a\) is not mounted/);
      assert.deepEqual(await snapshot(), before);
    });

    it("a symlink at the renamed target (to a host file): UnsafeFile, nothing written through it", async () => {
      await mkdir(join(shared, "vms/a-copy"));
      await symlink(secret, join(shared, copyDisk));
      await assertRefusedUntouched("UnsafeFile", /vms\/a-copy\/disk\.img is a symbolic link/);
    });

    it("a symlink in place of the renamed target's directory (to a host directory): UnsafeFile, nothing written", async () => {
      const outside = join(root, "outside");
      await mkdir(outside);
      await symlink(outside, join(shared, "vms/a-copy"));
      await assertRefusedUntouched("UnsafeFile", /vms\/a-copy.* symbolic link/);
      assert.deepEqual(await describeTree(outside), {});
      // Deeper: a directory on the way of a path still to be created.
      await rm(join(shared, "vms/a-copy"));
      await symlink(outside, join(shared, "copies"));
      await assertRefusedUntouched("UnsafeFile", /copies.* symbolic link/, {
        renamedFiles: [{ from: disk, to: "copies/a-copy/disk.img" }],
        allowedFiles: ["copies/a-copy/disk.img"],
      });
      assert.deepEqual(await describeTree(outside), {});
    });

    it("two files of the backup on one target, or a file renamed twice: refused, nothing written", async () => {
      // A manifest edited to list the copy's target too: it and the renamed file would both land there.
      const path = join(location, "prod/a/manifest.json");
      const manifest = JSON.parse(await readFile(path, "utf8")) as WorkloadManifest;
      manifest.files.push({ ...manifest.files[0]!, path: copyDisk });
      manifest.totalBytes += manifest.files[0]!.bytes;
      await writeFile(path, JSON.stringify(manifest));
      await assertRefusedUntouched(
        "ForeignFile",
        /lists both vms\/a\/disk\.img and vms\/a-copy\/disk\.img, which would both be written to vms\/a-copy\/disk\.img/,
      );
      const before = await snapshot();
      await assert.rejects(
        restoreWorkload(
          copyRequest({
            renamedFiles: [
              { from: disk, to: copyDisk },
              { from: disk, to: "vms/a-copy/other.img" },
            ],
          }),
        ),
        /vms\/a\/disk\.img is renamed twice/,
      );
      await assert.rejects(
        restoreWorkload(copyRequest({ renamedFiles: [{ from: disk, to: "../escape/disk.img" }] })),
        /invalid renamed file "\.\.\/escape\/disk\.img"/,
      );
      assert.deepEqual(await snapshot(), before);
    });
  });

  describe("a blank Block-mode claim (loop devices)", function () {
    const loops: LoopDevice[] = [];

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

    /** A loop device of `bytes` exposed as `claim`'s device node. */
    function attach(claim: string, bytes: number, content: "mixed" | "zeros"): LoopDevice {
      const loop = attachLoopDevice(bytes, content);
      loops.push(loop);
      const [major, minor] = execFileSync("stat", ["-c", "%t %T", loop.device], { encoding: "utf8" })
        .trim()
        .split(" ")
        .map((hex) => String(parseInt(hex, 16)));
      execFileSync("mknod", [join(devices, claim), "b", major!, minor!]);
      return loop;
    }

    it("writes the captured device to a zeroed device at least as large, the original device untouched", async () => {
      await writeRandomFile(join(shared, disk), MiB);
      await writeRandomFile(join(claims, "pvc-a/disk.img"), MiB);
      attach(blockClaim.claimName, 8 * MiB, "mixed");
      await backUp([fsClaim, blockClaim]);
      const original = await readFile(join(devices, blockClaim.claimName));
      attach(blockCopy.claimName, 12 * MiB, "zeros");
      await mkdir(join(claims, "pvc-a-copy"));
      const result = await restoreWorkload(copyRequest({ allowedClaims: [fsCopy, blockCopy] }));
      assert.equal(result.files, 3);
      const copied = await readFile(join(devices, blockCopy.claimName));
      assert.ok(copied.subarray(0, 8 * MiB).equals(original), "the copy's device is not the backup");
      assert.ok(copied.subarray(8 * MiB).equals(Buffer.alloc(4 * MiB)), "the rest of the device is not zeros");
      assert.ok((await readFile(join(devices, blockClaim.claimName))).equals(original), "the original changed");
    });

    it("a blank device smaller than the captured one: ClaimTooSmall naming the copy's claim, nothing written", async () => {
      await writeRandomFile(join(shared, disk), MiB);
      await writeRandomFile(join(claims, "pvc-a/disk.img"), MiB);
      attach(blockClaim.claimName, 8 * MiB, "mixed");
      await backUp([fsClaim, blockClaim]);
      attach(blockCopy.claimName, 4 * MiB, "zeros");
      await mkdir(join(claims, "pvc-a-copy"));
      await assertRefusedUntouched(
        "ClaimTooSmall",
        /claim pvc-blk-copy \(volume data, captured from pvc-blk\): .* the device is too small/,
        { allowedClaims: [fsCopy, blockCopy] },
        [join(devices, blockCopy.claimName), join(devices, blockClaim.claimName)],
      );
    });
  });
});
