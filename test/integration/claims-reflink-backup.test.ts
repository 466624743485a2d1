// Backups of VMs on Filesystem-mode claims cut with Reflink: the claim's PersistentVolume is a directory on
// a loop-mounted XFS filesystem (reflink=1). The step's Job mounts the claim read-write, clones its disk.img
// into the claim's root while the VM is frozen, extracts the clone after the thaw and removes it. A claim on
// a filesystem that cannot clone (the ordinary temporary directory, ext4 or tmpfs) fails its VM with
// ReflinkNotSupported, the VM thawed. Auto picks Reflink only for a claim whose PV the user annotated
// fedbackup.io/reflink: "true". Every stored byte is compared in full with its source.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { backupFilesystemDiskPath, readWorkloadManifest } from "../../src/agent/manifest.js";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { waitForBound } from "../harness/block-volumes.js";
import { createVolume } from "../harness/workloads.js";
import { xfsImage, type XfsImage } from "../harness/xfs.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  kubevirtDouble,
  podRunner,
  startOperator,
} from "./operator-env.js";

const MiB = 1024 * 1024;
const XFS_MAGIC = 0x58465342;
const BTRFS_MAGIC = 0x9123683e;

/** A claim of its own whose PV is `dir`, holding a disk.img of random bytes; returns the image's content. */
async function claimOn(namespace: string, claimName: string, dir: string, size: number): Promise<Buffer> {
  mkdirSync(dir, { recursive: true });
  const content = randomBytes(size);
  writeFileSync(path.join(dir, "disk.img"), content);
  await createVolume(adminClient(), namespace, claimName, dir, { accessModes: ["ReadWriteOnce"], capacity: size });
  await waitForBound(adminClient(), namespace, claimName);
  return content;
}

async function vmOn(namespace: string, name: string, node: string, claimName: string): Promise<void> {
  await adminClient().create(Resources.VirtualMachineInstance, {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachineInstance",
    metadata: { name, namespace, labels: { app: "demo", "kubevirt.io/nodeName": node } },
    spec: {
      domain: { devices: { disks: [{ name: "disk0", disk: { bus: "virtio" } }] } },
      volumes: [{ name: "disk0", persistentVolumeClaim: { claimName } }],
    },
    status: { phase: "Running", nodeName: node },
  } as KubeObject);
}

describe("FederatedBackup of VMs on Filesystem-mode claims cut with Reflink", function () {
  this.timeout(300_000);
  let xfs: XfsImage | undefined;
  let mnt: string;
  let unmount: (() => void) | undefined;
  let scratch: string;

  before(async function () {
    const image = xfsImage();
    if (typeof image === "string") {
      console.log(`      (skipped: ${image})`);
      this.skip();
    }
    xfs = image;
    scratch = mkdtempSync(path.join(os.tmpdir(), "fedbackup-claims-reflink-"));
    const type = statfsSync(scratch).type;
    if (type === XFS_MAGIC || type === BTRFS_MAGIC) {
      console.log("      (skipped: the temporary directory's filesystem clones files, so no claim can fail to)");
      this.skip();
    }
    mnt = path.join(scratch, "xfs");
    mkdirSync(mnt);
    unmount = xfs.mount(mnt);
    await kubevirtDouble();
    await podRunner();
  });

  after(() => {
    unmount?.();
    xfs?.cleanup();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("explicit Reflink clones a claim on XFS byte for byte and removes the clone; on ext4/tmpfs the VM is ReflinkNotSupported, thawed", async () => {
    const env = await backupEnv("claims-reflink");
    const operator = await startOperator();
    try {
      const onXfs = path.join(mnt, `${env.namespace}-ra`);
      const onOther = path.join(scratch, `${env.namespace}-rb`);
      const ra = await claimOn(env.namespace, "ra-disk0", onXfs, 6 * MiB + 7);
      await claimOn(env.namespace, "rb-disk0", onOther, 2 * MiB);
      await vmOn(env.namespace, "ra", "node-a", "ra-disk0");
      await vmOn(env.namespace, "rb", "node-a", "rb-disk0");

      await adminClient().create(
        Resources.FederatedBackup,
        backupManifest(env, "reflink", { snapshot: { method: "Reflink" } }),
      );
      const fb = await backupFinished(env.namespace, "reflink", 240_000);
      assert.equal(fb.status?.phase, "PartiallyFailed", JSON.stringify(fb.status, null, 1));
      const missing = fb.status?.missing ?? [];
      assert.deepEqual(
        missing.map((m) => [m.name, m.reason]),
        [["rb", "ReflinkNotSupported"]],
      );

      // The step says which claim and why: the filesystem refused the clone.
      const steps = (
        await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
          namespace: env.namespace,
          labelSelector: "fedbackup.io/backup=reflink",
        })
      ).items;
      const failed = steps.flatMap((st) => st.status?.failed ?? []).filter((f) => f.name === "rb");
      assert.ok(failed.length > 0);
      for (const f of failed) {
        assert.equal(f.reason, "ReflinkNotSupported");
        assert.match(
          f.message ?? "",
          /claim rb-disk0 .*does not support reflink clones \((EOPNOTSUPP|ENOTSUP|EINVAL)\)/,
        );
      }

      // ra: the disk at the location equals its source in full, the manifest says Reflink, no clone is left.
      const backupDir = path.join(env.location.hostDir, fb.status.backupPath!);
      const manifest = await readWorkloadManifest(backupDir, env.namespace, "ra");
      assert.deepEqual(
        manifest.filesystemDisks?.map((d) => [d.name, d.source.claimName, d.method, d.why, d.bytes]),
        [["disk0", "ra-disk0", "Reflink", "Reflink, as spec.snapshot.method asks", ra.length]],
      );
      const stored = readFileSync(path.join(backupDir, backupFilesystemDiskPath(env.namespace, "ra", "disk0")));
      assert.ok(stored.equals(ra), "ra's claim at the location differs from its disk.img");
      assert.deepEqual(readdirSync(onXfs), ["disk.img"]);
      assert.deepEqual(readdirSync(onOther), ["disk.img"]);

      // rb was frozen for its clone, and thawed after each failed one (a later round tries it again).
      const calls = (await kubevirtDouble()).callsFor(env.namespace, "rb").map((c) => c.op);
      assert.ok(calls.length >= 2, calls.join(","));
      assert.deepEqual(
        calls,
        calls.map((_, i) => (i % 2 === 0 ? "freeze" : "unfreeze")),
      );
      const vmi = await adminClient().get<KubeObject & { status?: { fsFreezeStatus?: string | null } }>(
        Resources.VirtualMachineInstance,
        env.namespace,
        "rb",
      );
      assert.notEqual(vmi.status?.fsFreezeStatus, "frozen");
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });

  it("Auto picks Reflink for a claim whose PV is annotated fedbackup.io/reflink true, Copy for one without", async () => {
    const env = await backupEnv("claims-reflink-auto");
    const operator = await startOperator();
    try {
      const onXfs = path.join(mnt, `${env.namespace}-aa`);
      const aa = await claimOn(env.namespace, "aa-disk0", onXfs, 3 * MiB + 1);
      const ab = await claimOn(env.namespace, "ab-disk0", path.join(mnt, `${env.namespace}-ab`), 1 * MiB);
      await adminClient().patch(Resources.PersistentVolume, undefined, `${env.namespace}-aa-disk0`, {
        metadata: { annotations: { "fedbackup.io/reflink": "true" } },
      });
      await vmOn(env.namespace, "aa", "node-b", "aa-disk0");
      await vmOn(env.namespace, "ab", "node-b", "ab-disk0");

      await adminClient().create(Resources.FederatedBackup, backupManifest(env, "auto"));
      const fb = await backupFinished(env.namespace, "auto", 240_000);
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
      const backupDir = path.join(env.location.hostDir, fb.status.backupPath!);
      for (const [vm, content, method, why] of [
        ["aa", aa, "Reflink", "Auto picked Reflink: it is not on a CSI volume, and its filesystem supports reflink"],
        [
          "ab",
          ab,
          "Copy",
          "Auto picked Copy: it is not on a CSI volume, and its filesystem's reflink support is unknown",
        ],
      ] as const) {
        const manifest = await readWorkloadManifest(backupDir, env.namespace, vm);
        assert.deepEqual(
          manifest.filesystemDisks?.map((d) => [d.method, d.why]),
          [[method, why]],
        );
        const stored = readFileSync(path.join(backupDir, backupFilesystemDiskPath(env.namespace, vm, "disk0")));
        assert.ok(stored.equals(content), `${vm}'s claim at the location differs from its disk.img`);
      }
      assert.deepEqual(readdirSync(onXfs), ["disk.img"]);
    } finally {
      await operator.stop();
      env.cleanup();
    }
  });
});
