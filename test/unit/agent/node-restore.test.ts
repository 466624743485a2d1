import assert from "node:assert/strict";
import { copyFile, mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import type { NodeRestoreDeps, NodeRestoreInput, NodeRestoreResult } from "../../../src/agent/node-restore.js";
import { runNodeRestore } from "../../../src/agent/node-restore.js";
import type { VmRef } from "../../../src/agent/types.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  nodeBackupPlan,
  realClock,
  writeRandomFile,
} from "./helpers.js";

describe("agent/node-restore runNodeRestore", function () {
  this.timeout(30_000);
  let root: string;
  let cleanup: () => Promise<void>;
  let shared: string;
  let location: string;
  let pristine: string;
  const backupPath = "backups/nightly";
  const diskOf = (vm: string) => `vms/${vm}/disk.img`;
  const sizes: Record<string, number> = { a: 2 * MiB + 3, b: 64 * 1024 };

  // Each test starts from a real backup of prod/a and prod/b whose disks changed afterwards.
  beforeEach(async () => {
    ({ dir: root, cleanup } = makeTempDir("node-restore"));
    shared = join(root, "shared");
    location = join(root, "location");
    pristine = join(root, "pristine");
    for (const vm of ["a", "b"]) {
      await writeRandomFile(join(shared, diskOf(vm)), sizes[vm]!);
      await mkdir(join(pristine, "vms", vm), { recursive: true });
      await copyFile(join(shared, diskOf(vm)), join(pristine, diskOf(vm)));
    }
    const backup = await runNodeBackup(
      nodeBackupPlan(shared, join(location, backupPath), {
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
    for (const vm of ["a", "b"]) await scribble(join(shared, diskOf(vm)), 100);
  });
  afterEach(() => cleanup());

  async function scribble(path: string, at: number) {
    const handle = await open(path, "r+");
    await handle.write(Buffer.from("written after the backup"), 0, 24, at);
    await handle.close();
  }

  const workload = (name: string, path = backupPath) => ({
    namespace: "prod",
    name,
    backupPath: path,
    files: [diskOf(name)],
  });

  function run(overrides: Partial<NodeRestoreInput> = {}, depsOverrides: Partial<NodeRestoreDeps> = {}) {
    const reports: NodeRestoreResult[][] = [];
    const deps: NodeRestoreDeps = {
      runningOn: () => Promise.resolve(undefined),
      report: (results) => {
        reports.push(structuredClone(results));
        return Promise.resolve();
      },
      log: memoryLog(),
      ...depsOverrides,
    };
    const input: NodeRestoreInput = {
      node: "node-1",
      sharedRoot: shared,
      locationRoot: location,
      workloads: [workload("a"), workload("b")],
      ...overrides,
    };
    return { reports, done: runNodeRestore(input, deps) };
  }

  const restored = (name: string): NodeRestoreResult => ({
    namespace: "prod",
    name,
    restored: true,
    files: 1,
    bytes: sizes[name]!,
    verified: true,
  });

  it("restores every VM byte for byte and reports after each one", async () => {
    const { reports, done } = run();
    const results = await done;
    assert.deepEqual(results, [restored("a"), restored("b")]);
    for (const vm of ["a", "b"]) await assertSameBytes(join(pristine, diskOf(vm)), join(shared, diskOf(vm)));
    assert.deepEqual(reports, [[restored("a")], [restored("a"), restored("b")]]);
  });

  it("refuses a VM with a corrupt backup file, leaving its disk as it was, and restores the others", async () => {
    await scribble(join(location, backupPath, "prod/a/files", diskOf("a")), MiB);
    const before = await readFile(join(shared, diskOf("a")));
    const { reports, done } = run();
    const [a, b] = await done;
    assert.equal(a?.restored, false);
    assert.equal(a?.reason, "ChecksumMismatch");
    assert.equal(a?.verified, false);
    assert.match(a?.message ?? "", /vms\/a\/disk\.img is corrupt/);
    assert.ok((await readFile(join(shared, diskOf("a")))).equals(before), "the disk of prod/a was modified");
    assert.deepEqual(b, restored("b"));
    await assertSameBytes(join(pristine, diskOf("b")), join(shared, diskOf("b")));
    assert.equal(reports.length, 2);
  });

  it("reports a missing backup directory or VM manifest as MissingBackup, naming the path", async () => {
    const { done } = run({ workloads: [workload("a", "backups/gone"), workload("c"), workload("b")] });
    const [a, c, b] = await done;
    assert.deepEqual(a, {
      namespace: "prod",
      name: "a",
      restored: false,
      reason: "MissingBackup",
      message: "no backup of prod/a: the backup directory backups/gone does not exist at the location",
    });
    assert.equal(c?.reason, "MissingBackup");
    assert.equal(
      c?.message,
      "no backup of prod/c: backups/nightly/prod/c/manifest.json does not exist at the location",
    );
    assert.deepEqual(b, restored("b"));
  });

  it("never writes the disk of a VM that has a running instance", async () => {
    const before = await readFile(join(shared, diskOf("a")));
    const asked: string[] = [];
    const runningOn = (vm: VmRef) => {
      asked.push(vm.name);
      return Promise.resolve(vm.name === "a" ? "node-2" : undefined);
    };
    const [a, b] = await run({}, { runningOn }).done;
    assert.deepEqual(a, {
      namespace: "prod",
      name: "a",
      restored: false,
      reason: "Running",
      message: "the VM has a running instance on node node-2; its disks are not written while it runs",
    });
    assert.ok((await readFile(join(shared, diskOf("a")))).equals(before), "the disk of a running VM was written");
    assert.deepEqual(b, restored("b"));
    assert.deepEqual(asked, ["a", "b"]);

    // An instance not yet scheduled counts as running too.
    const [again] = await run({ workloads: [workload("a")] }, { runningOn: () => Promise.resolve("") }).done;
    assert.equal(again?.reason, "Running");
    assert.ok((await readFile(join(shared, diskOf("a")))).equals(before));
  });

  it("reports any other failure of one VM as RestoreFailed and goes on", async () => {
    const before = await readFile(join(shared, diskOf("a")));
    const runningOn = (vm: VmRef) =>
      vm.name === "a" ? Promise.reject(new Error("apiserver unavailable")) : Promise.resolve(undefined);
    const [a, b] = await run({}, { runningOn }).done;
    assert.deepEqual(a, {
      namespace: "prod",
      name: "a",
      restored: false,
      reason: "RestoreFailed",
      message: "apiserver unavailable",
    });
    assert.ok((await readFile(join(shared, diskOf("a")))).equals(before));
    assert.deepEqual(b, restored("b"));
  });

  it("keeps the VMs an earlier attempt restored and redoes the others", async () => {
    const earlier: NodeRestoreResult = { ...restored("a"), bytes: 12345 };
    const previous: NodeRestoreResult[] = [
      earlier,
      { namespace: "prod", name: "b", restored: false, reason: "RestoreFailed", message: "killed" },
    ];
    // Were prod/a restored again, this would fail it.
    await rm(join(location, backupPath, "prod/a"), { recursive: true });
    const before = await readFile(join(shared, diskOf("a")));
    const { reports, done } = run({ previous });
    assert.deepEqual(await done, [earlier, restored("b")]);
    assert.ok((await readFile(join(shared, diskOf("a")))).equals(before));
    await assertSameBytes(join(pristine, diskOf("b")), join(shared, diskOf("b")));
    assert.deepEqual(reports, [[earlier, restored("b")]]);
  });

  it("stops when aborted, after reporting the VMs done, and leaves the rest untouched", async () => {
    const controller = new AbortController();
    const before = await readFile(join(shared, diskOf("b")));
    const reports: NodeRestoreResult[][] = [];
    const report = (results: NodeRestoreResult[]) => {
      reports.push(structuredClone(results));
      controller.abort(new Error("interrupted by SIGTERM"));
      return Promise.resolve();
    };
    await assert.rejects(run({ signal: controller.signal }, { report }).done, /interrupted by SIGTERM/);
    assert.deepEqual(reports, [[restored("a")]]);
    await assertSameBytes(join(pristine, diskOf("a")), join(shared, diskOf("a")));
    assert.ok((await readFile(join(shared, diskOf("b")))).equals(before));
  });
});
