// Backups of VMs on claims with the CSI method per claim: Auto picks CSI for every claim whose PV's CSI
// driver has a VolumeSnapshotClass (the CSI double's), Filesystem and Block mode, PersistentVolumeClaims and
// DataVolumes. The step's Job takes one VolumeSnapshot per claim while the VM is frozen; the operator
// restores each into a claim, the extract Job reads them where the claims would be, and both are deleted
// after. Claims Auto cannot cut with CSI (no CSI driver, or a VM that also has hostDisk files) are copied
// under freeze in the same step. Every stored byte is compared in full with its source.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { backupBlockDiskPath, backupFilesystemDiskPath, readWorkloadManifest } from "../../src/agent/manifest.js";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { loopDevicesUsable, waitForBound } from "../harness/block-volumes.js";
import { CSI_DOUBLE_DRIVER } from "../harness/csi-double.js";
import {
  claimDisksOf,
  cleanupClaimDisks,
  createVm,
  diskPaths,
  migrateVm,
  type VmFixture,
} from "../harness/workloads.js";
import { BackupObserver } from "./backup-observer.js";
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
import { reassemble } from "./stored-disks.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const CLASS = "fedbackup-test-claims";
const csi = { provisionedBy: CSI_DOUBLE_DRIVER };

describe("FederatedBackup of VMs on claims, CSI per claim (Auto)", function () {
  this.timeout(300_000);

  before(async function () {
    if (loopDevicesUsable() !== true) this.skip();
    await kubevirtDouble();
    await podRunner();
    await (await csiDouble()).ensureClass(CLASS);
  });

  after(() => cleanupClaimDisks());

  // Seven VMs on two nodes, one migrating: a long scenario (make test-long). make test's short form of CSI
  // claims is the next test (CSI named: Filesystem and Block claims, a PersistentVolumeClaim and a DataVolume).
  it("[long] cuts every claim of a CSI driver with a class by a VolumeSnapshot, copies the others, byte for byte", async () => {
    const env = await backupEnv("claims-csi");
    const vms: VmFixture[] = [
      // ReadWriteMany: it migrates to node-b once node-b's step is over, so round 2 captures it there.
      {
        name: "fs-1",
        node: "node-a",
        claimDisks: [
          {
            source: "persistentVolumeClaim",
            volumeMode: "Filesystem",
            size: 3 * MiB + 5,
            accessModes: ["ReadWriteMany"],
            ...csi,
          },
        ],
      },
      {
        name: "blk-1",
        node: "node-a",
        claimDisks: [
          { source: "dataVolume", volumeMode: "Block", size: 4 * MiB, content: "mixed", ...csi },
          { source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 1 * MiB, ...csi },
        ],
      },
      {
        name: "blk-2",
        node: "node-b",
        claimDisks: [
          { source: "persistentVolumeClaim", volumeMode: "Block", size: 2 * MiB, content: "random", ...csi },
        ],
      },
      {
        name: "fs-2",
        node: "node-b",
        claimDisks: [{ source: "dataVolume", volumeMode: "Filesystem", size: 2 * MiB, ...csi }],
      },
      // Not on a CSI volume: copied under freeze.
      {
        name: "plain",
        node: "node-b",
        claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 512 * KiB }],
      },
      // A CSI claim beside a hostDisk file: the VM's disks are cut in one window, so copied.
      {
        name: "mixed",
        node: "node-a",
        disks: [128 * KiB],
        claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Block", size: 1 * MiB, content: "mixed", ...csi }],
      },
      { name: "host", node: "node-b" },
    ];
    const csiVms = new Set(["fs-1", "blk-1", "blk-2", "fs-2"]);
    // node-b (4 VMs) goes first, node-a (3) second.
    const observer = new BackupObserver([env.namespace], async (job, event) => {
      if (job.node === "node-b" && event === "finished" && job.name.endsWith("-extract") && job.name.includes("-r1-"))
        await migrateVm(adminClient(), env.namespace, "fs-1", "node-a", "node-b");
    });
    await observer.start();
    const operator = await startOperator();
    const double = await csiDouble();
    const snapshotsBefore = double.snapshots.length;
    try {
      for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      for (const vm of vms)
        for (const d of claimDisksOf(env.namespace, vm.name))
          await waitForBound(adminClient(), env.namespace, d.claimName);
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "csi", { snapshot: { method: "Auto" } }),
      );
      const listSteps = async () =>
        (
          await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
            namespace: env.namespace,
            labelSelector: "fedbackup.io/backup=csi",
          })
        ).items;
      const fb = await backupFinished(env.namespace, "csi", 240_000).catch(async (err: unknown) => {
        const steps = await listSteps();
        throw new Error(`${String(err)}\n${steps.map((s) => JSON.stringify(s.status)).join("\n")}`);
      });
      const steps = await listSteps();
      const report = steps.map((s) => `${s.metadata.name} ${s.status?.phase} ${JSON.stringify(s.status)}`).join("\n");
      assert.equal(fb.status?.phase, "Completed", `${JSON.stringify(fb.status, null, 1)}\n${report}`);
      assert.equal(fb.status?.progress?.workloadsCaptured, vms.length);
      assert.deepEqual(observer.overlaps, [], "one node at a time");
      // fs-1 moved mid-backup: round 2 cut its claim with CSI on node-b, and it was captured once.
      assert.deepEqual(
        steps
          .filter((s) => s.spec.round === 2 && s.spec.node)
          .map((s) => [s.spec.node, (s.spec.workloads ?? []).map((w) => w.name), s.status?.claimSnapshots?.length]),
        [["node-b", ["fs-1"], 1]],
        report,
      );
      assert.deepEqual(steps.flatMap((s) => s.status?.captured ?? []).filter((c) => c.name === "fs-1").length, 1);

      // The step's spec says what Auto picked for each claim, and why.
      const claims = new Map(
        steps.flatMap((s) =>
          (s.spec.workloads ?? []).flatMap((w) => (w.claims ?? []).map((c) => [w.name, c] as const)),
        ),
      );
      for (const [vm, claim] of claims) {
        if (csiVms.has(vm)) {
          assert.equal(claim.snapshotMethod, "CSI", `${vm}/${claim.claimName}`);
          assert.equal(claim.why, `Auto picked CSI: a VolumeSnapshotClass exists for driver ${CSI_DOUBLE_DRIVER}`);
          assert.equal(claim.volumeSnapshotClassName, CLASS);
        } else assert.equal(claim.snapshotMethod, "Copy", `${vm}/${claim.claimName}`);
      }
      assert.match(claims.get("plain")?.why ?? "", /^Auto picked Copy: it is not on a CSI volume/);
      // And one Event says it for the run.
      const events = await adminClient().list<KubeObject & { reason?: string; note?: string }>(Resources.Event, {
        namespace: env.namespace,
      });
      const picked = events.items.find((e) => e.reason === "ClaimSnapshotMethods")?.note ?? "";
      assert.match(picked, /^5 claims by CSI \(Auto picked CSI: a VolumeSnapshotClass exists for driver /, picked);
      assert.match(picked, /1 claim by Copy \(Auto picked Copy: it is not on a CSI volume/, picked);
      assert.match(claims.get("mixed")?.why ?? "", /also has disk files on the shared volume/);

      // One VolumeSnapshot per CSI claim, of that claim; each recorded in its step, then released.
      const taken = double.snapshots.slice(snapshotsBefore).filter((s) => s.namespace === env.namespace);
      const csiClaims = vms
        .filter((vm) => csiVms.has(vm.name))
        .flatMap((vm) => claimDisksOf(env.namespace, vm.name).map((d) => d.claimName))
        .sort();
      assert.deepEqual(taken.map((s) => s.sourceClaim).sort(), csiClaims);
      assert.deepEqual(
        steps.flatMap((s) => (s.status?.claimSnapshots ?? []).map((c) => c.claimName)).sort(),
        csiClaims,
      );
      for (const step of steps.filter((s) => s.status?.claimSnapshots?.length)) {
        assert.equal(step.status?.volumeSnapshot?.released, true);
        assert.equal(step.status?.volumeSnapshot?.name, undefined, "the shared claim is not snapshotted");
        for (const w of step.status?.volumeSnapshot?.workloads ?? []) assert.ok(csiVms.has(w.name));
      }
      const leftSnapshots = await adminClient().list(Resources.VolumeSnapshot, { namespace: env.namespace });
      assert.deepEqual(
        leftSnapshots.items.map((s) => s.metadata.name),
        [],
        "no VolumeSnapshot left",
      );
      assert.deepEqual(
        await claimsLeftAfterRelease(env.namespace, (n) => n.endsWith("-restore")),
        [],
        "no restored claim left",
      );
      const restores = double.restores.filter((r) => r.namespace === env.namespace);
      assert.equal(restores.length, csiClaims.length);
      assert.ok(
        restores.every((r) => r.deleted),
        "every restored volume is gone",
      );

      // Every byte at the location equals its source; each claim disk says how it was cut.
      const backupDir = path.join(env.location.hostDir, fb.status.backupPath!);
      for (const vm of vms) {
        const manifest = await readWorkloadManifest(backupDir, env.namespace, vm.name);
        assert.equal(manifest.method, csiVms.has(vm.name) ? "CSI" : "Copy", vm.name);
        for (const rel of diskPaths(env.namespace, vm)) {
          const copy = readFileSync(path.join(backupDir, env.namespace, vm.name, "files", rel));
          assert.ok(copy.equals(readFileSync(path.join(env.shared.hostDir, rel))), `${rel} differs`);
        }
        for (const disk of claimDisksOf(env.namespace, vm.name)) {
          const source = readFileSync(disk.path);
          const entry =
            disk.volumeMode === "Filesystem"
              ? manifest.filesystemDisks?.find((d) => d.name === disk.volumeName)
              : manifest.blockDisks?.find((d) => d.name === disk.volumeName);
          assert.ok(entry, `${vm.name}/${disk.volumeName} in the manifest`);
          assert.equal(entry.source.claimName, disk.claimName);
          assert.equal(entry.bytes, disk.size);
          assert.equal(entry.method, csiVms.has(vm.name) ? "CSI" : "Copy", `${vm.name}/${disk.volumeName}`);
          assert.ok(entry.why, `${vm.name}/${disk.volumeName} says why`);
          if (disk.volumeMode === "Filesystem") {
            const copy = readFileSync(
              path.join(backupDir, backupFilesystemDiskPath(env.namespace, vm.name, disk.volumeName)),
            );
            assert.ok(copy.equals(source), `${vm.name}/${disk.volumeName} (Filesystem claim) differs`);
          } else {
            const data = readFileSync(
              path.join(backupDir, backupBlockDiskPath(env.namespace, vm.name, disk.volumeName)),
            );
            const blockEntry = manifest.blockDisks!.find((d) => d.name === disk.volumeName)!;
            assert.ok(
              reassemble(data, blockEntry).equals(source),
              `${vm.name}/${disk.volumeName} (Block claim) differs`,
            );
          }
        }
      }
    } finally {
      await operator.stop();
      await observer.stop();
      await cleanupClaimDisks(env.namespace);
      env.cleanup();
    }
  });

  it("with CSI named: the shared volume and the claims cut in one freeze; a claim of no CSI driver is VolumeSnapshotClassNotFound", async () => {
    const env = await backupEnv("claims-csi-named");
    const vms: VmFixture[] = [
      {
        name: "both",
        node: "node-a",
        disks: [192 * KiB],
        claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 1 * MiB + 7, ...csi }],
      },
      {
        name: "blk",
        node: "node-a",
        claimDisks: [{ source: "dataVolume", volumeMode: "Block", size: 2 * MiB, content: "mixed", ...csi }],
      },
      { name: "host", node: "node-a" },
    ];
    const nocsi: VmFixture = {
      name: "nocsi",
      node: "node-a",
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 256 * KiB }],
    };
    const operator = await startOperator();
    const double = await csiDouble();
    try {
      for (const vm of [...vms, nocsi]) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      for (const vm of [...vms, nocsi])
        for (const d of claimDisksOf(env.namespace, vm.name))
          await waitForBound(adminClient(), env.namespace, d.claimName);
      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "named", { snapshot: { method: "CSI", volumeSnapshotClassName: CLASS } }),
      );
      const fb = await backupFinished(env.namespace, "named", 240_000);
      assert.equal(fb.status?.phase, "PartiallyFailed", JSON.stringify(fb.status, null, 1));
      const missing = fb.status?.missing ?? [];
      assert.deepEqual(
        missing.map((m) => [m.name, m.reason]),
        [["nocsi", "VolumeSnapshotClassNotFound"]],
      );
      assert.match(missing[0]?.message ?? "", /claim nocsi-disk0 is not on a CSI volume/);
      const steps = (
        await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
          namespace: env.namespace,
          labelSelector: "fedbackup.io/backup=named",
        })
      ).items.filter((s) => s.spec.node);
      assert.equal(steps.length, 1);
      const step = steps[0]!;
      // One VolumeSnapshot of the shared claim and one per claim, all cut while the VMs were frozen.
      assert.equal(step.status?.volumeSnapshot?.name, step.metadata.name);
      assert.deepEqual((step.status?.claimSnapshots ?? []).map((c) => c.claimName).sort(), ["blk-disk0", "both-disk1"]);
      const taken = double.snapshots.filter((s) => s.namespace === env.namespace).map((s) => s.sourceClaim);
      assert.deepEqual(taken.sort(), ["blk-disk0", "both-disk1", env.shared.claimName].sort());
      assert.equal(step.status?.volumeSnapshot?.released, true);
      const left = await adminClient().list(Resources.VolumeSnapshot, { namespace: env.namespace });
      assert.deepEqual(
        left.items.map((s) => s.metadata.name),
        [],
      );
      assert.deepEqual(
        await claimsLeftAfterRelease(env.namespace, (n) => n.endsWith("-restore") || n.endsWith("-snapshot")),
        [],
      );

      const backupDir = path.join(env.location.hostDir, fb.status.backupPath!);
      for (const vm of vms) {
        const manifest = await readWorkloadManifest(backupDir, env.namespace, vm.name);
        assert.equal(manifest.method, "CSI", vm.name);
        for (const rel of diskPaths(env.namespace, vm)) {
          const copy = readFileSync(path.join(backupDir, env.namespace, vm.name, "files", rel));
          assert.ok(copy.equals(readFileSync(path.join(env.shared.hostDir, rel))), `${rel} differs`);
        }
        for (const disk of claimDisksOf(env.namespace, vm.name)) {
          const source = readFileSync(disk.path);
          if (disk.volumeMode === "Filesystem") {
            const entry = manifest.filesystemDisks?.find((d) => d.name === disk.volumeName);
            assert.equal(entry?.method, "CSI");
            assert.equal(entry?.why, "CSI, as spec.snapshot.method asks");
            const copy = readFileSync(
              path.join(backupDir, backupFilesystemDiskPath(env.namespace, vm.name, disk.volumeName)),
            );
            assert.ok(copy.equals(source), `${vm.name}/${disk.volumeName} differs`);
          } else {
            const entry = manifest.blockDisks!.find((d) => d.name === disk.volumeName)!;
            assert.equal(entry.method, "CSI");
            const data = readFileSync(
              path.join(backupDir, backupBlockDiskPath(env.namespace, vm.name, disk.volumeName)),
            );
            assert.ok(reassemble(data, entry).equals(source), `${vm.name}/${disk.volumeName} differs`);
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
