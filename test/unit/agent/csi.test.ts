import assert from "node:assert/strict";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import { freezeReportsOf, RestoredVolumeSnapshotProvider } from "../../../src/agent/csi.js";
import { readWorkloadManifest } from "../../../src/agent/manifest.js";
import {
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  realClock,
  writeRandomFile,
} from "./helpers.js";

describe("agent/csi: extracting from a restored VolumeSnapshot", function () {
  this.timeout(30_000);

  it("freezes nothing, extracts the VMs of the snapshot's report and records their freeze windows", async () => {
    const { dir, cleanup } = makeTempDir("csi");
    try {
      const restored = join(dir, "restored");
      const backupRoot = join(dir, "location");
      await writeRandomFile(join(restored, "vms/a/disk.img"), 300_000);
      await writeRandomFile(join(restored, "vms/b/disk.img"), 1000);
      const reports = freezeReportsOf({
        name: "nightly-r1-n1",
        creationTime: "2026-11-25T12:00:01Z",
        workloads: [
          {
            namespace: "vms",
            name: "a",
            indication: "GuestAgent",
            freezeStartedAt: "2026-11-25T12:00:00Z",
            freezeEndedAt: "2026-11-25T12:00:02Z",
            freezeWindowMs: 2000,
          },
        ],
      });
      const freezer = new RecordingFreezer();
      const result = await runNodeBackup(
        {
          backup: { namespace: "vms", name: "nightly", uid: "uid-nightly" },
          node: "n1",
          round: 1,
          method: "Auto",
          quiesce: "GuestAgent",
          freezeTimeoutMs: 2000,
          maxFreezeMs: 30_000,
          extractAt: "Backup",
          sharedRoot: restored,
          locationRoot: dir,
          backupPath: "location",
          workloads: [
            { namespace: "vms", name: "a", uid: "ua", files: ["vms/a/disk.img"] },
            { namespace: "vms", name: "b", uid: "ub", files: ["vms/b/disk.img"] },
          ],
        },
        {
          freezer,
          isActiveOnNode: alwaysActive,
          clock: realClock,
          log: memoryLog(),
          signals: [],
          snapshotProvider: new RestoredVolumeSnapshotProvider({ namespace: "vms", name: "nightly-r1-n1" }, restored),
          frozenReports: reports,
        },
      );
      assert.deepEqual(freezer.events, []);
      assert.equal(result.method, "CSI");
      assert.deepEqual(
        result.captured.map((c) => [c.name, c.indication, c.freezeWindowMs, c.consistency]),
        [["a", "GuestAgent", 2000, "ApplicationConsistent"]],
      );
      assert.deepEqual(
        result.failed.map((f) => [f.name, f.reason]),
        [["b", "CaptureFailed"]],
      );
      await assertSameBytes(join(restored, "vms/a/disk.img"), join(backupRoot, "vms/a/files/vms/a/disk.img"));
      const manifest = await readWorkloadManifest(backupRoot, "vms", "a");
      assert.equal(manifest.method, "CSI");
      assert.equal(manifest.freeze.startedAt, "2026-11-25T12:00:00.000Z");
    } finally {
      await cleanup();
    }
  });
});
