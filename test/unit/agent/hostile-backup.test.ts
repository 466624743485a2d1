// A backup run against a tenant who prepared its disk (or the location) to make the agent, which runs as
// root, read another tenant's disk or a host file into its backup, or write somewhere else.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NodeBackupResult } from "../../../src/agent/backup.js";
import { runNodeBackup } from "../../../src/agent/backup.js";
import { DISK_ATTACKS, type World } from "./attacks.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  describeTree,
  makeTempDir,
  memoryLog,
  mountReflinkVolume,
  nodeBackupPlan,
  realClock,
  releaseFifo,
  writeRandomFile,
  type ReflinkVolume,
} from "./helpers.js";

interface Env extends World {
  /** The backup's directory at the location (its parent is the location's mount point). */
  backupDir: string;
  /** A directory outside both volumes that a planted symlink at the location points to. */
  victimDir: string;
}

const SECRET = `host secret ${randomBytes(8).toString("hex")}\n`;
const A = { namespace: "prod", name: "a", uid: "uid-a", files: ["vms/a/disk.img"] };
const B = { namespace: "prod", name: "b", uid: "uid-b", files: ["vms/b/disk.img"] };

for (const method of ["Copy", "Reflink"] as const) {
  describe(`agent/backup with hostile tenants (${method})`, function () {
    this.timeout(60_000);
    let sharedBase: string;
    let scratch: string;
    let release: () => Promise<void>;
    let env: Env;
    let cases = 0;
    const fifos: string[] = [];

    before(async function () {
      if (method === "Copy") {
        const { dir, cleanup } = makeTempDir("hostile-backup");
        sharedBase = scratch = dir;
        release = cleanup;
        return;
      }
      // Reflink needs a filesystem with copy-on-write clones: a loop-mounted XFS image, where possible.
      const volume: ReflinkVolume | string = await mountReflinkVolume();
      if (typeof volume === "string") {
        console.log(`      (skipped: ${volume})`);
        this.skip();
      }
      sharedBase = volume.mnt;
      scratch = volume.dir;
      release = () => volume.unmount();
    });
    after(async function () {
      this.timeout(30_000);
      await release?.();
    });

    // Each test gets its own shared volume (on the method's filesystem) and location.
    beforeEach(async () => {
      cases++;
      env = {
        shared: join(sharedBase, `shared-${cases}`),
        secret: join(scratch, `secret-${cases}.txt`),
        backupDir: join(scratch, `location-${cases}`, "nightly"),
        victimDir: join(scratch, `victim-${cases}`),
      };
      await writeRandomFile(join(env.shared, "vms/a/disk.img"), MiB + 17);
      await writeRandomFile(join(env.shared, "vms/b/disk.img"), 2 * MiB + 5);
      await writeFile(env.secret, SECRET);
      await mkdir(env.victimDir);
      await writeFile(join(env.victimDir, "keep.txt"), "the victim's file");
    });
    afterEach(async () => {
      for (const fifo of fifos.splice(0)) await releaseFifo(fifo);
    });

    async function backUp(): Promise<{ result: NodeBackupResult; freezer: RecordingFreezer }> {
      const freezer = new RecordingFreezer();
      const result = await runNodeBackup(nodeBackupPlan(env.shared, env.backupDir, { method, workloads: [A, B] }), {
        freezer,
        isActiveOnNode: alwaysActive,
        clock: realClock,
        log: memoryLog(),
        signals: [],
      });
      return { result, freezer };
    }

    // The shared volume without fedbackup's own (empty) directories.
    async function sharedTree(): Promise<Record<string, string>> {
      const tree = await describeTree(env.shared);
      for (const [path, what] of Object.entries(tree)) {
        if (path === ".fedbackup" || path.startsWith(".fedbackup/")) {
          assert.equal(what, "dir", `${path} was left on the shared volume`);
          delete tree[path];
        }
      }
      return tree;
    }

    // Every regular file at the location and on the shared volume, read in full: none holds the secret.
    async function assertSecretNowhere(): Promise<void> {
      for (const root of [join(env.backupDir, ".."), env.shared]) {
        for (const [path, what] of Object.entries(await describeTree(root))) {
          if (!what.startsWith("file ")) continue;
          const content = await readFile(join(root, path), "utf8");
          assert.ok(!content.includes(SECRET.trim()), `the secret reached ${join(root, path)}`);
        }
      }
    }

    const locationFiles = async () =>
      Object.entries(await describeTree(env.backupDir))
        .filter(([, what]) => !what.startsWith("dir"))
        .map(([path]) => path)
        .sort();

    for (const attack of DISK_ATTACKS) {
      it(`${attack.name}: A is refused (UnsafeFile, naming the path) and nothing it points to reaches a backup`, async () => {
        await attack.plant(env);
        if (attack.fifo) fifos.push(attack.fifo(env));
        const before = await sharedTree();

        const { result, freezer } = await backUp();

        assert.equal(result.method, method);
        const a = result.failed.find((f) => f.name === "a");
        assert.equal(a?.reason, "UnsafeFile", JSON.stringify(result.failed));
        assert.match(a?.message ?? "", attack.refusal);
        assert.ok(!freezer.log.includes("freeze prod/a"), "A was frozen for a capture that cannot be made");
        if (attack.victimRefused) {
          const b = result.failed.find((f) => f.name === "b");
          assert.equal(b?.reason, "UnsafeFile");
          assert.match(b?.message ?? "", attack.victimRefused);
          assert.deepEqual(await locationFiles(), ["nodes/node-1-r1.json"]);
        } else {
          assert.deepEqual(
            result.captured.map((c) => c.name),
            ["b"],
          );
          await assertSameBytes(join(env.shared, "vms/b/disk.img"), join(env.backupDir, "prod/b/files/vms/b/disk.img"));
          // Nothing of A's at the location: no file, no manifest.
          assert.deepEqual(await locationFiles(), [
            "nodes/node-1-r1.json",
            "prod/b/files/vms/b/disk.img",
            "prod/b/manifest.json",
          ]);
        }
        assert.deepEqual(await sharedTree(), before, "the shared volume changed");
        assert.equal(await readFile(env.secret, "utf8"), SECRET);
        await assertSecretNowhere();
      });
    }

    it("refuses a symlink planted at the location in place of A's directory, writing nothing through it", async () => {
      await mkdir(join(env.backupDir, "prod"), { recursive: true });
      await symlink(env.victimDir, join(env.backupDir, "prod/a"));
      const victim = await describeTree(env.victimDir);
      const before = await sharedTree();

      const { result } = await backUp();

      const a = result.failed.find((f) => f.name === "a");
      assert.equal(a?.reason, "UnsafeFile", JSON.stringify(result.failed));
      assert.match(a?.message ?? "", /nightly\/prod\/a is a symbolic link/);
      assert.deepEqual(
        result.captured.map((c) => c.name),
        ["b"],
      );
      assert.deepEqual(await describeTree(env.victimDir), victim, "something was written through the symlink");
      assert.deepEqual(await sharedTree(), before);
    });

    it("replaces a symlink planted at the location in place of A's backup file, never writing through it", async () => {
      const planted = join(env.backupDir, "prod/a/files/vms/a/disk.img");
      await mkdir(join(planted, ".."), { recursive: true });
      await symlink(join(env.shared, "vms/b/disk.img"), planted);
      const before = await sharedTree();

      const { result } = await backUp();

      assert.deepEqual(result.failed, []);
      // A's backup is A's disk, in a regular file where the symlink was; B's disk is as it was.
      assert.match((await describeTree(env.backupDir))["prod/a/files/vms/a/disk.img"] ?? "", /^file /);
      await assertSameBytes(join(env.shared, "vms/a/disk.img"), planted);
      assert.deepEqual(await sharedTree(), before);
    });
  });
}
