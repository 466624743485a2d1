import assert from "node:assert/strict";
import { mkdir, readdir, truncate, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { commitAtomic, isTempName, tempNameFor, writeJsonAtomic } from "../../../src/agent/atomic-files.js";
import type { WorkloadManifest } from "../../../src/agent/manifest.js";
import {
  ManifestError,
  backupFilePath,
  checkManifestComplete,
  nodeManifestPath,
  parseWorkloadManifest,
  relativePathProblem,
  workloadManifestPath,
  writeWorkloadManifest,
} from "../../../src/agent/manifest.js";
import { withDir, withRoot } from "../../../src/agent/safe-fs.js";
import { makeTempDir } from "./helpers.js";

async function writeFileMaking(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
}

function sampleManifest(overrides: Partial<WorkloadManifest> = {}): WorkloadManifest {
  return {
    schemaVersion: 1,
    backup: { name: "nightly", uid: "uid-1" },
    workload: { namespace: "prod", name: "a", uid: "uid-a" },
    node: "node-1",
    round: 1,
    method: "Reflink",
    indication: "GuestAgent",
    consistency: "ApplicationConsistent",
    freeze: { startedAt: "2025-01-01T00:00:00.000Z", endedAt: "2025-01-01T00:00:00.040Z", windowMs: 40 },
    extractAt: "Backup",
    files: [{ path: "vms/a/disk.img", bytes: 5, sha256: "a".repeat(64) }],
    totalBytes: 5,
    startedAt: "2025-01-01T00:00:00.000Z",
    completedAt: "2025-01-01T00:00:01.000Z",
    ...overrides,
  };
}

describe("agent/manifest", function () {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(() => ({ dir, cleanup } = makeTempDir("manifest")));
  afterEach(() => cleanup());

  it("lays out per-VM and per-node manifests as documented", () => {
    assert.equal(workloadManifestPath("prod", "a"), "prod/a/manifest.json");
    assert.equal(backupFilePath("prod", "a", "vms/a/disk.img"), "prod/a/files/vms/a/disk.img");
    assert.equal(nodeManifestPath("node-1", 2), "nodes/node-1-r2.json");
    assert.throws(() => workloadManifestPath("..", "a"), ManifestError);
    assert.throws(() => nodeManifestPath("a/b", 1), ManifestError);
  });

  it("rejects paths that could escape their root or have two spellings", () => {
    for (const ok of ["disk.img", "vms/a/disk.img", "a..b/c", "..hidden", "x/.y"]) {
      assert.equal(relativePathProblem(ok), undefined, ok);
    }
    const bad: Record<string, RegExp> = {
      "": /empty/,
      "/etc/passwd": /absolute/,
      "..": /'\.\.' segment/,
      "../x": /'\.\.' segment/,
      "vms/../../x": /'\.\.' segment/,
      "a//b": /not normalized/,
      "./a": /not normalized/,
      "a/": /not normalized/,
      ".": /not normalized/,
      "a\0b": /NUL/,
    };
    for (const [path, why] of Object.entries(bad))
      assert.match(relativePathProblem(path) ?? "", why, JSON.stringify(path));
    assert.throws(() => backupFilePath("prod", "a", "../../x"), ManifestError);
  });

  it("validates manifests it reads and refuses to write one it could not read back", async () => {
    assert.deepEqual(parseWorkloadManifest(JSON.parse(JSON.stringify(sampleManifest()))), sampleManifest());
    const broken: [Partial<WorkloadManifest>, RegExp][] = [
      [{ totalBytes: 6 }, /totalBytes/],
      [{ round: -1 }, /round/],
      [{ files: [{ path: "/abs", bytes: 1, sha256: "a".repeat(64) }], totalBytes: 1 }, /absolute/],
      [{ files: [{ path: "x", bytes: 1, sha256: "XYZ" }], totalBytes: 1 }, /sha256/],
      [{ extractAt: "Restore" }, /snapshot/],
      [{ indication: "Whatever" as "GuestAgent" }, /indication/],
    ];
    for (const [overrides, message] of broken) {
      assert.throws(() => parseWorkloadManifest(JSON.parse(JSON.stringify(sampleManifest(overrides)))), message);
      await assert.rejects(writeWorkloadManifest(dir, sampleManifest(overrides)), message);
    }
  });

  it("is complete only with the same backup uid and round and every file present at its size", async () => {
    const expect = { backupUid: "uid-1", round: 1, workloadUid: "uid-a" };
    const check = () => checkManifestComplete(dir, "prod", "a", expect);
    assert.deepEqual(await check(), {
      complete: false,
      reason: "no manifest at prod/a/manifest.json",
    });
    await writeWorkloadManifest(dir, sampleManifest());
    assert.deepEqual(await check(), { complete: false, reason: "vms/a/disk.img is missing" });
    const file = join(dir, backupFilePath("prod", "a", "vms/a/disk.img"));
    await writeFileMaking(file, '"abc"\n');
    assert.match(JSON.stringify(await check()), /has 6 bytes, the manifest lists 5/);
    await truncate(file, 5);
    assert.equal((await check()).complete, true);
    assert.equal((await checkManifestComplete(dir, "prod", "a", { ...expect, round: 2 })).complete, false);
    assert.equal((await checkManifestComplete(dir, "prod", "a", { ...expect, backupUid: "other" })).complete, false);
    assert.equal(
      (await checkManifestComplete(dir, "prod", "a", { ...expect, workloadUid: "recreated" })).complete,
      false,
    );
    await writeFile(join(dir, workloadManifestPath("prod", "a")), '{"schemaVersion": 1, "backup": ');
    assert.match(JSON.stringify(await check()), /not valid JSON/);
  });

  it("an extractAt Restore manifest is complete when the kept snapshot has the files", async () => {
    const manifest = sampleManifest({
      extractAt: "Restore",
      snapshot: { location: ".fedbackup/snapshots/backups/nightly-uid-1/node-1-r1/prod/a" },
    });
    await writeWorkloadManifest(dir, manifest);
    const shared = join(dir, "shared");
    const expect = { backupUid: "uid-1", round: 1 };
    assert.equal((await checkManifestComplete(dir, "prod", "a", expect)).complete, false);
    assert.equal((await checkManifestComplete(dir, "prod", "a", { ...expect, sharedRoot: shared })).complete, false);
    await writeFileMaking(join(shared, manifest.snapshot?.location ?? "", "vms/a/disk.img"), "abc");
    await truncate(join(shared, manifest.snapshot?.location ?? "", "vms/a/disk.img"), 5);
    assert.equal((await checkManifestComplete(dir, "prod", "a", { ...expect, sharedRoot: shared })).complete, true);
  });
});

describe("agent/atomic-files", function () {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(() => ({ dir, cleanup } = makeTempDir("atomic")));
  afterEach(() => cleanup());

  it("names temp files beside the target, hidden and recognisable", () => {
    const temp = tempNameFor("disk.img");
    assert.match(temp, /^\.disk\.img\.tmp-[0-9a-f]{12}$/);
    assert.ok(isTempName(temp));
    assert.ok(!isTempName("disk.img") && !isTempName(".disk.img.tmp-zz"));
  });

  it("leaves the target as it was and no temp file when producing fails", async () => {
    await withRoot(dir, (root) =>
      withDir(root, "sub", { create: true }, async (sub) => {
        await writeJsonAtomic(sub, "t.json", { v: 1 });
        await assert.rejects(
          commitAtomic(sub, "t.json", async (temp) => {
            await temp.writeFile("half");
            throw new Error("disk full");
          }),
          /disk full/,
        );
        assert.deepEqual(await readdir(join(dir, "sub")), ["t.json"]);
        await writeJsonAtomic(sub, "t.json", { v: 2 });
      }),
    );
    assert.deepEqual(await readdir(join(dir, "sub")), ["t.json"]);
  });
});
