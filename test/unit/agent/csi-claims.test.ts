// The extract Job of a step whose claims are cut with CSI: each claim's disk is read from the claim restored
// from its VolumeSnapshot (PlannedClaim.readFrom), nothing is frozen, and the manifest says CSI and why.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import {
  freezeReportsOf,
  isCutWithCsi,
  RestoredVolumeSnapshotProvider,
  takeVolumeSnapshot,
} from "../../../src/agent/csi.js";
import { readWorkloadManifest } from "../../../src/agent/manifest.js";
import type { NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import type { KubeClient } from "../../../src/k8s/client.js";
import { ApiError } from "../../../src/k8s/errors.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { claimSnapshotName } from "../../../src/planning/index.js";
import {
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  realClock,
  writeRandomFile,
} from "./helpers.js";

const WHY = "Auto picked CSI: a VolumeSnapshotClass exists for driver rbd.csi.ceph.com";

describe("agent/csi: claims cut with CSI", function () {
  this.timeout(30_000);

  it("extracts a claim from the claim restored from its snapshot, freezing nothing", async () => {
    const { dir, cleanup } = makeTempDir("csi-claims");
    try {
      const claims = join(dir, "claims");
      const shared = join(dir, "shared");
      await mkdir(shared, { recursive: true });
      // The restored claim is mounted under its own name; the VM's claim itself is not there at all.
      await writeRandomFile(join(claims, "step-pvc-a-12345678-restore/disk.img"), 200_001);
      // A disk.img under the claim's own name would be the live disk: it must not be read.
      await mkdir(join(claims, "pvc-a"), { recursive: true });
      await writeFile(join(claims, "pvc-a/disk.img"), "live");
      const reports = freezeReportsOf({
        creationTime: "2026-11-25T12:00:01Z",
        workloads: [{ namespace: "vms", name: "a", indication: "GuestAgent", freezeWindowMs: 40 }],
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
          sharedRoot: shared,
          locationRoot: dir,
          backupPath: "location",
          claimsRoot: claims,
          devicesRoot: join(dir, "devices"),
          workloads: [
            {
              namespace: "vms",
              name: "a",
              uid: "ua",
              files: [],
              claims: [
                {
                  volume: "root",
                  claimName: "pvc-a",
                  volumeMode: "Filesystem",
                  snapshotMethod: "CSI",
                  why: WHY,
                  readFrom: "step-pvc-a-12345678-restore",
                },
              ],
            },
          ],
        },
        {
          freezer,
          isActiveOnNode: alwaysActive,
          clock: realClock,
          log: memoryLog(),
          signals: [],
          snapshotProvider: new RestoredVolumeSnapshotProvider({ namespace: "vms", name: "step" }, shared),
          frozenReports: reports,
        },
      );
      assert.deepEqual(freezer.events, []);
      assert.deepEqual(result.failed, []);
      assert.deepEqual(
        result.captured.map((c) => [c.name, c.freezeWindowMs]),
        [["a", 40]],
      );
      const manifest = await readWorkloadManifest(join(dir, "location"), "vms", "a");
      assert.equal(manifest.method, "CSI");
      assert.deepEqual(
        manifest.filesystemDisks?.map((d) => [d.name, d.source.claimName, d.method, d.why, d.bytes]),
        [["root", "pvc-a", "CSI", WHY, 200_001]],
      );
      await assertSameBytes(
        join(claims, "step-pvc-a-12345678-restore/disk.img"),
        join(dir, "location/vms/a/claims/root/disk.img"),
      );
    } finally {
      await cleanup();
    }
  });

  it("refuses a readFrom that is not one path component", async () => {
    const { dir, cleanup } = makeTempDir("csi-claims-bad");
    try {
      await mkdir(join(dir, "shared"), { recursive: true });
      const result = await runNodeBackup(
        {
          backup: { namespace: "vms", name: "nightly", uid: "uid-nightly" },
          node: "n1",
          round: 1,
          method: "Copy",
          quiesce: "GuestAgent",
          freezeTimeoutMs: 2000,
          maxFreezeMs: 30_000,
          extractAt: "Backup",
          sharedRoot: join(dir, "shared"),
          locationRoot: dir,
          backupPath: "location",
          claimsRoot: join(dir, "claims"),
          workloads: [
            {
              namespace: "vms",
              name: "a",
              uid: "ua",
              files: [],
              claims: [{ volume: "root", claimName: "pvc-a", volumeMode: "Filesystem", readFrom: "../elsewhere" }],
            },
          ],
        },
        {
          freezer: new RecordingFreezer(),
          isActiveOnNode: alwaysActive,
          clock: realClock,
          log: memoryLog(),
          signals: [],
        },
      );
      assert.deepEqual(
        result.failed.map((f) => [f.name, f.reason]),
        [["a", "CaptureFailed"]],
      );
    } finally {
      await cleanup();
    }
  });

  it("cuts with CSI the VMs on a CSI claim, or every VM with method CSI", () => {
    const step = (method: "Auto" | "CSI") => ({ spec: { snapshot: { method } } }) as unknown as NodeSnapshot;
    const onCsi = {
      namespace: "n",
      name: "a",
      files: [],
      claims: [{ volume: "r", claimName: "c", volumeMode: "Block", snapshotMethod: "CSI" }],
    } as never;
    const onCopy = {
      namespace: "n",
      name: "b",
      files: [],
      claims: [{ volume: "r", claimName: "d", volumeMode: "Block", snapshotMethod: "Copy" }],
    } as never;
    const host = { namespace: "n", name: "c", files: ["x.img"] } as never;
    assert.deepEqual(
      [onCsi, onCopy, host].map((w) => isCutWithCsi(step("Auto"), w)),
      [true, false, false],
    );
    assert.deepEqual(
      [onCsi, onCopy, host].map((w) => isCutWithCsi(step("CSI"), w)),
      [true, true, true],
    );
  });
});

describe("agent/csi: takeVolumeSnapshot of claims", () => {
  const stepName = "nightly-r1-n1";
  /** A KubeClient for VolumeSnapshots only: records the calls, a created snapshot gets its cut point at once. */
  function fakeClient(existing: string[] = []) {
    const snapshots = new Map<string, KubeObject & { spec?: unknown; status?: { creationTime?: string } }>(
      existing.map((n) => [n, { metadata: { name: n } }]),
    );
    const calls: string[] = [];
    const client = {
      create: (_type: unknown, obj: KubeObject & { spec?: unknown }) => {
        calls.push(`create ${obj.metadata.name}`);
        snapshots.set(obj.metadata.name!, { ...obj, status: { creationTime: "2026-11-25T12:00:01Z" } });
        return Promise.resolve(obj);
      },
      get: (_type: unknown, _ns: string, name: string) => {
        const vs = snapshots.get(name);
        if (!vs) return Promise.reject(new ApiError(404, "NotFound", `${name} not found`));
        return Promise.resolve(vs);
      },
      delete: (_type: unknown, _ns: string, name: string) => {
        calls.push(`delete ${name}`);
        if (!snapshots.delete(name)) return Promise.reject(new ApiError(404, "NotFound", `${name} not found`));
        return Promise.resolve();
      },
    };
    return { client: client as unknown as KubeClient, calls, snapshots };
  }
  const claim = (claimName: string, snapshotMethod: "CSI" | "Copy") => ({
    volume: `v-${claimName}`,
    claimName,
    volumeMode: "Filesystem" as const,
    snapshotMethod,
    ...(snapshotMethod === "CSI" ? { volumeSnapshotClassName: "rbd-snap" } : {}),
  });
  const step = {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "NodeSnapshot",
    metadata: { name: stepName, namespace: "vms", uid: "step-uid", labels: { "fedbackup.io/backup": "nightly" } },
    spec: {
      backupName: "nightly",
      backupUID: "uid",
      node: "n1",
      round: 1,
      order: 1,
      location: { persistentVolumeClaim: { claimName: "backups" }, path: "p" },
      snapshot: { method: "Auto", quiesce: "GuestAgent", freezeTimeout: "30s", maxFreeze: "2m" },
      extractAt: "Backup",
      workloads: [
        { namespace: "vms", name: "a", uid: "ua", files: [], claims: [claim("pvc-a", "CSI"), claim("pvc-b", "CSI")] },
        { namespace: "vms", name: "c", uid: "uc", files: [], claims: [claim("pvc-c", "Copy")] },
        { namespace: "vms", name: "gone", uid: "ug", files: [], claims: [claim("pvc-g", "CSI")] },
      ],
    },
  } as unknown as NodeSnapshot & KubeObject;

  it("cuts each CSI claim of the frozen VMs, after removing an earlier attempt's, and thaws after every cut point", async () => {
    const a = claimSnapshotName(stepName, "pvc-a");
    const b = claimSnapshotName(stepName, "pvc-b");
    const g = claimSnapshotName(stepName, "pvc-g");
    const { client, calls, snapshots } = fakeClient([a]);
    const freezer = new RecordingFreezer();
    const order: string[] = [];
    freezer.onFreeze = (vm) => Promise.resolve(void order.push(`freeze ${vm.name} after ${calls.length} calls`));
    freezer.onUnfreeze = (vm) => Promise.resolve(void order.push(`thaw ${vm.name} after ${calls.length} calls`));
    const taken = await takeVolumeSnapshot(
      step,
      { freezeTimeoutMs: 2000, maxFreezeMs: 30_000 },
      {
        client,
        freezer,
        isActiveOnNode: (vm) =>
          Promise.resolve(
            vm.name === "gone" ? { active: false, reason: "Migrated", message: "now on n2" } : { active: true },
          ),
        clock: realClock,
        log: memoryLog(),
        pollMs: 1,
      },
    );
    // The earlier attempt's snapshot goes before any freeze; the Copy VM is not this function's.
    assert.deepEqual(calls, [`delete ${a}`, `delete ${b}`, `delete ${g}`, `create ${a}`, `create ${b}`]);
    assert.deepEqual(order, ["freeze a after 3 calls", "thaw a after 5 calls"]);
    assert.deepEqual(
      taken.claimSnapshots.map((c) => [c.name, c.claimName, c.volumeSnapshot, c.creationTime]),
      [
        ["a", "pvc-a", a, "2026-11-25T12:00:01Z"],
        ["a", "pvc-b", b, "2026-11-25T12:00:01Z"],
      ],
    );
    assert.equal(taken.volumeSnapshot?.name, undefined, "no snapshot of the shared claim");
    assert.deepEqual(
      taken.volumeSnapshot?.workloads?.map((w) => w.name),
      ["a"],
    );
    assert.deepEqual(
      taken.failed.map((f) => [f.name, f.reason]),
      [["gone", "Migrated"]],
    );
    const created = snapshots.get(a) as unknown as {
      spec: { volumeSnapshotClassName: string; source: { persistentVolumeClaimName: string } };
      metadata: { ownerReferences: Array<{ uid: string }> };
    };
    assert.equal(created.spec.volumeSnapshotClassName, "rbd-snap");
    assert.equal(created.spec.source.persistentVolumeClaimName, "pvc-a");
    assert.equal(created.metadata.ownerReferences[0]!.uid, "step-uid");
  });

  it("thaws at maxFreeze when a cut point is late, and says so (FreezeBudgetExceeded)", async () => {
    const { client, snapshots } = fakeClient();
    // The snapshot controller takes its time: no creationTime until 300 ms after the create.
    const create = client.create.bind(client);
    (client as unknown as { create: typeof create }).create = async (type, obj) => {
      const out = await create(type, obj);
      const vs = snapshots.get(obj.metadata.name!)!;
      const at = vs.status;
      vs.status = {};
      setTimeout(() => (vs.status = at), 300);
      return out;
    };
    const freezer = new RecordingFreezer();
    const onlyA = {
      ...step,
      spec: { ...step.spec, workloads: step.spec.workloads!.slice(0, 1) },
    } as NodeSnapshot & KubeObject;
    const taken = await takeVolumeSnapshot(
      onlyA,
      { freezeTimeoutMs: 2000, maxFreezeMs: 100 },
      { client, freezer, isActiveOnNode: alwaysActive, clock: realClock, log: memoryLog(), pollMs: 5 },
    );
    freezer.assertAllThawed();
    assert.deepEqual(
      taken.volumeSnapshot?.workloads?.map((w) => [w.name, w.indication]),
      [["a", "FreezeBudgetExceeded"]],
    );
    assert.ok((taken.volumeSnapshot?.workloads?.[0]?.freezeWindowMs ?? 0) < 300, "thawed before the cut point came");
    assert.equal(taken.claimSnapshots.length, 2, "the snapshots are still recorded");
  });
});
