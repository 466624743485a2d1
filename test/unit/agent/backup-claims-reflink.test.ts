// runNodeBackup with Filesystem-mode claims cut with Reflink: the clone of disk.img made in the claim's
// root under the freeze, extracted after the thaw and removed. The clones need a filesystem that clones
// (a loop-mounted XFS image, as root; those tests skip otherwise); the failure on one that does not uses the
// ordinary temporary directory (skipped if that one clones).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NodeBackupPlan, PlannedWorkload } from "../../../src/agent/backup.js";
import { runNodeBackup } from "../../../src/agent/backup.js";
import { claimCloneName } from "../../../src/agent/claim-reflink.js";
import { inBackupDir, readWorkloadManifest } from "../../../src/agent/manifest.js";
import { probeReflink } from "../../../src/agent/snapshot.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  mountReflinkVolume,
  nodeBackupPlan,
  realClock,
  writeRandomFile,
  type ReflinkVolume,
} from "./helpers.js";

const CLONE = claimCloneName("uid-nightly");
const reflinkClaim = (volume: string, claimName: string) => ({
  volume,
  claimName,
  volumeMode: "Filesystem" as const,
  snapshotMethod: "Reflink" as const,
  why: "Reflink, as spec.snapshot.method asks",
});

function makePlan(root: string, workloads: PlannedWorkload[], overrides: Partial<NodeBackupPlan> = {}) {
  return nodeBackupPlan(join(root, "shared"), join(root, "location", "backups", "nightly"), {
    claimsRoot: join(root, "claims"),
    devicesRoot: join(root, "devices"),
    workloads,
    ...overrides,
  });
}

const deps = (freezer: RecordingFreezer) => ({
  freezer,
  isActiveOnNode: alwaysActive,
  clock: realClock,
  log: memoryLog(),
  signals: [],
});

describe("claimCloneName", () => {
  it("is one hidden file named after the backup's uid, and refuses a uid that could be a path", () => {
    assert.equal(claimCloneName("0b5c-11"), ".fedbackup-snapshot-0b5c-11.img");
    for (const bad of ["", "../x", "a/b", "a b"]) assert.throws(() => claimCloneName(bad), /invalid backup uid/);
  });
});

describe("agent/backup runNodeBackup with claims cut with Reflink (XFS)", function () {
  this.timeout(60_000);
  let volume: ReflinkVolume | undefined;
  let root: string;

  before(async function () {
    const mounted = await mountReflinkVolume();
    if (typeof mounted === "string") {
      console.log(`      (skipped: ${mounted})`);
      this.skip();
    }
    volume = mounted;
  });
  after(async function () {
    this.timeout(30_000);
    await volume?.unmount();
  });
  let n = 0;
  beforeEach(async () => {
    root = join(volume!.mnt, `t${n++}`);
    await mkdir(join(root, "claims"), { recursive: true });
  });

  for (const method of ["Auto", "Reflink"] as const) {
    it(`clones disk.img in the window, extracts the clone after the thaw byte for byte, then removes it (step method ${method})`, async () => {
      const image = join(root, "claims", "pvc-a", "disk.img");
      await writeRandomFile(image, 5 * MiB + 3);
      const original = await readFile(image);
      // A clone left by an interrupted attempt: removed before the freeze, never extracted.
      await writeFile(join(root, "claims", "pvc-a", CLONE), "stale");
      const clone = join(root, "claims", "pvc-a", CLONE);
      const stored = join(root, "location", "backups", "nightly", "prod/a/claims/rootdisk/disk.img");
      const freezer = new RecordingFreezer();
      const seen: string[] = [];
      freezer.onFreeze = () => Promise.resolve(void seen.push(`freeze: clone ${existsSync(clone)}`));
      freezer.onUnfreeze = async () => {
        seen.push(`unfreeze: clone ${existsSync(clone)}, stored ${existsSync(stored)}`);
        // The guest writes again once thawed: the clone keeps the frozen bytes.
        await writeFile(image, "written after the thaw", { flag: "r+" });
      };
      const result = await runNodeBackup(
        makePlan(
          root,
          [{ namespace: "prod", name: "a", uid: "uid-a", files: [], claims: [reflinkClaim("rootdisk", "pvc-a")] }],
          {
            method,
          },
        ),
        deps(freezer),
      );
      assert.deepEqual(result.failed, []);
      assert.deepEqual(seen, ["freeze: clone false", "unfreeze: clone true, stored false"]);
      freezer.assertAllThawed();
      assert.deepEqual(await readFile(stored), original);
      assert.equal(existsSync(clone), false);
      assert.deepEqual(await readdir(join(root, "claims", "pvc-a")), ["disk.img"]);
      const manifest = await inBackupDir(join(root, "location", "backups", "nightly"), (b) =>
        readWorkloadManifest(b, "prod", "a"),
      );
      assert.equal(manifest.filesystemDisks?.length, 1);
      const disk = manifest.filesystemDisks[0]!;
      assert.equal(disk.method, "Reflink");
      assert.equal(disk.why, "Reflink, as spec.snapshot.method asks");
      assert.equal(disk.bytes, original.length);
      assert.equal(disk.source.claimName, "pvc-a");
    });
  }

  it("keeps the manifest's claims in the VM's order when Reflink and Copy claims mix", async () => {
    await writeRandomFile(join(root, "claims", "pvc-b", "disk.img"), 1 * MiB);
    await writeRandomFile(join(root, "claims", "pvc-c", "disk.img"), 2 * MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(root, [
        {
          namespace: "prod",
          name: "b",
          uid: "uid-b",
          files: [],
          claims: [
            { volume: "data", claimName: "pvc-c", volumeMode: "Filesystem", snapshotMethod: "Copy" },
            reflinkClaim("rootdisk", "pvc-b"),
          ],
        },
      ]),
      deps(freezer),
    );
    assert.deepEqual(result.failed, []);
    const backup = join(root, "location", "backups", "nightly");
    const manifest = await inBackupDir(backup, (b) => readWorkloadManifest(b, "prod", "b"));
    assert.deepEqual(
      manifest.filesystemDisks?.map((d) => [d.name, d.method]),
      [
        ["data", "Copy"],
        ["rootdisk", "Reflink"],
      ],
    );
    await assertSameBytes(join(root, "claims", "pvc-b", "disk.img"), join(backup, "prod/b/claims/rootdisk/disk.img"));
    await assertSameBytes(join(root, "claims", "pvc-c", "disk.img"), join(backup, "prod/b/claims/data/disk.img"));
    assert.equal(existsSync(join(root, "claims", "pvc-b", CLONE)), false);
  });
});

describe("agent/backup runNodeBackup with a Reflink claim on a filesystem that does not clone", function () {
  this.timeout(60_000);
  let root: string;
  let cleanup: () => Promise<void>;
  beforeEach(async function () {
    ({ dir: root, cleanup } = makeTempDir("claims-reflink"));
    await mkdir(join(root, "claims"), { recursive: true });
    const probe = await probeReflink(root, "claims");
    if (probe.supported) {
      await cleanup();
      console.log("      (skipped: the temporary directory's filesystem clones files)");
      this.skip();
    }
  });
  afterEach(() => cleanup?.());

  it("fails the VM with ReflinkNotSupported naming the claim and the reason, thawed, nothing left behind", async () => {
    await writeRandomFile(join(root, "claims", "pvc-a", "disk.img"), 1 * MiB);
    // A symlink planted under the clone's name: removed as a name, what it points to untouched.
    await writeFile(join(root, "outside"), "keep me");
    await symlink(join(root, "outside"), join(root, "claims", "pvc-a", CLONE));
    await writeRandomFile(join(root, "claims", "pvc-b", "disk.img"), 1 * MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(root, [
        { namespace: "prod", name: "a", uid: "uid-a", files: [], claims: [reflinkClaim("rootdisk", "pvc-a")] },
        {
          namespace: "prod",
          name: "b",
          uid: "uid-b",
          files: [],
          claims: [{ volume: "rootdisk", claimName: "pvc-b", volumeMode: "Filesystem", snapshotMethod: "Copy" }],
        },
      ]),
      deps(freezer),
    );
    assert.equal(result.failed.length, 1);
    const failed = result.failed[0]!;
    assert.equal(failed.name, "a");
    assert.equal(failed.reason, "ReflinkNotSupported");
    assert.match(failed.message, /claim pvc-a .*does not support reflink clones|claim pvc-a .*another filesystem/);
    assert.deepEqual(
      result.captured.map((c) => c.name),
      ["b"],
    );
    freezer.assertAllThawed();
    assert.ok(freezer.log.includes("freeze prod/a"));
    assert.deepEqual(await readdir(join(root, "claims", "pvc-a")), ["disk.img"]);
    assert.equal(await readFile(join(root, "outside"), "utf8"), "keep me");
    assert.equal(existsSync(join(root, "location", "backups", "nightly", "prod/a/claims")), false);
  });

  it("with the step's method Reflink, a VM with a claim to be copied fails before any freeze", async () => {
    await writeRandomFile(join(root, "claims", "pvc-b", "disk.img"), 1 * MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(
        root,
        [
          {
            namespace: "prod",
            name: "b",
            uid: "uid-b",
            files: [],
            claims: [{ volume: "rootdisk", claimName: "pvc-b", volumeMode: "Filesystem", snapshotMethod: "Copy" }],
          },
        ],
        { method: "Reflink" },
      ),
      deps(freezer),
    );
    assert.deepEqual(
      result.failed.map((f) => [f.name, f.reason]),
      [["b", "CaptureFailed"]],
    );
    assert.match(result.failed[0]!.message, /each is cut with Reflink/);
    assert.deepEqual(freezer.log, []);
  });
});
