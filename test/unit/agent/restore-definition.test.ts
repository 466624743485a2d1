// reportDefinition: the VM's captured definition is read and verified against its manifest before any disk
// is written, and reported; a definition that does not match fails the VM with nothing written.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, open, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import type { WorkloadManifest } from "../../../src/agent/manifest.js";
import { runNodeRestore } from "../../../src/agent/node-restore.js";
import type { RestoreRequest } from "../../../src/agent/restore.js";
import { RestoreError, restoreWorkload } from "../../../src/agent/restore.js";
import type { VmDefinition } from "../../../src/planning/vm-definition.js";
import { definitionOf } from "../../../src/planning/vm-definition.js";
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

describe("agent/restore reportDefinition", function () {
  this.timeout(30_000);
  let root: string;
  let cleanup: () => Promise<void>;
  let shared: string;
  let location: string;
  let pristine: string;
  let definition: VmDefinition;
  const definitionFile = () => join(location, "nightly/prod/a/definition.json");

  // prod/a backed up with its file, then its definition stored beside its manifest as a capture stores it
  // (definition.json, listed in the manifest with its size and sha256); its disk changes after the backup.
  beforeEach(async () => {
    ({ dir: root, cleanup } = makeTempDir("restore-definition"));
    shared = join(root, "shared");
    location = join(root, "location");
    pristine = join(root, "pristine.img");
    await writeRandomFile(join(shared, disk), MiB + 7);
    const result = await runNodeBackup(
      nodeBackupPlan(shared, join(location, "nightly"), {
        method: "Copy",
        workloads: [{ namespace: "prod", name: "a", uid: "uid-a", files: [disk] }],
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
    definition = definitionOf(
      {
        apiVersion: "kubevirt.io/v1",
        kind: "VirtualMachine",
        metadata: { name: "a", namespace: "prod", uid: "uid-a", labels: { app: "db" } },
        spec: {
          runStrategy: "Always",
          template: { spec: { volumes: [{ name: "root", hostDisk: { path: "/s/a" } }] } },
        },
        status: { ready: true },
      },
      [],
    );
    const bytes = Buffer.from(JSON.stringify(definition, null, 2));
    await writeFile(definitionFile(), bytes);
    await editManifest((m) => {
      m.definition = {
        path: "definition.json",
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      };
    });
    await writeFile(pristine, await readFile(join(shared, disk)));
    const handle = await open(join(shared, disk), "r+");
    await handle.write(Buffer.from("written after the backup"), 0, 24, 100);
    await handle.close();
  });
  afterEach(() => cleanup());

  async function editManifest(edit: (m: WorkloadManifest) => void): Promise<void> {
    const path = join(location, "nightly/prod/a/manifest.json");
    const manifest = JSON.parse(await readFile(path, "utf8")) as WorkloadManifest;
    edit(manifest);
    await writeFile(path, JSON.stringify(manifest));
  }

  const request = (overrides: Partial<RestoreRequest> = {}): RestoreRequest => ({
    locationRoot: location,
    backupPath: "nightly",
    namespace: "prod",
    name: "a",
    sharedRoot: shared,
    allowedFiles: [disk],
    reportDefinition: true,
    ...overrides,
  });

  async function assertRefusedUntouched(reason: string, message: RegExp): Promise<void> {
    const before = await describeTree(shared);
    const error = await restoreWorkload(request()).then(
      () => assert.fail("the restore should have failed"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof RestoreError, `not a RestoreError: ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    assert.match(error.message, message);
    assert.deepEqual(await describeTree(shared), before, "a disk was written");
  }

  it("reports the verified definition with the restored disks", async () => {
    const result = await restoreWorkload(request());
    assert.deepEqual(result, { files: 1, bytes: MiB + 7, verified: true, definition });
    await assertSameBytes(pristine, join(shared, disk));
  });

  it("runNodeRestore puts it in the VM's result", async () => {
    const [result] = await runNodeRestore(
      {
        node: "node-1",
        sharedRoot: shared,
        locationRoot: location,
        workloads: [{ namespace: "prod", name: "a", backupPath: "nightly", files: [disk], reportDefinition: true }],
      },
      { runningOn: () => Promise.resolve(undefined), report: () => Promise.resolve(), log: memoryLog() },
    );
    assert.deepEqual(result, {
      namespace: "prod",
      name: "a",
      restored: true,
      files: 1,
      bytes: MiB + 7,
      verified: true,
      definition: JSON.parse(JSON.stringify(definition)) as Record<string, unknown>,
    });
  });

  it("a copy reports the definition of the VM it copies", async () => {
    const copyDisk = "vms/a-copy/disk.img";
    const result = await restoreWorkload(
      request({
        name: "a-copy",
        source: { namespace: "prod", name: "a" },
        renamedFiles: [{ from: disk, to: copyDisk }],
        allowedFiles: [copyDisk],
      }),
    );
    assert.deepEqual(result.definition, definition);
    await assertSameBytes(pristine, join(shared, copyDisk));
  });

  it("a manifest without a definition: the VM restored, no definition reported", async () => {
    await editManifest((m) => delete m.definition);
    const result = await restoreWorkload(request());
    assert.deepEqual(result, { files: 1, bytes: MiB + 7, verified: true });
    await assertSameBytes(pristine, join(shared, disk));
  });

  it("not asked for: not read, so a damaged one does not stop the disks' restore", async () => {
    await rm(definitionFile());
    const result = await restoreWorkload(request({ reportDefinition: false }));
    assert.deepEqual(result, { files: 1, bytes: MiB + 7, verified: true });
  });

  it("a tampered definition.json (same size, other bytes): DefinitionCorrupt, no disk written", async () => {
    const text = await readFile(definitionFile(), "utf8");
    await writeFile(definitionFile(), text.replace('"app": "db"', '"app": "xx"'));
    await assertRefusedUntouched(
      "DefinitionCorrupt",
      /definition of prod\/a does not match.*sha256.*nothing was written/,
    );
  });

  it("a definition.json that matches an edited manifest but is not a definition: DefinitionCorrupt", async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 1, virtualMachine: { kind: "Pod" } }));
    await writeFile(definitionFile(), bytes);
    await editManifest((m) => {
      m.definition = {
        path: "definition.json",
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      };
    });
    await assertRefusedUntouched("DefinitionCorrupt", /definition of prod\/a does not match/);
  });

  it("a definition.json missing: DefinitionCorrupt (not MissingBackup), no disk written", async () => {
    await rm(definitionFile());
    await assertRefusedUntouched("DefinitionCorrupt", /definition\.json is missing/);
    const [result] = await runNodeRestore(
      {
        node: "node-1",
        sharedRoot: shared,
        locationRoot: location,
        workloads: [{ namespace: "prod", name: "a", backupPath: "nightly", files: [disk], reportDefinition: true }],
      },
      { runningOn: () => Promise.resolve(undefined), report: () => Promise.resolve(), log: memoryLog() },
    );
    assert.equal(result?.reason, "DefinitionCorrupt");
  });

  it("a definition.json replaced by a symlink: UnsafeFile, not followed, no disk written", async () => {
    const elsewhere = join(root, "elsewhere");
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, "definition.json"), await readFile(definitionFile()));
    await rm(definitionFile());
    await symlink(join(elsewhere, "definition.json"), definitionFile());
    await assertRefusedUntouched("UnsafeFile", /definition\.json is a symbolic link/);
  });
});
