// A pipelined step (deps.turn): nothing is frozen before its turn, every cut is made and every VM thawed
// before it reports its cut (so the operator can hand the turn on), and extraction comes after that report.
// With Copy (the copy is the cut) no cut is reported: the turn ends with the step.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import { workloadManifestPath } from "../../../src/storage/layout.js";
import { CopySnapshotProvider, type SnapshotProvider } from "../../../src/agent/snapshot.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  makeTempDir,
  memoryLog,
  nodeBackupPlan,
  realClock,
  writeRandomFile,
} from "./helpers.js";

/** Copies as the Copy method does, but says it is point in time, as Reflink and CSI are. */
class PointInTimeCopies implements SnapshotProvider {
  private readonly copies = new CopySnapshotProvider();
  readonly method = "Reflink";
  readonly freezeScope = "Workload";
  readonly pointInTime = true;
  discard: SnapshotProvider["discard"] = (vm, ctx) => this.copies.discard(vm, ctx);
  capture: SnapshotProvider["capture"] = (targets, ctx) => this.copies.capture(targets, ctx);
  release: SnapshotProvider["release"] = (snapshot, ctx) => this.copies.release(snapshot, ctx);
}

describe("agent/backup: a pipelined step's turn", function () {
  this.timeout(30_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(() => ({ dir, cleanup } = makeTempDir("turn")));
  afterEach(() => cleanup());

  const vms = ["a", "b", "c"];
  const manifestsAt = (location: string) =>
    vms.filter((vm) => existsSync(join(location, workloadManifestPath("prod", vm))));

  async function run(provider: SnapshotProvider) {
    const shared = join(dir, "shared");
    const location = join(dir, "location", "backups", "nightly");
    for (const vm of vms) await writeRandomFile(join(shared, `vms/${vm}/disk.img`), 2 * MiB);
    const freezer = new RecordingFreezer();
    const log: string[] = [];
    freezer.onFreeze = (vm) => Promise.resolve(void log.push(`freeze ${vm.name}`));
    freezer.onUnfreeze = (vm) => Promise.resolve(void log.push(`thaw ${vm.name}`));
    let manifestsAtCut: string[] | undefined;
    const result = await runNodeBackup(
      nodeBackupPlan(shared, location, {
        workloads: vms.map((vm) => ({ namespace: "prod", name: vm, uid: `uid-${vm}`, files: [`vms/${vm}/disk.img`] })),
      }),
      {
        freezer,
        isActiveOnNode: alwaysActive,
        clock: realClock,
        log: memoryLog(),
        signals: [],
        snapshotProvider: provider,
        turn: {
          wait: () => Promise.resolve(void log.push("turn")),
          cutMade: () => {
            log.push("cut made");
            manifestsAtCut = manifestsAt(location);
            return Promise.resolve();
          },
        },
      },
    );
    freezer.assertAllThawed();
    return { result, log, manifestsAtCut, manifests: manifestsAt(location) };
  }

  it("point in time: waits before the first freeze, reports the cut after every thaw, extracts after", async () => {
    const { result, log, manifestsAtCut, manifests } = await run(new PointInTimeCopies());
    assert.deepEqual(result.failed, []);
    assert.deepEqual(log, ["turn", "freeze a", "thaw a", "freeze b", "thaw b", "freeze c", "thaw c", "cut made"]);
    assert.deepEqual(manifestsAtCut, [], "nothing was extracted before the cut was reported");
    assert.deepEqual(manifests, vms);
  });

  it("Copy: waits for its turn, captures and extracts one VM at a time, and reports no cut of its own", async () => {
    const { result, log, manifests } = await run(new CopySnapshotProvider());
    assert.deepEqual(result.failed, []);
    assert.deepEqual(log, ["turn", "freeze a", "thaw a", "freeze b", "thaw b", "freeze c", "thaw c"]);
    assert.deepEqual(manifests, vms);
  });
});
