// The harness for VM disks on claims, against the real control plane: Block-mode PersistentVolumes on loop
// devices bound by the PV binder, the pod runner mapping them at a container's devicePath, the CSI double
// snapshotting and restoring them, and VM fixtures whose disks are claims and DataVolumes.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import {
  createBlockVolume,
  detachAllLoopDevices,
  ensureStorageClass,
  fill,
  loopDevicesUsable,
  sha256Of,
  waitForBound,
  type BlockVolumeFixture,
} from "../harness/block-volumes.js";
import { CSI_DOUBLE_DRIVER } from "../harness/csi-double.js";
import { PodRunner, RUNNER_ANNOTATION } from "../harness/pod-runner.js";
import {
  claimDisksOf,
  cleanupClaimDisks,
  createVirtualMachine,
  createVm,
  createVolume,
  DataVolumeResource,
  type DataVolume,
} from "../harness/workloads.js";
import { adminClient, csiDouble, waitFor } from "./operator-env.js";
import { cluster, freshNamespace } from "./setup.js";

type Pv = KubeObject & {
  spec: {
    volumeMode?: string;
    local?: { path: string };
    hostPath?: { path: string; type?: string };
    nodeAffinity?: unknown;
    accessModes?: string[];
    storageClassName?: string;
  };
};
type Pvc = KubeObject & { spec: { volumeName?: string; volumeMode?: string }; status?: { phase?: string } };
type Pod = KubeObject & { status?: { phase?: string } };

const MiB = 1024 * 1024;
const RUNNER = "block-volumes-test";
const DEVICE_PATH = "/dev/fedbackup-test/disk";
const STORAGE_CLASS = "fedbackup-test-block";
/** A class whose provisioner is the CSI double's driver: it provisions blank claims of it. */
const CSI_CLASS = "fedbackup-test-csi-double";
const WRITER_IMAGE = "fedbackup-test:writer";

/** The loop devices still attached to `file` (also when the file was deleted meanwhile). */
const attachedTo = (file: string): string =>
  execFileSync("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.split(/\s+/)[1] === file)
    .join("\n");

describe("harness: Block-mode claims on loop devices, DataVolumes and VM claim disks", function () {
  const client = () => adminClient();
  let ns: string;
  let sharedDir: string;
  let runner: PodRunner | undefined;
  const volumes: BlockVolumeFixture[] = [];
  /** Backing files of every loop device the tests attached, checked detached at the end. */
  const backingFiles: string[] = [];

  before(async function () {
    const usable = loopDevicesUsable();
    if (usable !== true) this.skip();
    ns = await freshNamespace("block-volumes");
    sharedDir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-block-volumes-"));
    await ensureStorageClass(client(), STORAGE_CLASS);
    // The device's sha256 as the container sees it at its devicePath, and that it is a block device there;
    // WRITER_IMAGE runs the shell script of its args.
    runner = new PodRunner(cluster(), {
      name: RUNNER,
      programFor: (image) => (image === WRITER_IMAGE ? ["sh", "-c"] : ["sh", "-c", 'test -b "$0" && sha256sum "$0"']),
    });
    await runner.start();
  });

  after(async () => {
    await runner?.stop();
    for (const v of volumes) await v.cleanup().catch((err: unknown) => console.error(err));
    if (ns) await cleanupClaimDisks(ns).catch((err: unknown) => console.error(err));
    detachAllLoopDevices();
    if (sharedDir) rmSync(sharedDir, { recursive: true, force: true });
  });

  /** The pod once it has ended; on a timeout, what the runner knows of it. */
  async function podEnded(name: string): Promise<Pod> {
    return waitFor("the pod to end", 30_000, async () => {
      const p = await client().get<Pod>(Resources.Pod, ns, name);
      return p.status?.phase === "Succeeded" || p.status?.phase === "Failed" ? p : undefined;
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${runner!.explain(ns, name)}`);
    });
  }

  async function blockVolume(
    claimName: string,
    size: number,
    options: Partial<Parameters<typeof createBlockVolume>[1]> = {},
  ): Promise<BlockVolumeFixture> {
    const v = await createBlockVolume(client(), { namespace: ns, claimName, size, ...options });
    volumes.push(v);
    backingFiles.push(v.file);
    return v;
  }

  it("binds a Block-mode claim to its loop-device PV (local, pinned to a node; or hostPath)", async () => {
    const rwo = await blockVolume("blk-rwo", 4 * MiB, {
      node: "node-a",
      accessModes: ["ReadWriteOnce"],
      storageClassName: STORAGE_CLASS,
    });
    const rwx = await blockVolume("blk-rwx", 2 * MiB, { accessModes: ["ReadWriteMany"], content: "mixed" });
    for (const v of [rwo, rwx]) {
      assert.equal(await waitForBound(client(), ns, v.claimName), v.pvName);
      const pvc = await client().get<Pvc>(Resources.PersistentVolumeClaim, ns, v.claimName);
      assert.equal(pvc.spec.volumeMode, "Block");
      assert.ok(statSync(v.device).isBlockDevice());
      assert.equal(Number(execFileSync("blockdev", ["--getsize64", v.device], { encoding: "utf8" })), v.size);
    }
    const pv = await client().get<Pv>(Resources.PersistentVolume, undefined, rwo.pvName);
    assert.equal(pv.spec.volumeMode, "Block");
    assert.equal(pv.spec.local?.path, rwo.device);
    assert.equal(pv.spec.storageClassName, STORAGE_CLASS);
    assert.deepEqual(pv.spec.accessModes, ["ReadWriteOnce"]);
    assert.match(JSON.stringify(pv.spec.nodeAffinity), /"node-a"/);
    const pv2 = await client().get<Pv>(Resources.PersistentVolume, undefined, rwx.pvName);
    assert.deepEqual(pv2.spec.hostPath, { path: rwx.device, type: "BlockDevice" });
    assert.deepEqual(pv2.spec.accessModes, ["ReadWriteMany"]);
  });

  it("maps the claim at the container's devicePath in the pod's mount namespace, same bytes", async () => {
    const v = volumes.find((x) => x.claimName === "blk-rwo")!;
    await client().create(Resources.Pod, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "reads-device",
        namespace: ns,
        labels: { "app.kubernetes.io/component": "agent" },
        annotations: { [RUNNER_ANNOTATION]: RUNNER },
      },
      spec: {
        nodeName: "node-a",
        restartPolicy: "Never",
        containers: [
          {
            name: "agent",
            image: "fedbackup:test",
            args: [DEVICE_PATH],
            volumeDevices: [{ name: "disk", devicePath: DEVICE_PATH }],
          },
        ],
        volumes: [{ name: "disk", persistentVolumeClaim: { claimName: v.claimName } }],
      },
    } as KubeObject);
    const pod = await podEnded("reads-device");
    const run = runner!.runs.find((r) => r.namespace === ns && r.name === "reads-device")!;
    const log = readFileSync(run.log, "utf8");
    assert.equal(pod.status?.phase, "Succeeded", log);
    assert.equal(log.trim(), `${await sha256Of(v.device)}  ${DEVICE_PATH}`);
    // Only the pod saw the device there: the host's path is the empty file the mapping was made on.
    assert.ok(!statSync(DEVICE_PATH).isBlockDevice());
  });

  it("CSI double: snapshots a Block claim at the cut and restores it into a new Block claim, byte for byte", async () => {
    const csi = await csiDouble();
    const v = volumes.find((x) => x.claimName === "blk-rwx")!;
    const before = await sha256Of(v.device);
    await client().create(Resources.VolumeSnapshot, {
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: { name: "blk-snap", namespace: ns },
      spec: { source: { persistentVolumeClaimName: v.claimName } },
    } as KubeObject);
    const vs = await waitFor("the snapshot to be ready", 30_000, async () => {
      const s = await client().get<KubeObject & { status?: { readyToUse?: boolean; restoreSize?: string } }>(
        Resources.VolumeSnapshot,
        ns,
        "blk-snap",
      );
      return s.status?.readyToUse ? s : undefined;
    });
    assert.equal(vs.status?.restoreSize, String(v.size));
    const snap = csi.snapshots.find((s) => s.namespace === ns && s.name === "blk-snap")!;
    assert.equal(snap.volumeMode, "Block");
    // Writes after the cut are not in the snapshot.
    fill(v.device, v.size, "random");
    assert.notEqual(await sha256Of(v.device), before);

    await client().create(Resources.PersistentVolumeClaim, {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "blk-restored", namespace: ns },
      spec: {
        volumeMode: "Block",
        accessModes: ["ReadWriteOnce"],
        storageClassName: "",
        resources: { requests: { storage: String(v.size) } },
        dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "blk-snap" },
      },
    } as KubeObject);
    const pvName = await waitForBound(client(), ns, "blk-restored");
    const pv = await client().get<Pv>(Resources.PersistentVolume, undefined, pvName);
    assert.equal(pv.spec.volumeMode, "Block");
    const restore = csi.restores.find((r) => r.namespace === ns && r.claim === "blk-restored")!;
    assert.equal(restore.volumeMode, "Block");
    assert.equal(pv.spec.hostPath?.path, restore.device);
    assert.ok(statSync(restore.device!).isBlockDevice());
    assert.equal(await sha256Of(restore.device!), before);
    assert.equal(attachedTo(restore.dir).length > 0, true);

    // Deleting the restored claim detaches its device and deletes its file.
    await client().delete(Resources.PersistentVolumeClaim, ns, "blk-restored");
    await waitFor("the restored device to be detached", 30_000, () =>
      Promise.resolve(restore.deleted && attachedTo(restore.dir) === "" ? true : undefined),
    );
    assert.equal(statSync(restore.dir, { throwIfNoEntry: false }), undefined);
    // Filesystem behaviour is unchanged: a hostPath directory claim still snapshots as a directory.
    const fsDir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-block-volumes-fs-"));
    try {
      writeFileSync(path.join(fsDir, "disk.img"), randomBytes(4096));
      await createVolume(client(), ns, "fs-claim", fsDir);
      await waitForBound(client(), ns, "fs-claim");
      await client().create(Resources.VolumeSnapshot, {
        apiVersion: "snapshot.storage.k8s.io/v1",
        kind: "VolumeSnapshot",
        metadata: { name: "fs-snap", namespace: ns },
        spec: { source: { persistentVolumeClaimName: "fs-claim" } },
      } as KubeObject);
      const fsSnap = await waitFor("the Filesystem snapshot", 30_000, () =>
        Promise.resolve(csi.snapshots.find((s) => s.namespace === ns && s.name === "fs-snap")),
      );
      assert.equal(fsSnap.volumeMode, "Filesystem");
      assert.deepEqual(readFileSync(path.join(fsSnap.dir, "disk.img")), readFileSync(path.join(fsDir, "disk.img")));
    } finally {
      rmSync(fsDir, { recursive: true, force: true });
    }
  });

  it("CSI double: provisions blank claims of its driver's class, an empty directory and a device of zeros, writable by a pod", async () => {
    const csi = await csiDouble();
    await ensureStorageClass(client(), CSI_CLASS, CSI_DOUBLE_DRIVER);
    const blank = (name: string, volumeMode: "Filesystem" | "Block", storage: string) =>
      client().create(Resources.PersistentVolumeClaim, {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name, namespace: ns },
        spec: {
          volumeMode,
          accessModes: ["ReadWriteOnce"],
          storageClassName: CSI_CLASS,
          resources: { requests: { storage } },
        },
      } as KubeObject);
    await blank("blank-fs", "Filesystem", "16Mi");
    await blank("blank-blk", "Block", "8Mi");
    const provisioned = async (claim: string) => {
      const pvName = await waitForBound(client(), ns, claim);
      const pv = await client().get<Pv>(Resources.PersistentVolume, undefined, pvName);
      const record = csi.provisioned.find((r) => r.namespace === ns && r.claim === claim)!;
      assert.equal(record.pv, pvName);
      assert.equal(pv.metadata.annotations?.["pv.kubernetes.io/provisioned-by"], CSI_DOUBLE_DRIVER);
      assert.equal(pv.spec.storageClassName, CSI_CLASS);
      return { pv, record };
    };
    const fs = await provisioned("blank-fs");
    assert.equal(fs.pv.spec.volumeMode, "Filesystem");
    assert.deepEqual(fs.pv.spec.hostPath, { path: fs.record.dir, type: "Directory" });
    assert.deepEqual(readdirSync(fs.record.dir), []);
    const blk = await provisioned("blank-blk");
    assert.equal(blk.pv.spec.volumeMode, "Block");
    assert.deepEqual(blk.pv.spec.hostPath, { path: blk.record.device, type: "BlockDevice" });
    assert.equal(Number(execFileSync("blockdev", ["--getsize64", blk.record.device!], { encoding: "utf8" })), 8 * MiB);
    assert.ok(readFileSync(blk.record.device!).equals(Buffer.alloc(8 * MiB)), "the device is not zeros");

    // A pod with both: a file written on the directory claim, bytes written to the device.
    await client().create(Resources.Pod, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "writes-blank-claims",
        namespace: ns,
        labels: { "app.kubernetes.io/component": "agent" },
        annotations: { [RUNNER_ANNOTATION]: RUNNER },
      },
      spec: {
        nodeName: "node-a",
        restartPolicy: "Never",
        containers: [
          {
            name: "agent",
            image: WRITER_IMAGE,
            args: [
              `echo written > /data/probe && printf written | dd of=${DEVICE_PATH} conv=notrunc,fsync 2>/dev/null`,
            ],
            volumeMounts: [{ name: "fs", mountPath: "/data" }],
            volumeDevices: [{ name: "blk", devicePath: DEVICE_PATH }],
          },
        ],
        volumes: [
          { name: "fs", persistentVolumeClaim: { claimName: "blank-fs" } },
          { name: "blk", persistentVolumeClaim: { claimName: "blank-blk" } },
        ],
      },
    } as KubeObject);
    const pod = await podEnded("writes-blank-claims");
    const run = runner!.runs.find((r) => r.namespace === ns && r.name === "writes-blank-claims")!;
    assert.equal(pod.status?.phase, "Succeeded", readFileSync(run.log, "utf8"));
    assert.equal(readFileSync(path.join(fs.record.dir, "probe"), "utf8"), "written\n");
    assert.equal(readFileSync(blk.record.device!).subarray(0, 7).toString(), "written");

    // Deleting the claims removes their PVs, the directory and the device, as for restored claims.
    await client().delete(Resources.Pod, ns, "writes-blank-claims");
    await client().delete(Resources.PersistentVolumeClaim, ns, "blank-fs");
    await client().delete(Resources.PersistentVolumeClaim, ns, "blank-blk");
    await waitFor("the blank claims' volumes to be released", 30_000, () =>
      Promise.resolve(fs.record.deleted && blk.record.deleted && attachedTo(blk.record.dir) === "" ? true : undefined),
    );
    assert.equal(statSync(fs.record.dir, { throwIfNoEntry: false }), undefined);
    assert.equal(statSync(blk.record.dir, { throwIfNoEntry: false }), undefined);
  });

  it("makes VMs whose disks are DataVolumes and claims of both modes, named as KubeVirt names them", async () => {
    const vm = await createVirtualMachine(client(), ns, sharedDir, {
      name: "vm-dv",
      node: "node-b",
      claimDisks: [
        { source: "dataVolume", volumeMode: "Block", size: 2 * MiB, accessModes: ["ReadWriteMany"] },
        { source: "dataVolume", volumeMode: "Filesystem", size: 256 * 1024, node: "node-b" },
      ],
    });
    const vmi = await createVm(client(), ns, sharedDir, {
      name: "vmi-mixed",
      node: "node-c",
      disks: [64 * 1024],
      claimDisks: [
        {
          source: "persistentVolumeClaim",
          volumeMode: "Block",
          size: 1 * MiB,
          storageClassName: STORAGE_CLASS,
          content: "mixed",
        },
        { source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 128 * 1024, accessModes: ["ReadWriteMany"] },
      ],
    });
    for (const d of [...claimDisksOf(ns, "vm-dv"), ...claimDisksOf(ns, "vmi-mixed")])
      if (d.volumeMode === "Block")
        backingFiles.push(execFileSync("losetup", ["-nO", "BACK-FILE", d.path]).toString().trim());

    const template = vm.spec.template.spec as unknown as {
      volumes: Array<Record<string, unknown>>;
      domain: { devices: { disks: Array<{ name: string }> } };
    };
    assert.deepEqual(template.volumes, [
      { name: "disk0", dataVolume: { name: "vm-dv-disk0" } },
      { name: "disk1", dataVolume: { name: "vm-dv-disk1" } },
    ]);
    assert.deepEqual(
      template.domain.devices.disks.map((d) => d.name),
      ["disk0", "disk1"],
    );
    const vmiSpec = vmi.spec as unknown as { volumes: Array<Record<string, unknown>> };
    assert.deepEqual(vmiSpec.volumes.slice(1), [
      { name: "disk1", persistentVolumeClaim: { claimName: "vmi-mixed-disk1" } },
      { name: "disk2", persistentVolumeClaim: { claimName: "vmi-mixed-disk2" } },
    ]);
    assert.ok("hostDisk" in vmiSpec.volumes[0]!);

    for (const name of ["vm-dv-disk0", "vm-dv-disk1"]) {
      const dv = await client().get<DataVolume>(DataVolumeResource, ns, name);
      assert.equal(dv.status?.phase, "Succeeded");
      await waitForBound(client(), ns, name);
      const pvc = await client().get<Pvc>(Resources.PersistentVolumeClaim, ns, name);
      assert.equal(pvc.metadata.ownerReferences?.[0]?.uid, dv.metadata.uid);
    }
    const disks = [...claimDisksOf(ns, "vm-dv"), ...claimDisksOf(ns, "vmi-mixed")];
    assert.deepEqual(
      disks.map((d) => `${d.vm}/${d.volumeName} ${d.source} ${d.volumeMode} ${d.size}`),
      [
        `vm-dv/disk0 dataVolume Block ${2 * MiB}`,
        `vm-dv/disk1 dataVolume Filesystem ${256 * 1024}`,
        `vmi-mixed/disk1 persistentVolumeClaim Block ${1 * MiB}`,
        `vmi-mixed/disk2 persistentVolumeClaim Filesystem ${128 * 1024}`,
      ],
    );
    for (const d of disks) {
      await waitForBound(client(), ns, d.claimName);
      const pv = await client().get<Pv>(Resources.PersistentVolume, undefined, d.pvName);
      assert.equal(pv.spec.volumeMode ?? "Filesystem", d.volumeMode);
      if (d.volumeMode === "Block") assert.ok(statSync(d.path).isBlockDevice());
      else assert.equal(d.path, path.join(pv.spec.hostPath!.path, "disk.img"));
      assert.equal(statSync(d.path).isBlockDevice() ? d.size : statSync(d.path).size, d.size);
      // Random content: no all-zero disk.
      assert.notEqual(await sha256Of(d.path), await sha256Of("/dev/zero", d.size));
    }
  });

  it("leaves no loop device attached once the fixtures are cleaned up", async () => {
    for (const v of volumes.splice(0)) await v.cleanup();
    await cleanupClaimDisks(ns);
    assert.ok(backingFiles.length >= 4);
    for (const file of backingFiles) assert.equal(attachedTo(file), "", file);
  });
});
