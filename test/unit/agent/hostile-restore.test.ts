// A restore against a tenant who prepared its disk on the shared volume, or its backup at the location, to
// make the agent (root) write another tenant's disk, a host file, or read another tenant's data into its own.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, open, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import type { WorkloadManifest } from "../../../src/agent/manifest.js";
import type { NodeRestoreResult, NodeRestoreWorkload } from "../../../src/agent/node-restore.js";
import { runNodeRestore } from "../../../src/agent/node-restore.js";
import { DISK_ATTACKS, type World } from "./attacks.js";
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
  releaseFifo,
  writeRandomFile,
} from "./helpers.js";

const SECRET = `host secret ${randomBytes(8).toString("hex")}\n`;
const backupPath = "backups/nightly";
const diskOf = (vm: string) => `vms/${vm}/disk.img`;

describe("agent/restore with hostile tenants", function () {
  this.timeout(30_000);
  let root: string;
  let cleanup: () => Promise<void>;
  let world: World;
  let location: string;
  let pristine: string;
  const fifos: string[] = [];

  // Each test starts from a real backup of prod/a (the attacker) and prod/b (the victim), whose disks
  // changed afterwards: a restore that went ahead would change them.
  beforeEach(async () => {
    ({ dir: root, cleanup } = makeTempDir("hostile-restore"));
    world = { shared: join(root, "shared"), secret: join(root, "secret.txt") };
    location = join(root, "location");
    pristine = join(root, "pristine");
    await writeFile(world.secret, SECRET);
    for (const vm of ["a", "b"]) {
      await writeRandomFile(join(world.shared, diskOf(vm)), MiB + (vm === "a" ? 3 : 11));
      await mkdir(join(pristine, "vms", vm), { recursive: true });
      await copyFile(join(world.shared, diskOf(vm)), join(pristine, diskOf(vm)));
    }
    const backup = await runNodeBackup(
      nodeBackupPlan(world.shared, join(location, backupPath), {
        method: "Copy",
        workloads: ["a", "b"].map((vm) => ({ namespace: "prod", name: vm, uid: `uid-${vm}`, files: [diskOf(vm)] })),
      }),
      {
        freezer: new RecordingFreezer(),
        isActiveOnNode: alwaysActive,
        clock: realClock,
        log: memoryLog(),
        signals: [],
      },
    );
    assert.equal(backup.captured.length, 2);
    for (const vm of ["a", "b"]) {
      const handle = await open(join(world.shared, diskOf(vm)), "r+");
      await handle.write(Buffer.from("written after the backup"), 0, 24, 100);
      await handle.close();
    }
  });
  afterEach(async () => {
    for (const fifo of fifos.splice(0)) await releaseFifo(fifo);
    await cleanup();
  });

  const workload = (vm: string, files = [diskOf(vm)]): NodeRestoreWorkload => ({
    namespace: "prod",
    name: vm,
    backupPath,
    files,
  });

  function restore(workloads: NodeRestoreWorkload[]): Promise<NodeRestoreResult[]> {
    return runNodeRestore(
      { node: "node-1", sharedRoot: world.shared, locationRoot: location, workloads },
      { runningOn: () => Promise.resolve(undefined), report: () => Promise.resolve(), log: memoryLog() },
    );
  }

  const atLocation = (path: string) => join(location, backupPath, path);

  async function editManifest(edit: (manifest: WorkloadManifest) => void): Promise<void> {
    const manifestPath = atLocation("prod/a/manifest.json");
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as WorkloadManifest;
    edit(manifest);
    manifest.totalBytes = manifest.files.reduce((sum, f) => sum + f.bytes, 0);
    await writeFile(manifestPath, JSON.stringify(manifest));
  }

  // A's restore is refused with `reason`, naming the path, and writes nothing: the whole shared volume and
  // the host file are byte for byte as they were.
  async function assertRefusedUntouched(reason: string, message: RegExp, files?: string[]) {
    const before = await describeTree(world.shared);
    const [a] = await restore([workload("a", files)]);
    assert.equal(a?.restored, false);
    assert.equal(a?.reason, reason, a?.message);
    assert.match(a?.message ?? "", message);
    assert.deepEqual(await describeTree(world.shared), before, "the shared volume changed");
    assert.equal(await readFile(world.secret, "utf8"), SECRET);
  }

  for (const attack of DISK_ATTACKS) {
    it(`${attack.name}: A is refused (UnsafeFile, naming the path) and nothing is written through it`, async () => {
      await attack.plant(world);
      if (attack.fifo) fifos.push(attack.fifo(world));
      const before = await describeTree(world.shared);

      const [a, b] = await restore([workload("a"), workload("b")]);

      assert.equal(a?.restored, false);
      assert.equal(a?.reason, "UnsafeFile", a?.message);
      assert.match(a?.message ?? "", attack.refusal);
      const after = await describeTree(world.shared);
      if (attack.victimRefused) {
        assert.equal(b?.reason, "UnsafeFile");
        assert.match(b?.message ?? "", attack.victimRefused);
      } else {
        // B's own restore goes on: its disk is its backup again, and nothing else changed.
        assert.equal(b?.restored, true, b?.message);
        await assertSameBytes(join(pristine, diskOf("b")), join(world.shared, diskOf("b")));
        delete before[diskOf("b")];
        delete after[diskOf("b")];
      }
      assert.deepEqual(after, before, "the shared volume changed");
      assert.equal(await readFile(world.secret, "utf8"), SECRET);
    });
  }

  it("a manifest edited at the location to name B's disk fails A with ForeignFile, every disk untouched", async () => {
    // A consistent forgery: A's data under B's path, with its true size and sha256.
    await mkdir(atLocation("prod/a/files/vms/b"), { recursive: true });
    await rename(atLocation("prod/a/files/vms/a/disk.img"), atLocation("prod/a/files/vms/b/disk.img"));
    await editManifest((m) => (m.files[0]!.path = diskOf("b")));
    await assertRefusedUntouched(
      "ForeignFile",
      /lists vms\/b\/disk\.img, which is not a file prod\/a may be restored to/,
    );
  });

  it("a restore without its files list writes nothing (ForeignFile)", async () => {
    await assertRefusedUntouched("ForeignFile", /lists vms\/a\/disk\.img/, []);
  });

  it("a symlink planted at the location in place of A's backup file (to B's disk) fails A with UnsafeFile", async () => {
    await rm(atLocation("prod/a/files/vms/a/disk.img"));
    await symlink(join(world.shared, diskOf("b")), atLocation("prod/a/files/vms/a/disk.img"));
    const stolen = await referenceHash(join(world.shared, diskOf("b")));
    await editManifest((m) => Object.assign(m.files[0]!, stolen));
    await assertRefusedUntouched(
      "UnsafeFile",
      /backup file for vms\/a\/disk\.img is not safe to read: backups\/nightly\/prod\/a\/files\/vms\/a\/disk\.img is a symbolic link/,
    );
  });

  it("a symlink planted at the location in place of A's files directory fails A with UnsafeFile", async () => {
    const crafted = join(root, "crafted");
    await mkdir(join(crafted, "vms/a"), { recursive: true });
    await copyFile(join(world.shared, diskOf("b")), join(crafted, diskOf("a")));
    await rm(atLocation("prod/a/files"), { recursive: true });
    await symlink(crafted, atLocation("prod/a/files"));
    const stolen = await referenceHash(join(crafted, diskOf("a")));
    await editManifest((m) => Object.assign(m.files[0]!, stolen));
    await assertRefusedUntouched("UnsafeFile", /backups\/nightly\/prod\/a\/files is a symbolic link/);
  });

  it("a symlink planted at the location in place of A's backup directory fails A with UnsafeFile", async () => {
    const crafted = join(root, "crafted");
    await rename(atLocation("prod/a"), crafted);
    await symlink(crafted, atLocation("prod/a"));
    await assertRefusedUntouched("UnsafeFile", /backups\/nightly\/prod\/a is a symbolic link/);
  });

  it("a .fedbackup-prev planted as a symlink beside A's missing disk fails A with UnsafeFile", async () => {
    await rm(join(world.shared, diskOf("a")));
    await symlink("../b/disk.img", join(world.shared, `${diskOf("a")}.fedbackup-prev`));
    await assertRefusedUntouched("UnsafeFile", /vms\/a\/disk\.img\.fedbackup-prev is a symbolic link/);
  });

  it("a manifest pointing to a kept snapshot that is not A's fails A (InvalidManifest), every disk untouched", async () => {
    // A regular file with B's data, laid out where the edited snapshot location makes the restore look.
    await mkdir(join(world.shared, "vms/a/evil/vms/a"), { recursive: true });
    await copyFile(join(world.shared, diskOf("b")), join(world.shared, "vms/a/evil", diskOf("a")));
    const stolen = await referenceHash(join(world.shared, diskOf("b")));
    await editManifest((m) => {
      m.extractAt = "Restore";
      m.snapshot = { location: "vms/a/evil" };
      Object.assign(m.files[0]!, stolen);
    });
    await assertRefusedUntouched(
      "InvalidManifest",
      /points to "vms\/a\/evil", which is not a kept snapshot of prod\/a/,
    );
  });
});
