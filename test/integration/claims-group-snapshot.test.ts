// Backups of VMs on claims of a CSI driver that has a VolumeGroupSnapshotClass: Auto cuts such a VM's
// claims in one VolumeGroupSnapshot (one cut point for all its disks) while the VM is frozen, the operator
// restores each member snapshot into a claim, the extract Job reads them as it reads single snapshots, and
// the group (its members with it), the restored claims and the claims' group label are gone after. A VM on
// a driver with only a VolumeSnapshotClass is still cut one VolumeSnapshot per claim, in the same step.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  backupBlockDiskPath,
  backupFilesystemDiskPath,
  readWorkloadManifest,
  type WorkloadManifest,
} from "../../src/agent/manifest.js";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { GROUP_SNAPSHOT_LABEL, groupSnapshotName } from "../../src/planning/index.js";
import { loopDevicesUsable, waitForBound } from "../harness/block-volumes.js";
import { CSI_DOUBLE_DRIVER } from "../harness/csi-double.js";
import { claimDisksOf, cleanupClaimDisks, createVm, type VmFixture } from "../harness/workloads.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  claimsLeftAfterRelease,
  csiDouble,
  kubevirtDouble,
  podRunner,
  startOperator,
} from "./operator-env.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** A second driver name the double answers for too: it alone has a VolumeGroupSnapshotClass. */
const GROUP_DRIVER = "group.hostpath.csi.fedbackup.test";
const CLASS = "fedbackup-test-claims";
const GROUP_CLASS = "fedbackup-test-group";
const GROUP_SNAPSHOT_CLASS = "fedbackup-test-group-snap";

/** A Block disk's content as the backup holds it: the data file with zeros put back where the holes are. */
function reassemble(dataFile: Buffer, disk: NonNullable<WorkloadManifest["blockDisks"]>[number]): Buffer {
  const out = Buffer.alloc(disk.bytes);
  let read = 0;
  let at = 0;
  for (const hole of [...disk.holes, { offset: disk.bytes, length: 0 }]) {
    const length = hole.offset - at;
    dataFile.copy(out, at, read, read + length);
    read += length;
    at = hole.offset + hole.length;
  }
  return out;
}

describe("FederatedBackup of VMs on claims, VolumeGroupSnapshot per VM (Auto)", function () {
  this.timeout(300_000);

  before(async function () {
    if (loopDevicesUsable() !== true) this.skip();
    await kubevirtDouble();
    await podRunner();
    const double = await csiDouble();
    await double.ensureClass(CLASS);
    await double.ensureClass(GROUP_SNAPSHOT_CLASS, GROUP_DRIVER);
    await double.ensureGroupClass(GROUP_CLASS, GROUP_DRIVER);
  });

  after(() => cleanupClaimDisks());

  it("cuts a VM's two claims in one group snapshot at one instant, another VM's claim alone, byte for byte", async () => {
    const env = await backupEnv("claims-group");
    const group = { provisionedBy: GROUP_DRIVER };
    const vms: VmFixture[] = [
      {
        name: "grp",
        node: "node-a",
        claimDisks: [
          { source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 2 * MiB + 3, ...group },
          { source: "dataVolume", volumeMode: "Block", size: 3 * MiB, content: "mixed", ...group },
        ],
      },
      {
        name: "single",
        node: "node-a",
        claimDisks: [
          {
            source: "persistentVolumeClaim",
            volumeMode: "Filesystem",
            size: 1 * MiB,
            provisionedBy: CSI_DOUBLE_DRIVER,
          },
        ],
      },
    ];
    const operator = await startOperator();
    const double = await csiDouble();
    const snapshotsBefore = double.snapshots.length;
    const groupsBefore = double.groupSnapshots.length;
    try {
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      for (const vm of vms)
        for (const d of claimDisksOf(env.namespace, vm.name))
          await waitForBound(adminClient(), env.namespace, d.claimName);
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "grp", { snapshot: { method: "Auto" } }),
      );
      const fb = await backupFinished(env.namespace, "grp", 240_000);
      const steps = (
        await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
          namespace: env.namespace,
          labelSelector: "fedbackup.io/backup=grp",
        })
      ).items.filter((s) => s.spec.node);
      const report = steps.map((s) => JSON.stringify(s.status)).join("\n");
      assert.equal(fb.status?.phase, "Completed", `${JSON.stringify(fb.status, null, 1)}\n${report}`);
      assert.equal(steps.length, 1, report);
      const step = steps[0]!;

      // The step's spec: grp's claims are groupSnapshot with the group class; single's are not.
      const claims = (step.spec.workloads ?? []).flatMap((w) => (w.claims ?? []).map((c) => [w.name, c] as const));
      assert.deepEqual(
        claims
          .map(([vm, c]) => [vm, c.snapshotMethod, c.groupSnapshot ?? false, c.volumeGroupSnapshotClassName])
          .sort(),
        [
          ["grp", "CSI", true, GROUP_CLASS],
          ["grp", "CSI", true, GROUP_CLASS],
          ["single", "CSI", false, undefined],
        ].sort(),
      );

      // One VolumeGroupSnapshot, of grp's two claims; single's claim by a VolumeSnapshot of its own.
      const groups = double.groupSnapshots.slice(groupsBefore).filter((g) => g.namespace === env.namespace);
      const grpClaims = claimDisksOf(env.namespace, "grp")
        .map((d) => d.claimName)
        .sort();
      assert.deepEqual(
        groups.map((g) => [g.name, g.members.map((m) => m.sourceClaim).sort()]),
        [[groupSnapshotName(step.metadata.name!, { namespace: env.namespace, name: "grp" }), grpClaims]],
      );
      const taken = double.snapshots.slice(snapshotsBefore).filter((s) => s.namespace === env.namespace);
      assert.equal(taken.length, 3);
      const members = taken.filter((s) => grpClaims.includes(s.sourceClaim));
      assert.equal(new Set(members.map((m) => m.at)).size, 1, "grp's disks are cut at one instant");
      const recorded = step.status?.claimSnapshots ?? [];
      assert.deepEqual(
        recorded.map((c) => c.claimName).sort(),
        [...grpClaims, ...claimDisksOf(env.namespace, "single").map((d) => d.claimName)].sort(),
      );
      const grpTimes = new Set(recorded.filter((c) => c.name === "grp").map((c) => c.creationTime));
      assert.equal(grpTimes.size, 1, "both of grp's snapshots have one creationTime");
      assert.deepEqual(
        recorded
          .filter((c) => c.name === "grp")
          .map((c) => c.volumeSnapshot)
          .sort(),
        groups[0]!.members.map((m) => m.name).sort(),
      );

      // Nothing left: no group snapshot, no snapshot, no restored claim, no group label on a claim.
      assert.equal(step.status?.volumeSnapshot?.released, true);
      const left = async (type: typeof Resources.VolumeSnapshot) =>
        (await adminClient().list(type, { namespace: env.namespace })).items.map((o) => o.metadata.name);
      assert.deepEqual(await left(Resources.VolumeGroupSnapshot), [], "no VolumeGroupSnapshot left");
      assert.deepEqual(await left(Resources.VolumeSnapshot), [], "no VolumeSnapshot left");
      const pvcs = (await adminClient().list(Resources.PersistentVolumeClaim, { namespace: env.namespace })).items;
      assert.deepEqual(
        await claimsLeftAfterRelease(env.namespace, (n) => n.endsWith("-restore")),
        [],
        "no restored claim left",
      );
      assert.deepEqual(
        pvcs.filter((c) => c.metadata.labels?.[GROUP_SNAPSHOT_LABEL]).map((c) => c.metadata.name),
        [],
        "no claim keeps the group label",
      );
      const restores = double.restores.filter((r) => r.namespace === env.namespace);
      assert.equal(restores.length, 3);
      assert.ok(
        restores.every((r) => r.deleted),
        "every restored volume is gone",
      );

      // Every byte at the location equals its source.
      const backupDir = path.join(env.location.hostDir, fb.status.backupPath!);
      for (const vm of vms) {
        const manifest = await readWorkloadManifest(backupDir, env.namespace, vm.name);
        assert.equal(manifest.method, "CSI", vm.name);
        for (const disk of claimDisksOf(env.namespace, vm.name)) {
          const source = readFileSync(disk.path);
          if (disk.volumeMode === "Filesystem") {
            const copy = readFileSync(
              path.join(backupDir, backupFilesystemDiskPath(env.namespace, vm.name, disk.volumeName)),
            );
            assert.ok(copy.equals(source), `${vm.name}/${disk.volumeName} (Filesystem claim) differs`);
          } else {
            const entry = manifest.blockDisks!.find((d) => d.name === disk.volumeName)!;
            const data = readFileSync(
              path.join(backupDir, backupBlockDiskPath(env.namespace, vm.name, disk.volumeName)),
            );
            assert.ok(reassemble(data, entry).equals(source), `${vm.name}/${disk.volumeName} (Block claim) differs`);
          }
        }
      }
    } finally {
      await operator.stop();
      await cleanupClaimDisks(env.namespace);
      env.cleanup();
    }
  });
});
