// runNodeBackup with VM disks on claims (Copy method): Filesystem-mode claims as real directories with a
// disk.img, Block-mode claims as real loop devices (as root; those tests skip otherwise), exposed under the
// devices directory with mknod as a container runtime exposes volumeDevices.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, open, readFile, readdir, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { isTempName } from "../../../src/agent/atomic-files.js";
import type { NodeBackupPlan, PlannedWorkload } from "../../../src/agent/backup.js";
import { runNodeBackup } from "../../../src/agent/backup.js";
import { RestoreError, restoreWorkload } from "../../../src/agent/restore.js";
import type { BlockLayout, WorkloadManifest } from "../../../src/agent/manifest.js";
import {
  checkManifestComplete,
  parseWorkloadManifest,
  readNodeManifest,
  readWorkloadManifest,
} from "../../../src/agent/manifest.js";
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
  referenceHash,
  runFixture,
  waitFor,
  writeRandomFile,
} from "./helpers.js";

interface Env {
  shared: string;
  location: string;
  claims: string;
  devices: string;
  root: string;
  cleanup: () => Promise<void>;
}

function makeEnv(): Env {
  const { dir, cleanup } = makeTempDir("backup-claims");
  return {
    root: dir,
    shared: join(dir, "shared"),
    location: join(dir, "location", "backups", "nightly"),
    claims: join(dir, "claims"),
    devices: join(dir, "devices"),
    cleanup,
  };
}

function makePlan(env: Env, workloads: PlannedWorkload[], overrides: Partial<NodeBackupPlan> = {}): NodeBackupPlan {
  return nodeBackupPlan(env.shared, env.location, {
    method: "Copy",
    claimsRoot: env.claims,
    devicesRoot: env.devices,
    workloads,
    ...overrides,
  });
}

function deps(freezer: RecordingFreezer) {
  return { freezer, isActiveOnNode: alwaysActive, clock: realClock, log: memoryLog(), signals: [] };
}

const fsClaim = (volume: string, claimName: string) => ({ volume, claimName, volumeMode: "Filesystem" as const });
const blockClaim = (volume: string, claimName: string) => ({
  volume,
  claimName,
  sourceKind: "DataVolume" as const,
  volumeMode: "Block" as const,
});

/** The device a Block-mode disk's data file and holes stand for. */
async function reconstruct(dataFile: string, layout: BlockLayout): Promise<Buffer> {
  const data = await readFile(dataFile);
  assert.equal(data.length, layout.storedBytes);
  const device = Buffer.alloc(layout.bytes);
  let stored = 0;
  let at = 0;
  for (const hole of [...layout.holes, { offset: layout.bytes, length: 0 }]) {
    data.copy(device, at, stored, stored + (hole.offset - at));
    stored += hole.offset - at;
    at = hole.offset + hole.length;
  }
  assert.equal(stored, layout.storedBytes);
  return device;
}

describe("agent/backup runNodeBackup with disks on claims (Copy)", function () {
  this.timeout(60_000);
  let env: Env;
  beforeEach(async () => {
    env = makeEnv();
    await mkdir(env.claims, { recursive: true });
    await mkdir(env.devices, { recursive: true });
  });
  afterEach(() => env.cleanup());

  it("copies a Filesystem-mode claim's disk.img in the freeze window, with its sha256, in a version 2 manifest", async () => {
    const image = join(env.claims, "pvc-a", "disk.img");
    await writeRandomFile(image, 3 * MiB + 5);
    const freezer = new RecordingFreezer();
    const stored = join(env.location, "prod/a/claims/rootdisk/disk.img");
    const seen: string[] = [];
    freezer.onFreeze = () => Promise.resolve(void seen.push(`freeze: stored ${existsSync(stored)}`));
    freezer.onUnfreeze = () => Promise.resolve(void seen.push(`unfreeze: stored ${existsSync(stored)}`));
    const result = await runNodeBackup(
      makePlan(env, [
        { namespace: "prod", name: "a", uid: "uid-a", files: [], claims: [fsClaim("rootdisk", "pvc-a")] },
      ]),
      deps(freezer),
    );
    assert.deepEqual(result.failed, []);
    // The copy is complete before the thaw, and was not there at the freeze.
    assert.deepEqual(seen, ["freeze: stored false", "unfreeze: stored true"]);
    const manifest = await readWorkloadManifest(env.location, "prod", "a");
    const reference = await referenceHash(image);
    assert.equal(manifest.schemaVersion, 2);
    assert.deepEqual(manifest.files, []);
    assert.deepEqual(manifest.blockDisks, []);
    const info = await stat(image);
    assert.deepEqual(manifest.filesystemDisks, [
      {
        name: "rootdisk",
        source: { kind: "PersistentVolumeClaim", claimName: "pvc-a" },
        volumeMode: "Filesystem",
        method: "Copy",
        bytes: reference.bytes,
        sha256: reference.sha256,
        mode: info.mode & 0o7777,
        uid: info.uid,
        gid: info.gid,
      },
    ]);
    assert.equal(manifest.totalBytes, reference.bytes);
    assert.equal(manifest.indication, "GuestAgent");
    await assertSameBytes(image, stored);
    assert.deepEqual(
      result.captured.map((c) => [c.name, c.files, c.bytes, c.sha256]),
      [["a", 1, reference.bytes, reference.sha256]],
    );
    // The manifest's own window covers the copy: the freeze before, the thaw after.
    const [freeze, unfreeze] = freezer.events;
    assert.ok(freeze && unfreeze && freeze.op === "freeze" && unfreeze.op === "unfreeze");
    assert.ok(manifest.freeze.startedAt && manifest.freeze.endedAt);
    assert.ok(Date.parse(manifest.freeze.endedAt) >= Date.parse(manifest.freeze.startedAt));
    assert.ok(
      (await checkManifestComplete(env.location, "prod", "a", { backupUid: "uid-nightly", round: 1 })).complete,
    );
    assert.deepEqual(
      (await readNodeManifest(env.location, "node-1", 1)).captured.map((c) => [c.name, c.files]),
      [["a", 1]],
    );
    parseWorkloadManifest(JSON.parse(await readFile(join(env.location, "prod/a/manifest.json"), "utf8")));

    // A restore that is not allowed the claim writes nothing (restore-claims.test.ts restores it).
    await assert.rejects(
      restoreWorkload({
        locationRoot: dirname(env.location),
        backupPath: basename(env.location),
        namespace: "prod",
        name: "a",
        sharedRoot: env.shared,
        allowedFiles: [],
      }),
      (err: unknown) => err instanceof RestoreError && err.reason === "ForeignFile" && /pvc-a/.test(err.message),
    );
  });

  it("records each claim's shape in its disk's source, and names the VM's non-data volumes as skipped", async () => {
    await writeRandomFile(join(env.claims, "pvc-a", "disk.img"), 64 * 1024);
    const claim = {
      ...fsClaim("rootdisk", "pvc-a"),
      accessModes: ["ReadWriteMany"],
      storageClassName: "cephfs",
      sizeBytes: 10 * 1024 ** 3,
    };
    const skippedVolumes = [
      { volume: "cloudinit", type: "cloudInitNoCloud" },
      { volume: "boot", type: "containerDisk" },
    ];
    const result = await runNodeBackup(
      makePlan(env, [{ namespace: "prod", name: "a", uid: "uid-a", files: [], claims: [claim], skippedVolumes }]),
      deps(new RecordingFreezer()),
    );
    assert.deepEqual(result.failed, []);
    const raw: unknown = JSON.parse(await readFile(join(env.location, "prod/a/manifest.json"), "utf8"));
    const manifest = parseWorkloadManifest(raw);
    assert.deepEqual(manifest.filesystemDisks?.[0]?.source, {
      kind: "PersistentVolumeClaim",
      claimName: "pvc-a",
      accessModes: ["ReadWriteMany"],
      storageClassName: "cephfs",
      sizeBytes: 10 * 1024 ** 3,
    });
    assert.deepEqual(manifest.skippedVolumes, skippedVolumes);
  });

  it("captures a hostDisk file and a claim of one VM in one window; totals and counts include both", async () => {
    await writeRandomFile(join(env.shared, "vms/m/disk.img"), 2 * MiB);
    await writeRandomFile(join(env.claims, "dv-data", "disk.img"), MiB + 512);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, [
        {
          namespace: "prod",
          name: "m",
          uid: "uid-m",
          files: ["vms/m/disk.img"],
          claims: [{ ...fsClaim("data", "dv-data"), sourceKind: "DataVolume" }],
        },
      ]),
      deps(freezer),
    );
    assert.deepEqual(result.failed, []);
    assert.deepEqual(freezer.log, ["freeze prod/m", "unfreeze prod/m"]);
    const manifest = await readWorkloadManifest(env.location, "prod", "m");
    await assertSameBytes(join(env.shared, "vms/m/disk.img"), join(env.location, "prod/m/files/vms/m/disk.img"));
    await assertSameBytes(join(env.claims, "dv-data/disk.img"), join(env.location, "prod/m/claims/data/disk.img"));
    assert.deepEqual(manifest.filesystemDisks?.[0]?.source, { kind: "DataVolume", claimName: "dv-data" });
    assert.equal(manifest.totalBytes, 2 * MiB + MiB + 512);
    assert.deepEqual(
      result.captured.map((c) => [c.files, c.bytes]),
      [[2, 3 * MiB + 512]],
    );
  });

  it("fails only the VM whose disk.img or claim directory is a symlink (UnsafeFile), without freezing or reading it", async () => {
    const secret = join(env.root, "secret.img");
    await writeFile(secret, "host secret");
    await mkdir(join(env.claims, "pvc-link"));
    await symlink(secret, join(env.claims, "pvc-link", "disk.img"));
    await mkdir(join(env.root, "elsewhere"));
    await writeFile(join(env.root, "elsewhere", "disk.img"), "another tenant's disk");
    await symlink(join(env.root, "elsewhere"), join(env.claims, "pvc-dirlink"));
    await writeRandomFile(join(env.claims, "pvc-ok", "disk.img"), MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, [
        { namespace: "prod", name: "file-link", uid: "u1", files: [], claims: [fsClaim("root", "pvc-link")] },
        { namespace: "prod", name: "dir-link", uid: "u2", files: [], claims: [fsClaim("root", "pvc-dirlink")] },
        { namespace: "prod", name: "ok", uid: "u3", files: [], claims: [fsClaim("root", "pvc-ok")] },
      ]),
      deps(freezer),
    );
    assert.deepEqual(
      result.failed.map((f) => [f.name, f.reason]),
      [
        ["file-link", "UnsafeFile"],
        ["dir-link", "UnsafeFile"],
      ],
    );
    for (const f of result.failed) assert.match(f.message, /claim pvc-(dir)?link .*unsafe file on the claim/);
    assert.deepEqual(
      result.captured.map((c) => c.name),
      ["ok"],
    );
    assert.deepEqual(freezer.log, ["freeze prod/ok", "unfreeze prod/ok"]);
    const tree = await describeTree(env.location);
    assert.deepEqual(
      Object.keys(tree).filter((p) => p.includes("link")),
      [],
    );
    assert.equal(JSON.stringify(tree).includes("secret"), false);
  });

  it("a disk.img swapped for a symlink during the window fails that VM alone and leaves nothing of it", async () => {
    await writeRandomFile(join(env.claims, "pvc-a", "disk.img"), MiB);
    await writeRandomFile(join(env.claims, "pvc-b", "disk.img"), MiB);
    await writeFile(join(env.root, "secret.img"), "host secret");
    const freezer = new RecordingFreezer();
    freezer.onFreeze = async (vm) => {
      if (vm.name !== "a") return;
      await rm(join(env.claims, "pvc-a", "disk.img"));
      await symlink(join(env.root, "secret.img"), join(env.claims, "pvc-a", "disk.img"));
    };
    const result = await runNodeBackup(
      makePlan(env, [
        { namespace: "prod", name: "a", uid: "ua", files: [], claims: [fsClaim("root", "pvc-a")] },
        { namespace: "prod", name: "b", uid: "ub", files: [], claims: [fsClaim("root", "pvc-b")] },
      ]),
      deps(freezer),
    );
    assert.deepEqual(
      result.failed.map((f) => [f.name, f.reason]),
      [["a", "UnsafeFile"]],
    );
    assert.deepEqual(
      result.captured.map((c) => c.name),
      ["b"],
    );
    freezer.assertAllThawed();
    // Nothing of it at the location (at most its empty directory).
    const left = existsSync(join(env.location, "prod/a")) ? await describeTree(join(env.location, "prod/a")) : {};
    assert.deepEqual(left, {});
  });

  it("fails a VM whose claim has no disk.img (CaptureFailed, not frozen), and a VM without any disk (NoSharedDisk)", async () => {
    await mkdir(join(env.claims, "pvc-empty"));
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, [
        { namespace: "prod", name: "a", uid: "ua", files: [], claims: [fsClaim("root", "pvc-empty")] },
        { namespace: "prod", name: "b", uid: "ub", files: [], claims: [fsClaim("root", "pvc-unmounted")] },
        { namespace: "prod", name: "c", uid: "uc", files: [] },
        { namespace: "prod", name: "d", uid: "ud", files: [], claims: [blockClaim("root", "not-attached")] },
        {
          namespace: "prod",
          name: "e",
          uid: "ue",
          files: [],
          claims: [fsClaim("root", "x"), fsClaim("root", "y")],
        },
      ]),
      deps(freezer),
    );
    assert.deepEqual(
      result.failed.map((f) => [f.name, f.reason]),
      [
        ["c", "NoSharedDisk"],
        ["e", "CaptureFailed"],
        ["a", "CaptureFailed"],
        ["b", "CaptureFailed"],
        ["d", "CaptureFailed"],
      ],
    );
    const message = (name: string) => result.failed.find((f) => f.name === name)?.message ?? "";
    assert.match(message("a"), /claim pvc-empty .*no disk\.img at the root of the claim/);
    assert.match(message("e"), /volume root is listed twice/);
    assert.match(message("d"), /claim not-attached \(volume root, Block mode\)/);
    assert.deepEqual(freezer.events, []);
  });

  it("fails a VM with claims clearly when the method is not Copy", async () => {
    await writeRandomFile(join(env.claims, "pvc-a", "disk.img"), MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, [{ namespace: "prod", name: "a", uid: "ua", files: [], claims: [fsClaim("root", "pvc-a")] }], {
        method: "Reflink",
      }),
      deps(freezer),
    );
    assert.deepEqual(
      result.failed.map((f) => [f.name, f.reason]),
      [["a", "CaptureFailed"]],
    );
    assert.match(
      result.failed[0]?.message ?? "",
      /^with the Reflink method of this step, claims are captured only when each is cut with Reflink/,
    );
    assert.deepEqual(freezer.events, []);
    assert.equal(existsSync(join(env.location, "prod/a")), false);
  });

  it("with Auto, a step with a VM on claims uses Copy (under which claims are captured), and says why", async () => {
    await writeRandomFile(join(env.shared, "vms/h/disk.img"), MiB);
    await writeRandomFile(join(env.claims, "pvc-c", "disk.img"), MiB);
    const log = memoryLog();
    const result = await runNodeBackup(
      makePlan(
        env,
        [
          { namespace: "prod", name: "h", uid: "uh", files: ["vms/h/disk.img"] },
          { namespace: "prod", name: "c", uid: "uc", files: [], claims: [fsClaim("root", "pvc-c")] },
        ],
        { method: "Auto" },
      ),
      { ...deps(new RecordingFreezer()), log },
    );
    assert.deepEqual(result.failed, []);
    assert.equal(result.method, "Copy");
    assert.ok(
      log.lines.some((l) => /snapshot method chosen .*"detail":"VMs of this step have disks on claims"/.test(l)),
    );
  });

  it("with the freeze budget exceeded during the claim copy, thaws at maxFreeze and says so", async () => {
    await writeRandomFile(join(env.claims, "pvc-a", "disk.img"), 64 * MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, [{ namespace: "prod", name: "a", uid: "ua", files: [], claims: [fsClaim("root", "pvc-a")] }], {
        maxFreezeMs: 1,
      }),
      deps(freezer),
    );
    assert.deepEqual(result.failed, []);
    const manifest = await readWorkloadManifest(env.location, "prod", "a");
    assert.equal(manifest.indication, "FreezeBudgetExceeded");
    assert.equal(manifest.consistency, "Inconsistent");
    await assertSameBytes(join(env.claims, "pvc-a/disk.img"), join(env.location, "prod/a/claims/root/disk.img"));
  });

  it("an agent killed mid-claim leaves no complete-looking VM, and a rerun redoes it from scratch", async function () {
    this.timeout(90_000);
    await writeRandomFile(join(env.claims, "pvc-big", "disk.img"), MiB);
    const plan = makePlan(env, [
      { namespace: "prod", name: "big", uid: "ub", files: [], claims: [fsClaim("root", "pvc-big")] },
    ]);
    // An earlier round captured it completely.
    await runNodeBackup({ ...plan, round: 0 }, deps(new RecordingFreezer()));
    assert.ok(
      (await checkManifestComplete(env.location, "prod", "big", { backupUid: "uid-nightly", round: 0 })).complete,
    );
    await writeRandomFile(join(env.claims, "pvc-big", "disk.img"), 768 * MiB);

    const child = runFixture("backup-child.ts", [JSON.stringify(plan)]);
    const claimDir = join(env.location, "prod/big/claims/root");
    await waitFor(
      async () => {
        // The child removes the earlier round's directory and makes it again: it may vanish between calls.
        const entries = await readdir(claimDir).catch(() => [] as string[]);
        for (const name of entries.filter(isTempName)) {
          if (
            (await stat(join(claimDir, name)).then(
              (s) => s.size,
              () => 0,
            )) >
            16 * MiB
          )
            return true;
        }
        return false;
      },
      60_000,
      "the child to be copying the claim into the location",
    );
    child.kill("SIGKILL");
    const exit = await child.exited;
    assert.equal(exit.signal, "SIGKILL", `child ended by itself (code ${exit.code}): ${exit.stderr}`);
    assert.equal(existsSync(join(env.location, "prod/big/manifest.json")), false);
    assert.equal(existsSync(join(claimDir, "disk.img")), false, "the earlier round's copy went with its manifest");

    const result = await runNodeBackup(plan, deps(new RecordingFreezer()));
    assert.deepEqual(result.failed, []);
    assert.deepEqual(
      result.captured.map((c) => [c.name, c.reused]),
      [["big", false]],
    );
    const manifest = await readWorkloadManifest(env.location, "prod", "big");
    assert.equal(manifest.round, 1);
    assert.deepEqual(
      { bytes: manifest.filesystemDisks?.[0]?.bytes, sha256: manifest.filesystemDisks?.[0]?.sha256 },
      await referenceHash(join(env.claims, "pvc-big/disk.img")),
    );
    assert.deepEqual(await readdir(claimDir), ["disk.img"]);
  });

  it("validates filesystem disks in manifests read back: mode, duplicates, version, completeness", async () => {
    await writeRandomFile(join(env.claims, "pvc-a", "disk.img"), MiB);
    await runNodeBackup(
      makePlan(env, [{ namespace: "prod", name: "a", uid: "ua", files: [], claims: [fsClaim("root", "pvc-a")] }]),
      deps(new RecordingFreezer()),
    );
    const good = JSON.parse(await readFile(join(env.location, "prod/a/manifest.json"), "utf8")) as WorkloadManifest;
    const disk = good.filesystemDisks![0]!;
    const bad: [string, unknown, RegExp][] = [
      ["v1", { ...good, schemaVersion: 1, blockDisks: undefined }, /filesystemDisks but has schemaVersion 1/],
      [
        "mode",
        { ...good, filesystemDisks: [{ ...disk, volumeMode: "Block" }] },
        /volumeMode must be one of Filesystem/,
      ],
      ["sha", { ...good, filesystemDisks: [{ ...disk, sha256: "ABC" }] }, /sha256 is not a lowercase hex sha256/],
      [
        "twice",
        { ...good, filesystemDisks: [disk, { ...disk, source: { ...disk.source, claimName: "other" } }] },
        /filesystem disk root twice/,
      ],
      [
        "claim",
        { ...good, filesystemDisks: [disk, { ...disk, name: "other" }] },
        /claim pvc-a for two filesystem disks/,
      ],
      [
        "claim name",
        { ...good, filesystemDisks: [{ ...disk, source: { ...disk.source, claimName: "../x" } }] },
        /claim name/,
      ],
      ["total", { ...good, totalBytes: 1 }, /totalBytes is not the sum/],
    ];
    for (const [what, value, message] of bad) {
      assert.throws(() => parseWorkloadManifest(JSON.parse(JSON.stringify(value))), message, what);
    }
    // A stored disk.img of another size makes the VM incomplete.
    await truncate(join(env.location, "prod/a/claims/root/disk.img"), 5);
    const check = await checkManifestComplete(env.location, "prod", "a", { backupUid: "uid-nightly", round: 1 });
    assert.equal(check.complete, false);
    assert.match(check.complete ? "" : check.reason, /filesystem disk root has 5 bytes/);
  });

  describe("Block-mode claims (loop devices)", function () {
    let attached: string[] = [];
    let files = 0;

    before(function () {
      const why =
        process.getuid?.() !== 0
          ? "not running as root, cannot attach loop devices"
          : (() => {
              try {
                execFileSync("losetup", ["--version"], { stdio: "pipe" });
                return undefined;
              } catch {
                return "losetup is missing (util-linux)";
              }
            })();
      if (why) {
        console.log(`      (skipped: ${why})`);
        this.skip();
      }
    });
    afterEach(() => {
      const failures: string[] = [];
      for (const device of attached) {
        try {
          execFileSync("losetup", ["-d", device], { stdio: "pipe" });
        } catch (err) {
          failures.push(`${device}: ${String(err)}`);
        }
      }
      attached = [];
      assert.deepEqual(failures, [], "every loop device is detached");
    });

    /**
     * A loop device of `bytes` over a sparse file with random data at `islands` (offset, length), exposed as
     * the device node <devices>/<claimName>; returns the loop device's path.
     */
    async function claimDevice(claimName: string, bytes: number, islands: [number, number][]): Promise<string> {
      const backing = join(env.root, `backing-${++files}.img`);
      await writeFile(backing, "");
      await truncate(backing, bytes);
      const handle = await open(backing, "r+");
      try {
        for (const [at, length] of islands) {
          const data = Buffer.alloc(length);
          for (let i = 0; i < length; i += 4096) data.write(`${claimName}@${at + i}`, i);
          data[length - 1] = 0xff;
          await handle.write(data, 0, length, at);
        }
      } finally {
        await handle.close();
      }
      const device = execFileSync("losetup", ["--find", "--show", backing], { stdio: "pipe" }).toString().trim();
      attached.push(device);
      const [major, minor] = execFileSync("stat", ["-c", "%t %T", device])
        .toString()
        .trim()
        .split(" ")
        .map((h) => String(parseInt(h, 16)));
      execFileSync("mknod", [join(env.devices, claimName), "b", major!, minor!]);
      return device;
    }

    it("captures a VM with two block disks and a file: every byte from data file and holes equals its device", async () => {
      const root = await claimDevice("dv-root", 16 * MiB, [
        [0, MiB],
        [5 * MiB, 3 * MiB + 4096],
      ]);
      const data = await claimDevice("pvc-data", 8 * MiB, [[7 * MiB, MiB]]);
      await writeRandomFile(join(env.shared, "vms/v/seed.iso"), 4096);
      const freezer = new RecordingFreezer();
      const stored = join(env.location, "prod/v/devices/data.data");
      const seen: string[] = [];
      freezer.onUnfreeze = () => Promise.resolve(void seen.push(`unfreeze: stored ${existsSync(stored)}`));
      const result = await runNodeBackup(
        makePlan(env, [
          {
            namespace: "prod",
            name: "v",
            uid: "uv",
            files: ["vms/v/seed.iso"],
            claims: [blockClaim("root", "dv-root"), { volume: "data", claimName: "pvc-data", volumeMode: "Block" }],
          },
        ]),
        deps(freezer),
      );
      assert.deepEqual(result.failed, []);
      assert.deepEqual(seen, ["unfreeze: stored true"]);
      const manifest = await readWorkloadManifest(env.location, "prod", "v");
      assert.equal(manifest.schemaVersion, 2);
      assert.equal(manifest.filesystemDisks, undefined);
      assert.deepEqual(
        manifest.blockDisks?.map((d) => [d.name, d.source, d.volumeMode, d.bytes, d.holes, d.storedBytes]),
        [
          [
            "root",
            { kind: "DataVolume", claimName: "dv-root" },
            "Block",
            16 * MiB,
            [
              { offset: MiB, length: 4 * MiB },
              { offset: 9 * MiB, length: 7 * MiB },
            ],
            5 * MiB,
          ],
          [
            "data",
            { kind: "PersistentVolumeClaim", claimName: "pvc-data" },
            "Block",
            8 * MiB,
            [{ offset: 0, length: 7 * MiB }],
            MiB,
          ],
        ],
      );
      for (const [disk, device] of [
        [manifest.blockDisks[0]!, root],
        [manifest.blockDisks[1]!, data],
      ] as const) {
        const content = await reconstruct(join(env.location, "prod/v/devices", `${disk.name}.data`), disk);
        const reference = await referenceHash(device);
        assert.equal(disk.sha256, reference.sha256);
        assert.ok(content.equals(await readFile(device)), `${disk.name} reconstructs to its device's bytes`);
      }
      assert.equal(manifest.totalBytes, 4096 + 24 * MiB);
      assert.deepEqual(
        result.captured.map((c) => [c.files, c.bytes, c.sha256]),
        [[3, 4096 + 24 * MiB, manifest.files[0]?.sha256]],
      );
      assert.ok(
        (await checkManifestComplete(env.location, "prod", "v", { backupUid: "uid-nightly", round: 1 })).complete,
      );
    });

    it("a symlink or a regular file in place of the device fails that VM before any freeze", async () => {
      await claimDevice("pvc-real", MiB, [[0, 4096]]);
      await symlink(join(env.devices, "pvc-real"), join(env.devices, "pvc-link"));
      await writeFile(join(env.devices, "pvc-file"), "not a device");
      const freezer = new RecordingFreezer();
      const result = await runNodeBackup(
        makePlan(env, [
          { namespace: "prod", name: "a", uid: "ua", files: [], claims: [blockClaim("root", "pvc-link")] },
          { namespace: "prod", name: "b", uid: "ub", files: [], claims: [blockClaim("root", "pvc-file")] },
        ]),
        deps(freezer),
      );
      assert.deepEqual(
        result.failed.map((f) => [f.name, f.reason]),
        [
          ["a", "CaptureFailed"],
          ["b", "CaptureFailed"],
        ],
      );
      assert.match(result.failed[0]?.message ?? "", /is a symbolic link, not a block device/);
      assert.match(result.failed[1]?.message ?? "", /is a regular file, not a block device/);
      assert.deepEqual(freezer.events, []);
    });
  });
});
