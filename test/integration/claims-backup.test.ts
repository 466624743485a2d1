// Backups of VMs whose disks are PersistentVolumeClaims and DataVolumes, Filesystem and Block mode, beside
// hostDisk VMs: the operator plans their claims, the node Job mounts them (Block ones as devices at their
// devicePath, by the pod runner on real loop devices), the agent copies them under freeze with their sha256
// and records Block devices' zero runs as holes. Every stored byte is compared in full with its source.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { backupBlockDiskPath, backupFilesystemDiskPath, readWorkloadManifest } from "../../src/agent/manifest.js";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { loopDevicesUsable, waitForBound } from "../harness/block-volumes.js";
import { claimDisksOf, cleanupClaimDisks, createVm, diskPaths, migrateVm } from "../harness/workloads.js";
import { BackupObserver } from "./backup-observer.js";
import { tenVmsOnThreeNodes } from "./claim-vms.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  creatorPoliciesSettled,
  kubevirtDouble,
  podRunner,
  startOperator,
} from "./operator-env.js";
import { freshNamespace } from "./setup.js";
import { reassemble } from "./stored-disks.js";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("FederatedBackup of VMs on claims and DataVolumes (Filesystem and Block)", function () {
  this.timeout(300_000);

  before(async function () {
    if (loopDevicesUsable() !== true) this.skip();
    await kubevirtDouble();
    await podRunner();
    // The backup names another namespace: its creator must be trusted.
    await creatorPoliciesSettled();
  });

  after(() => cleanupClaimDisks());

  // With Auto and neither a VolumeSnapshotClass nor a reflink annotation for these claims, each is copied:
  // the same captures as Copy names, chosen by Auto (and the hostDisk files cut as Auto picks for the volume).
  // The Auto run repeats the Copy run's scenario, so it is a long one (make test-long); make test runs Copy.
  for (const method of ["Copy", "Auto"] as const) {
    const tag = method === "Auto" ? "[long] " : "";
    // Copy as asked, or as Auto picked it and says why.
    const assertCopied = (entry: { method?: string; why?: string }) => {
      assert.equal(entry.method, "Copy");
      if (method === "Auto") assert.match(entry.why ?? "", /^Auto picked Copy/);
    };
    it(`${tag}with ${method}: captures hostDisk, Filesystem- and Block-claim VMs on 3 nodes, one migrating mid-backup, byte for byte`, async () => {
      const env = await backupEnv(`claims-${method.toLowerCase()}`);
      const vms = tenVmsOnThreeNodes();
      const other = await freshNamespace("claims-other");
      const observer = new BackupObserver([env.namespace], async (job, event) => {
        // node-c goes first (most VMs), node-b last: fs-2 (on a ReadWriteMany DataVolume) moves from node-b to
        // node-c once node-c's step is over, so round 2 captures it there.
        if (job.node === "node-c" && event === "finished" && job.name.includes("-r1-"))
          await migrateVm(adminClient(), env.namespace, "fs-2", "node-b", "node-c");
      });
      await observer.start();
      const operator = await startOperator();
      try {
        for (const vm of vms) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
        // A VM of another namespace on a claim of its own, and one naming a claim that does not exist.
        await createVm(adminClient(), other, env.shared.hostDir, {
          name: "elsewhere",
          node: "node-b",
          claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 64 * KiB }],
        });
        await adminClient().create(Resources.VirtualMachineInstance, {
          apiVersion: "kubevirt.io/v1",
          kind: "VirtualMachineInstance",
          metadata: { name: "dangling", namespace: env.namespace, labels: { "kubevirt.io/nodeName": "node-b" } },
          spec: { volumes: [{ name: "disk0", persistentVolumeClaim: { claimName: "no-such-claim" } }] },
          status: { phase: "Running", nodeName: "node-b" },
        } as KubeObject);

        // The claims are Bound before the backup starts (one still Pending would be ClaimNotBound in round 1).
        for (const vm of vms)
          for (const d of claimDisksOf(env.namespace, vm.name))
            await waitForBound(adminClient(), env.namespace, d.claimName);
        await adminClient().create(
          Resources.FederatedBackup,
          backupManifest(env, "claims", {
            workloads: { namespaces: [env.namespace, other] },
            snapshot: { method },
          }),
        );
        const fb = await backupFinished(env.namespace, "claims", 240_000);
        assert.equal(fb.status?.phase, "PartiallyFailed", JSON.stringify(fb.status, null, 1));
        assert.deepEqual((fb.status?.missing ?? []).map((m) => [m.name, m.reason]).sort(), [
          ["dangling", "ClaimNotFound"],
          ["elsewhere", "ClaimInOtherNamespace"],
        ]);
        assert.equal(fb.status?.progress?.workloadsCaptured, vms.length);
        assert.deepEqual(observer.overlaps, [], "one node at a time");

        // fs-2 was captured in round 2, on node-c, exactly once.
        const steps = (
          await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
            namespace: env.namespace,
            labelSelector: "fedbackup.io/backup=claims",
          })
        ).items;
        const round2 = steps.filter((s) => s.spec.round === 2 && s.spec.node);
        const report = steps.map(
          (s) =>
            `${s.metadata.name} ${s.status?.phase} ${s.status?.message ?? ""} captured=${(s.status?.captured ?? []).map((c) => c.name).join(",")}`,
        );
        const failures = [
          ...report,
          ...steps.flatMap((s) =>
            (s.status?.failed ?? []).map((f) => `${s.metadata.name}: ${f.name} ${f.reason} ${f.message}`),
          ),
        ];
        assert.deepEqual(
          round2.map((s) => [s.spec.node, (s.spec.workloads ?? []).map((w) => w.name)]),
          [["node-c", ["fs-2"]]],
          failures.join("\n"),
        );
        const captures = steps.flatMap((s) => s.status?.captured ?? []).map((c) => c.name);
        assert.deepEqual(
          captures.filter((n) => n === "fs-2"),
          ["fs-2"],
        );
        // The step lists each VM's claims with their mode.
        const blk2 = steps.flatMap((s) => s.spec.workloads ?? []).find((w) => w.name === "blk-2");
        assert.deepEqual(
          blk2?.claims?.map((c) => [c.volume, c.claimName, c.sourceKind, c.volumeMode]),
          [
            ["disk0", "blk-2-disk0", "PersistentVolumeClaim", "Block"],
            ["disk1", "blk-2-disk1", "DataVolume", "Block"],
          ],
        );

        // Every byte at the location equals its source: files, Filesystem claims' disk.img, Block devices.
        const backupDir = path.join(env.location.hostDir, fb.status.backupPath!);
        for (const vm of vms) {
          const manifest = await readWorkloadManifest(backupDir, env.namespace, vm.name);
          for (const rel of diskPaths(env.namespace, vm)) {
            const copy = readFileSync(path.join(backupDir, env.namespace, vm.name, "files", rel));
            assert.ok(copy.equals(readFileSync(path.join(env.shared.hostDir, rel))), `${rel} differs`);
          }
          for (const disk of claimDisksOf(env.namespace, vm.name)) {
            const source = readFileSync(disk.path);
            if (disk.volumeMode === "Filesystem") {
              const entry = manifest.filesystemDisks?.find((d) => d.name === disk.volumeName);
              assert.ok(entry, `${vm.name}/${disk.volumeName} in the manifest`);
              assert.equal(entry.source.claimName, disk.claimName);
              assertCopied(entry);
              assert.equal(entry.bytes, disk.size);
              const copy = readFileSync(
                path.join(backupDir, backupFilesystemDiskPath(env.namespace, vm.name, disk.volumeName)),
              );
              assert.ok(copy.equals(source), `${vm.name}/${disk.volumeName} (Filesystem claim) differs`);
            } else {
              const entry = manifest.blockDisks?.find((d) => d.name === disk.volumeName);
              assert.ok(entry, `${vm.name}/${disk.volumeName} in the manifest`);
              assert.equal(entry.source.claimName, disk.claimName);
              assertCopied(entry);
              assert.equal(entry.source.kind, disk.source === "dataVolume" ? "DataVolume" : "PersistentVolumeClaim");
              assert.equal(entry.bytes, disk.size);
              const data = readFileSync(
                path.join(backupDir, backupBlockDiskPath(env.namespace, vm.name, disk.volumeName)),
              );
              assert.ok(reassemble(data, entry).equals(source), `${vm.name}/${disk.volumeName} (Block claim) differs`);
            }
          }
        }
        // Zero runs of a device are holes, not stored: blk-3 is all zeros, blk-1 half.
        const blk3 = await readWorkloadManifest(backupDir, env.namespace, "blk-3");
        assert.equal(blk3.blockDisks?.[0]?.storedBytes, 0);
        const blk1 = await readWorkloadManifest(backupDir, env.namespace, "blk-1");
        assert.ok((blk1.blockDisks?.[0]?.storedBytes ?? Infinity) < 4 * MiB, "a mostly empty device is stored smaller");
        assert.ok((blk1.blockDisks?.[0]?.holes.length ?? 0) > 0);
      } finally {
        await operator.stop();
        await observer.stop();
        await cleanupClaimDisks(env.namespace);
        await cleanupClaimDisks(other);
        env.cleanup();
      }
    });
  }
});
