// Restores of VMs whose disks are PersistentVolumeClaims and DataVolumes (Filesystem and Block mode), beside
// hostDisk VMs: the operator lists each VM's claims in its restore step, the Job mounts them read-write
// (Block ones as devices, by the pod runner on real loop devices), and the agent writes them back after the
// whole backup of the VM verified. Every byte of every disk is compared in full, the VMIs are watched
// throughout (never two instances of one VM), and a corrupt Block backup leaves its devices as they were.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { backupBlockDiskPath } from "../../src/agent/manifest.js";
import type { NodeRestore } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { loopDevicesUsable, waitForBound } from "../harness/block-volumes.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import {
  claimDisksOf,
  cleanupClaimDisks,
  createVirtualMachine,
  diskPaths,
  type ClaimDiskFixture,
  type VmFixture,
} from "../harness/workloads.js";
import { tenVmsOnThreeNodes } from "./claim-vms.js";
import { InstanceLog } from "./instance-log.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  kubevirtDouble,
  podRunner,
  startOperator,
  type BackupEnv,
} from "./operator-env.js";
import { restoreAndWait, runningOn } from "./restore-runs.js";

/** Where each disk's bytes are on this machine: hostDisk files on the shared volume, claims' files and devices. */
function diskLocations(env: BackupEnv, vm: VmFixture): string[] {
  return [
    ...diskPaths(env.namespace, vm).map((rel) => path.join(env.shared.hostDir, rel)),
    ...claimDisksOf(env.namespace, vm.name).map((d: ClaimDiskFixture) => d.path),
  ];
}

/** New random bytes over a disk, file or device, keeping its size: what a restore must undo. */
function overwrite(location: string): Buffer {
  const size = readFileSync(location).length;
  const bytes = randomBytes(size);
  // Not writeFileSync: it would truncate a file first, and a device must be written in place.
  const fd = openSync(location, "r+");
  try {
    writeSync(fd, bytes, 0, size, 0);
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/**
 * The scenario at two sizes: the ten VMs of the claim tests on three nodes, a long one (make test-long), and
 * make test's short form, the three VMs of node-b, one of each layout: a hostDisk VM, a Filesystem
 * DataVolume, and blk-2 with a Block claim and a Block DataVolume (the corrupt backup's VM).
 */
const SIZES = [
  { tag: "[long] ", what: "10 VMs of both layouts", vms: tenVmsOnThreeNodes },
  {
    tag: "",
    what: "3 VMs of one node, one of each layout,",
    vms: () => tenVmsOnThreeNodes().filter((vm) => vm.node === "node-b"),
  },
];

describe("WorkloadRestore of VMs on claims and DataVolumes (Filesystem and Block)", function () {
  this.timeout(600_000);

  before(async function () {
    if (loopDevicesUsable() !== true) this.skip();
    await kubevirtDouble();
    await podRunner();
  });

  after(() => cleanupClaimDisks());

  for (const size of SIZES)
    it(`${size.tag}restores ${size.what} where they run, byte for byte; a corrupt Block backup changes nothing`, async () => {
      const env = await backupEnv("claims-restore");
      const vms = size.vms();
      const sim = new SimulatedVmController(adminClient());
      await sim.start();
      const instances = new InstanceLog(env.namespace);
      await instances.start();
      const operator = await startOperator();
      try {
        for (const vm of vms) await createVirtualMachine(adminClient(), env.namespace, env.shared.hostDir, vm);
        for (const vm of vms)
          for (const d of claimDisksOf(env.namespace, vm.name))
            await waitForBound(adminClient(), env.namespace, d.claimName);
        const atBackup = new Map(vms.flatMap((vm) => diskLocations(env, vm)).map((at) => [at, readFileSync(at)]));
        await adminClient().create(
          Resources.FederatedBackup,
          backupManifest(env, "nightly", { snapshot: { method: "Copy" } }),
        );
        const fb = await backupFinished(env.namespace, "nightly", 240_000);
        assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.conditions));

        // Every disk of every VM changes; the restore must put each back as the backup holds it.
        for (const at of atBackup.keys()) overwrite(at);
        const all = await restoreAndWait(env.namespace, "all", {});
        const results = (all.status?.results ?? []).map(
          (r) => `${r.name} ${r.phase} ${r.reason ?? ""} ${r.message ?? ""}`,
        );
        assert.equal(all.status?.phase, "Completed", results.join("\n"));
        assert.equal(all.status?.progress?.restored, `${vms.length}/${vms.length}`);
        for (const [at, bytes] of atBackup)
          assert.ok(readFileSync(at).equals(bytes), `${at} is not the backed-up content`);
        // The steps named each VM's claims, the ones its Job mounted.
        const steps = (
          await adminClient().list<NodeRestore & KubeObject>(Resources.NodeRestore, {
            namespace: env.namespace,
            labelSelector: "fedbackup.io/restore=all",
          })
        ).items;
        const blk2 = steps.flatMap((s) => s.spec.workloads).find((w) => w.name === "blk-2");
        assert.deepEqual(
          blk2?.claims?.map((c) => [c.volume, c.claimName, c.volumeMode]),
          [
            ["disk0", "blk-2-disk0", "Block"],
            ["disk1", "blk-2-disk1", "Block"],
          ],
        );
        assert.equal(steps.flatMap((s) => s.spec.workloads).find((w) => w.name === "host-2")?.claims, undefined);
        for (const vm of vms) await runningOn(env.namespace, vm.name, vm.node!);

        // A corrupt Block backup: blk-2's second device fails its checksum before anything is written, so both
        // its devices keep what they hold now (not the backup's bytes), and the VM runs again.
        const backupDir = path.join(env.location.hostDir, fb.status.backupPath!);
        const dataFile = path.join(backupDir, backupBlockDiskPath(env.namespace, "blk-2", "disk1"));
        const data = readFileSync(dataFile);
        data[data.length >> 1] = data[data.length >> 1]! ^ 0xff;
        writeFileSync(dataFile, data);
        const devices = claimDisksOf(env.namespace, "blk-2").map((d) => d.path);
        const before = devices.map((device) => overwrite(device));
        const corrupt = await restoreAndWait(env.namespace, "corrupt", {
          workloads: [{ namespace: env.namespace, name: "blk-2" }],
        });
        const result = corrupt.status?.results?.find((r) => r.name === "blk-2");
        assert.equal(result?.phase, "Failed", JSON.stringify(corrupt.status?.results));
        assert.equal(result?.reason, "ChecksumMismatch");
        devices.forEach((device, i) => assert.ok(readFileSync(device).equals(before[i]!), `${device} was written`));
        await runningOn(env.namespace, "blk-2", "node-b");
        instances.assertNeverTwo();
      } finally {
        await operator.stop();
        await instances.stop();
        await sim.stop();
        await cleanupClaimDisks(env.namespace);
        env.cleanup();
      }
    });
});
