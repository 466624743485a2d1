import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { open, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isTempName } from "../../../src/agent/atomic-files.js";
import type { NodeBackupPlan } from "../../../src/agent/backup.js";
import { runNodeBackup } from "../../../src/agent/backup.js";
import type { NodeManifest, WorkloadManifest } from "../../../src/agent/manifest.js";
import { checkManifestComplete, readNodeManifest, readWorkloadManifest } from "../../../src/agent/manifest.js";
import type { IsActiveOnNode } from "../../../src/agent/quiesce.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  realClock,
  referenceHash,
  runFixture,
  waitFor,
  writeRandomFile,
  writeSparseFile,
  nodeBackupPlan,
} from "./helpers.js";

interface Env {
  root: string;
  shared: string;
  location: string;
  cleanup: () => Promise<void>;
}

function makeEnv(): Env {
  const { dir, cleanup } = makeTempDir("backup");
  return { root: dir, shared: join(dir, "shared"), location: join(dir, "location", "backups", "nightly"), cleanup };
}

function makePlan(env: Env, overrides: Partial<NodeBackupPlan> = {}): NodeBackupPlan {
  return nodeBackupPlan(env.shared, env.location, overrides);
}

function deps(freezer: RecordingFreezer, isActiveOnNode: IsActiveOnNode = alwaysActive) {
  return { freezer, isActiveOnNode, clock: realClock, log: memoryLog(), signals: [] };
}

/** Every file below `dir`, relative, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe("agent/backup runNodeBackup", function () {
  this.timeout(30_000);
  let env: Env;
  beforeEach(() => (env = makeEnv()));
  afterEach(() => env.cleanup());

  it("captures every VM (Auto picks Copy on ext4): files with checksums, manifests last, snapshots removed", async () => {
    await writeRandomFile(join(env.shared, "vms/a/disk.img"), 3 * MiB + 5);
    await writeFile(join(env.shared, "vms/a/cloud-init.iso"), "#cloud-config\n");
    await writeSparseFile(join(env.shared, "vms/b/disk.img"), 64 * MiB);
    const handle = await open(join(env.shared, "vms/b/disk.img"), "r+");
    await handle.write(Buffer.from("boot sector"), 0, 11, 32 * MiB);
    await handle.close();
    const freezer = new RecordingFreezer();
    const plan = makePlan(env, {
      workloads: [
        { namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img", "vms/a/cloud-init.iso"] },
        { namespace: "prod", name: "b", uid: "uid-b", files: ["vms/b/disk.img"] },
      ],
    });
    const result = await runNodeBackup(plan, deps(freezer));

    assert.equal(result.method, "Copy");
    assert.deepEqual(result.failed, []);
    assert.deepEqual(
      result.captured.map((c) => [c.name, c.files, c.indication, c.consistency, c.reused, c.manifestPath]),
      [
        ["a", 2, "GuestAgent", "ApplicationConsistent", false, "prod/a/manifest.json"],
        ["b", 1, "GuestAgent", "ApplicationConsistent", false, "prod/b/manifest.json"],
      ],
    );
    // Copy freezes one VM at a time, so a long copy of one VM does not keep the others frozen.
    assert.deepEqual(freezer.log, ["freeze prod/a", "unfreeze prod/a", "freeze prod/b", "unfreeze prod/b"]);

    for (const workload of plan.workloads) {
      const manifest = await readWorkloadManifest(env.location, workload.namespace, workload.name);
      assert.equal(manifest.backup.uid, "uid-nightly");
      assert.equal(manifest.workload.uid, workload.uid);
      assert.equal(manifest.node, "node-1");
      assert.equal(manifest.round, 1);
      assert.equal(manifest.method, "Copy");
      assert.equal(manifest.extractAt, "Backup");
      assert.ok(manifest.freeze.startedAt && manifest.freeze.endedAt);
      assert.deepEqual(
        manifest.files.map((f) => f.path),
        workload.files,
      );
      for (const file of manifest.files) {
        const source = join(env.shared, file.path);
        const extracted = join(env.location, workload.namespace, workload.name, "files", file.path);
        assert.deepEqual({ bytes: file.bytes, sha256: file.sha256 }, await referenceHash(source));
        await assertSameBytes(source, extracted);
      }
      const captured = result.captured.find((c) => c.name === workload.name);
      assert.equal(captured?.bytes, manifest.totalBytes);
      assert.equal(captured?.sha256, manifest.files[0]?.sha256);
    }
    const node: NodeManifest = await readNodeManifest(env.location, "node-1", 1);
    assert.deepEqual(
      node.captured.map((c) => c.name),
      ["a", "b"],
    );
    assert.equal(result.nodeManifestPath, "nodes/node-1-r1.json");
    // Nothing but files, manifests and the node manifest at the location; no snapshot left on the volume.
    assert.deepEqual(await listFiles(env.location), [
      "nodes/node-1-r1.json",
      "prod/a/files/vms/a/cloud-init.iso",
      "prod/a/files/vms/a/disk.img",
      "prod/a/manifest.json",
      "prod/b/files/vms/b/disk.img",
      "prod/b/manifest.json",
    ]);
    assert.deepEqual(await listFiles(join(env.shared, ".fedbackup")), []);
    assert.deepEqual(await readdir(join(env.shared, ".fedbackup/snapshots")), []);
  });

  it("fails only the VM whose disk file is missing, without freezing it", async () => {
    await writeRandomFile(join(env.shared, "vms/a/disk.img"), MiB);
    await writeRandomFile(join(env.shared, "vms/c/disk.img"), MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, {
        workloads: [
          { namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img"] },
          { namespace: "prod", name: "c", uid: "uid-c", files: ["vms/c/disk.img", "vms/c/data.img"] },
        ],
      }),
      deps(freezer),
    );
    assert.deepEqual(
      result.captured.map((c) => c.name),
      ["a"],
    );
    assert.deepEqual(result.failed, [
      {
        namespace: "prod",
        name: "c",
        reason: "CaptureFailed",
        message: "disk file vms/c/data.img does not exist on the shared volume",
      },
    ]);
    assert.ok(!freezer.log.includes("freeze prod/c"));
    assert.equal(existsSync(join(env.location, "prod/c/manifest.json")), false);
    const node = await readNodeManifest(env.location, "node-1", 1);
    assert.deepEqual(
      node.failed.map((f) => f.name),
      ["c"],
    );
  });

  it("reports VMs that are not active here, have no shared disk, or list unsafe paths, and captures the rest", async () => {
    await writeRandomFile(join(env.shared, "vms/a/disk.img"), MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, {
        workloads: [
          { namespace: "prod", name: "a", uid: "1", files: ["vms/a/disk.img"] },
          { namespace: "prod", name: "gone", uid: "2", files: ["vms/a/disk.img"] },
          { namespace: "prod", name: "stopped", uid: "3", files: ["vms/a/disk.img"] },
          { namespace: "prod", name: "diskless", uid: "4", files: [] },
          { namespace: "prod", name: "escape", uid: "5", files: ["../etc/passwd"] },
          { namespace: "prod", name: "ours", uid: "6", files: [".fedbackup/snapshots/x"] },
        ],
      }),
      deps(freezer, (vm) =>
        Promise.resolve(
          vm.name === "gone"
            ? { active: false, reason: "Migrated", message: "now on node-2" }
            : vm.name === "stopped"
              ? { active: false, reason: "NotRunning" }
              : { active: true },
        ),
      ),
    );
    assert.deepEqual(
      result.captured.map((c) => c.name),
      ["a"],
    );
    assert.deepEqual(
      result.failed.map((f) => [f.name, f.reason]),
      [
        ["diskless", "NoSharedDisk"],
        ["escape", "CaptureFailed"],
        ["ours", "CaptureFailed"],
        ["gone", "Migrated"],
        ["stopped", "NotRunning"],
      ],
    );
    assert.match(result.failed[1]?.message ?? "", /'\.\.' segment/);
    assert.deepEqual(freezer.log, ["freeze prod/a", "unfreeze prod/a"]);
  });

  it("does not redo a VM whose manifest is complete for this round, but redoes it in a new round", async () => {
    await writeRandomFile(join(env.shared, "vms/a/disk.img"), 2 * MiB);
    const plan = makePlan(env, {
      workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img"] }],
    });
    const first = await runNodeBackup(plan, deps(new RecordingFreezer()));
    const extracted = join(env.location, "prod/a/files/vms/a/disk.img");
    const before = await stat(extracted);

    const freezer = new RecordingFreezer();
    const again = await runNodeBackup(plan, deps(freezer));
    assert.deepEqual(freezer.log, []);
    assert.equal(again.captured[0]?.reused, true);
    // Auto probed for reflink on the volume: nothing of it is left behind.
    assert.deepEqual(await readdir(join(env.shared, ".fedbackup/snapshots")), []);
    assert.deepEqual({ ...again.captured[0], reused: false }, first.captured[0]);
    assert.equal((await stat(extracted)).mtimeMs, before.mtimeMs);

    const round2 = await runNodeBackup({ ...plan, round: 2 }, deps(freezer));
    assert.equal(round2.captured[0]?.reused, false);
    assert.deepEqual(freezer.log, ["freeze prod/a", "unfreeze prod/a"]);
    assert.equal((await readWorkloadManifest(env.location, "prod", "a")).round, 2);

    // In round 3 the VM is no longer here: its round-2 capture stays intact.
    const round3 = await runNodeBackup(
      { ...plan, round: 3 },
      deps(freezer, () => Promise.resolve({ active: false, reason: "Migrated" })),
    );
    assert.deepEqual(
      round3.failed.map((f) => f.reason),
      ["Migrated"],
    );
    assert.ok(
      (await checkManifestComplete(env.location, "prod", "a", { backupUid: "uid-nightly", round: 2 })).complete,
    );
    assert.ok(
      existsSync(join(env.location, "nodes/node-1-r1.json")) && existsSync(join(env.location, "nodes/node-1-r2.json")),
    );
  });

  it("with Copy, a capture that outlasts maxFreeze is thawed at the budget and flagged as not point-in-time", async () => {
    await writeRandomFile(join(env.shared, "vms/a/disk.img"), 48 * MiB);
    const freezer = new RecordingFreezer();
    // The freeze call itself takes 20 ms of a 25 ms budget: the 48 MiB copy cannot fit in the rest.
    freezer.onFreeze = () => new Promise((resolve) => setTimeout(resolve, 20));
    const result = await runNodeBackup(
      makePlan(env, {
        method: "Copy",
        freezeTimeoutMs: 1000,
        maxFreezeMs: 25,
        workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img"] }],
      }),
      deps(freezer),
    );
    const captured = result.captured[0];
    assert.equal(captured?.indication, "FreezeBudgetExceeded");
    assert.equal(captured?.consistency, "Inconsistent");
    assert.match(captured?.message ?? "", /maxFreeze \(25 ms\)/);
    assert.match(captured?.message ?? "", /not a point-in-time image/);
    assert.deepEqual(freezer.log, ["freeze prod/a", "unfreeze prod/a"]);
    const manifest = await readWorkloadManifest(env.location, "prod", "a");
    assert.equal(manifest.indication, "FreezeBudgetExceeded");
    assert.equal(
      manifest.files[0]?.sha256,
      (await referenceHash(join(env.location, "prod/a/files/vms/a/disk.img"))).sha256,
    );
  });

  it("with quiesce None never freezes, and records NotQuiesced", async () => {
    await writeRandomFile(join(env.shared, "vms/a/disk.img"), MiB);
    const freezer = new RecordingFreezer();
    const result = await runNodeBackup(
      makePlan(env, {
        quiesce: "None",
        extractAt: "Restore", // impossible with Copy: extracted at backup time anyway
        workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img"] }],
      }),
      deps(freezer),
    );
    assert.deepEqual(freezer.log, []);
    assert.equal(result.captured[0]?.indication, "NotQuiesced");
    const manifest: WorkloadManifest = await readWorkloadManifest(env.location, "prod", "a");
    assert.equal(manifest.extractAt, "Backup");
    assert.equal(manifest.freeze.windowMs, 0);
    assert.equal(manifest.freeze.startedAt, null);
  });

  it("an agent killed mid-copy leaves no manifest claiming completion, and a rerun completes", async function () {
    this.timeout(60_000);
    await writeRandomFile(join(env.shared, "vms/big/disk.img"), MiB);
    await writeRandomFile(join(env.shared, "vms/small/disk.img"), MiB);
    const plan = makePlan(env, {
      method: "Copy",
      workloads: [
        { namespace: "prod", name: "small", uid: "uid-s", files: ["vms/small/disk.img"] },
        { namespace: "prod", name: "big", uid: "uid-b", files: ["vms/big/disk.img"] },
      ],
    });
    // An earlier round captured "big" completely: its old manifest must not survive next to new, partial files.
    await runNodeBackup({ ...plan, round: 0, workloads: plan.workloads.slice(1) }, deps(new RecordingFreezer()));
    assert.ok(
      (await checkManifestComplete(env.location, "prod", "big", { backupUid: "uid-nightly", round: 0 })).complete,
    );
    // Since then the disk has grown: large enough to be caught mid-copy.
    await writeRandomFile(join(env.shared, "vms/big/disk.img"), 768 * MiB);

    const child = runFixture("backup-child.ts", [JSON.stringify(plan)]);
    const filesDir = join(env.location, "prod/big/files/vms/big");
    let partial = "";
    await waitFor(
      async () => {
        const entries = existsSync(filesDir) ? await readdir(filesDir) : [];
        for (const name of entries.filter(isTempName)) {
          const size = await stat(join(filesDir, name)).then(
            (s) => s.size,
            () => 0,
          );
          if (size > 16 * MiB) {
            partial = name;
            return true;
          }
        }
        return false;
      },
      45_000,
      "the child to be copying the big disk into the location",
    );
    child.kill("SIGKILL");
    const exit = await child.exited;
    assert.equal(
      exit.signal,
      "SIGKILL",
      `child ended by itself (code ${exit.code}) before it could be killed: ${exit.stderr}`,
    );

    // The small VM may be complete; the big one must not look complete, neither for this round nor the old one.
    assert.equal(existsSync(join(env.location, "prod/big/manifest.json")), false);
    for (const round of [0, 1]) {
      const check = await checkManifestComplete(env.location, "prod", "big", { backupUid: "uid-nightly", round });
      assert.equal(check.complete, false);
    }
    assert.equal(existsSync(join(env.location, "nodes/node-1-r1.json")), false);
    assert.ok(partial, "a partial temp file was seen");

    const freezer = new RecordingFreezer();
    const rerun = await runNodeBackup(plan, deps(freezer));
    assert.deepEqual(rerun.failed, []);
    assert.deepEqual(
      rerun.captured.map((c) => [c.name, c.reused]),
      [
        ["small", true],
        ["big", false],
      ],
    );
    const manifest = await readWorkloadManifest(env.location, "prod", "big");
    assert.equal(manifest.round, 1);
    assert.deepEqual(
      { bytes: manifest.files[0]?.bytes, sha256: manifest.files[0]?.sha256 },
      await referenceHash(join(env.shared, "vms/big/disk.img")),
    );
    // No leftovers: the killed run's temp file and snapshot copy are gone.
    assert.deepEqual(await readdir(filesDir), ["disk.img"]);
    assert.deepEqual(await listFiles(join(env.shared, ".fedbackup")), []);
    assert.ok(JSON.parse(await readFile(join(env.location, "nodes/node-1-r1.json"), "utf8")));
  });
});
