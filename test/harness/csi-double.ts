// A test double of the CSI snapshot machinery for hostPath PersistentVolumes (no snapshot controller or
// CSI driver runs here): it plays the snapshot controller and the CSI provisioner, through the real API.
//
// - A VolumeSnapshot whose source claim is bound to a hostPath PV: the PV's directory is copied to a new
//   directory (`cp -a --reflink=auto`, the cut point), and the VolumeSnapshot's status is set through the
//   status subresource (creationTime, readyToUse, restoreSize, boundVolumeSnapshotContentName).
// - A PVC whose dataSource is a VolumeSnapshot: the snapshot's directory is copied to a new directory and a
//   hostPath PV pre-bound to the claim is created (the PV binder controller completes the binding).
// - A restored claim that is deleted: its PV and directory go too.
//
// Block-mode claims (a PV of volumeMode Block on a loop device, block-volumes.ts) work alike: the snapshot
// copies the device's bytes to a sparse file, a claim restored from it gets a new loop device on a copy of
// that file and a Block-mode PV; deleting the restored claim detaches the device and deletes the file.
//
// By default the copy is the cut point: creationTime is set once it is done, so a freeze around the snapshot
// lasts as long as the copy. With `cutFirst`, creationTime is set before the copy and readyToUse after it, as
// a CSI driver whose snapshot is a cheap cut (copy-on-write) reports them: the freeze then does not depend on
// the volume's size. The double copies after the cut, so what it keeps is the volume as it is at the end of
// the copy: with cutFirst, nothing may write to the source while a snapshot of it is being taken.
//
// It records every snapshot it took and every claim it restored, for assertions.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { KubeClient } from "../../src/k8s/client.js";
import { isAlreadyExists, isNotFound } from "../../src/k8s/errors.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { attachLoopDevice, type LoopDevice } from "./block-volumes.js";
import type { ControlPlane } from "./control-plane.js";

const run = promisify(execFile);

/** The CSI driver name the double answers for (VolumeSnapshotClass.driver). */
export const CSI_DOUBLE_DRIVER = "hostpath.csi.fedbackup.test";

type VolumeSnapshot = KubeObject & {
  spec: { source: { persistentVolumeClaimName?: string }; volumeSnapshotClassName?: string };
  status?: { creationTime?: string; readyToUse?: boolean };
};
type Claim = KubeObject & {
  spec: {
    volumeName?: string;
    accessModes?: string[];
    storageClassName?: string;
    volumeMode?: string;
    resources?: { requests?: { storage?: string } };
    dataSource?: { apiGroup?: string; kind: string; name: string };
  };
};
type Volume = KubeObject & {
  spec: { hostPath?: { path: string }; local?: { path: string }; volumeMode?: string };
};
type VolumeMode = "Filesystem" | "Block";

export interface SnapshotRecord {
  namespace: string;
  name: string;
  sourceClaim: string;
  /** The copy: a directory (Filesystem) or a sparse file of the device's bytes (Block). */
  dir: string;
  volumeMode: VolumeMode;
  at: number;
}

export interface RestoreRecord {
  namespace: string;
  claim: string;
  snapshot: string;
  pv: string;
  /** The restored copy: a directory (Filesystem) or the loop device's backing file (Block). */
  dir: string;
  volumeMode: VolumeMode;
  /** The loop device of a Block-mode restore. */
  device?: string;
  deleted?: boolean;
}

export class CsiDouble {
  readonly snapshots: SnapshotRecord[] = [];
  readonly restores: RestoreRecord[] = [];
  private readonly client: KubeClient;
  private readonly vsInformer: Informer<VolumeSnapshot>;
  private readonly pvcInformer: Informer<Claim>;
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-csi-"));
  /** Objects being worked on (by uid), so that one event storm does one copy. */
  private readonly busy = new Set<string>();
  /** VolumeSnapshot uid → its directory (or file, Block mode). */
  private readonly snapshotDirs = new Map<string, string>();
  private readonly snapshotModes = new Map<string, VolumeMode>();
  /** Restored PV name → its loop device (Block mode). */
  private readonly loops = new Map<string, LoopDevice>();

  constructor(
    cp: ControlPlane,
    private readonly options: { cutFirst?: boolean } = {},
  ) {
    this.client = new KubeClient(cp.kubeConfig);
    const warn = { warn: () => {} };
    this.vsInformer = new Informer<VolumeSnapshot>(this.client, Resources.VolumeSnapshot, {}, warn);
    this.pvcInformer = new Informer<Claim>(this.client, Resources.PersistentVolumeClaim, {}, warn);
    const report = (err: unknown) => process.stderr.write(`csi double: ${String(err)}\n`);
    this.vsInformer.on((event, vs) => {
      if (event === "delete") {
        const dir = this.snapshotDirs.get(vs.metadata.uid!);
        if (dir) rmSync(dir, { recursive: true, force: true });
        return;
      }
      void this.onSnapshot(vs).catch(report);
      // A restore may have waited for this snapshot.
      for (const pvc of this.pvcInformer.list()) void this.onClaim(pvc).catch(report);
    });
    this.pvcInformer.on((event, pvc) => {
      if (event === "delete" || pvc.metadata.deletionTimestamp) void this.onClaimGone(pvc).catch(report);
      else void this.onClaim(pvc).catch(report);
    });
  }

  async start(): Promise<void> {
    await this.vsInformer.start();
    await this.pvcInformer.start();
  }

  async stop(): Promise<void> {
    await this.vsInformer.stop();
    await this.pvcInformer.stop();
    this.client.close();
    for (const loop of this.loops.values()) loop.detach();
    this.loops.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A VolumeSnapshotClass of this driver (cluster-scoped; created once, kept). */
  async ensureClass(name: string): Promise<void> {
    try {
      await this.client.create(Resources.VolumeSnapshotClass, {
        apiVersion: "snapshot.storage.k8s.io/v1",
        kind: "VolumeSnapshotClass",
        metadata: { name },
        driver: CSI_DOUBLE_DRIVER,
        deletionPolicy: "Delete",
      } as KubeObject);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  /** A claim's hostPath directory (Filesystem), or its loop device (Block: a hostPath or local PV). */
  private async sourceOfClaim(
    namespace: string,
    claim: string,
  ): Promise<{ path: string; volumeMode: VolumeMode } | undefined> {
    const pvc = this.pvcInformer.get(`${namespace}/${claim}`);
    if (!pvc?.spec.volumeName) return undefined;
    const pv = await this.client.get<Volume>(Resources.PersistentVolume, undefined, pvc.spec.volumeName);
    if (pv.spec.volumeMode === "Block") {
      const device = pv.spec.hostPath?.path ?? pv.spec.local?.path;
      return device ? { path: device, volumeMode: "Block" } : undefined;
    }
    return pv.spec.hostPath ? { path: pv.spec.hostPath.path, volumeMode: "Filesystem" } : undefined;
  }

  private async onSnapshot(vs: VolumeSnapshot): Promise<void> {
    const uid = vs.metadata.uid!;
    if (vs.status?.creationTime || vs.metadata.deletionTimestamp || this.busy.has(uid)) return;
    const ns = vs.metadata.namespace!;
    const source = vs.spec.source.persistentVolumeClaimName;
    if (!source) return;
    const from = await this.sourceOfClaim(ns, source);
    if (!from) return; // not a hostPath volume or a loop device: not ours
    this.busy.add(uid);
    const at = Date.now();
    if (this.options.cutFirst) {
      const cut = await this.setStatus(ns, vs.metadata.name!, {
        creationTime: new Date(at).toISOString(),
        readyToUse: false,
      });
      if (!cut) return;
    }
    const dir = path.join(this.dir, `snapshot-${uid}`);
    let bytes: number;
    if (from.volumeMode === "Block") {
      // The device's bytes, zero runs left as holes; the restore size is the device's size.
      mkdirSync(this.dir, { recursive: true });
      await run("cp", ["--sparse=always", from.path, dir]);
      bytes = statSync(dir).size;
    } else {
      await copyDir(from.path, dir);
      const { stdout } = await run("du", ["-sb", dir]);
      bytes = Number(stdout.split(/\s/)[0]) || 0;
    }
    this.snapshotDirs.set(uid, dir);
    this.snapshotModes.set(uid, from.volumeMode);
    this.snapshots.push({
      namespace: ns,
      name: vs.metadata.name!,
      sourceClaim: source,
      dir,
      volumeMode: from.volumeMode,
      at,
    });
    await this.setStatus(ns, vs.metadata.name!, {
      creationTime: new Date(at).toISOString(),
      readyToUse: true,
      restoreSize: String(bytes),
      boundVolumeSnapshotContentName: `snapcontent-${uid}`,
    });
  }

  /** Writes a VolumeSnapshot's status; false when it is gone. */
  private async setStatus(ns: string, name: string, status: Record<string, unknown>): Promise<boolean> {
    try {
      await this.client.patch(Resources.VolumeSnapshot, ns, name, { status }, { subresource: "status" });
      return true;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return false;
    }
  }

  private async onClaim(pvc: Claim): Promise<void> {
    const uid = pvc.metadata.uid!;
    const source = pvc.spec.dataSource;
    if (!source || source.kind !== "VolumeSnapshot" || pvc.spec.volumeName || this.busy.has(uid)) return;
    const ns = pvc.metadata.namespace!;
    const vs = this.vsInformer.get(`${ns}/${source.name}`);
    const snapshotDir = vs ? this.snapshotDirs.get(vs.metadata.uid!) : undefined;
    if (!vs?.status?.readyToUse || !snapshotDir) return; // provisioned once the snapshot is ready
    this.busy.add(uid);
    const pv = `restored-${uid}`;
    if (this.snapshotModes.get(vs.metadata.uid!) === "Block") return this.restoreBlock(pvc, snapshotDir, pv);
    const dir = path.join(this.dir, `restore-${uid}`);
    await copyDir(snapshotDir, dir);
    await this.client.create(Resources.PersistentVolume, {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: pv },
      spec: {
        capacity: { storage: pvc.spec.resources?.requests?.storage ?? "1Gi" },
        accessModes: pvc.spec.accessModes ?? ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: pvc.spec.storageClassName ?? "",
        hostPath: { path: dir, type: "Directory" },
        claimRef: { namespace: ns, name: pvc.metadata.name, uid },
      },
    } as KubeObject);
    this.restores.push({
      namespace: ns,
      claim: pvc.metadata.name!,
      snapshot: source.name,
      pv,
      dir,
      volumeMode: "Filesystem",
    });
    // What the binder does next (spec.volumeName may be set once on an unbound claim).
    await this.client
      .patch(Resources.PersistentVolumeClaim, ns, pvc.metadata.name!, { spec: { volumeName: pv } })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }

  /** A claim restored from a Block-mode snapshot: a loop device on a copy of it, a Block-mode PV bound to it. */
  private async restoreBlock(pvc: Claim, snapshotFile: string, pv: string): Promise<void> {
    const ns = pvc.metadata.namespace!;
    const loop = attachLoopDevice(statSync(snapshotFile).size, "zeros", snapshotFile);
    this.loops.set(pv, loop);
    await this.client.create(Resources.PersistentVolume, {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: pv },
      spec: {
        capacity: { storage: pvc.spec.resources?.requests?.storage ?? String(loop.size) },
        volumeMode: "Block",
        accessModes: pvc.spec.accessModes ?? ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: pvc.spec.storageClassName ?? "",
        hostPath: { path: loop.device, type: "BlockDevice" },
        claimRef: { namespace: ns, name: pvc.metadata.name, uid: pvc.metadata.uid },
      },
    } as KubeObject);
    this.restores.push({
      namespace: ns,
      claim: pvc.metadata.name!,
      snapshot: pvc.spec.dataSource!.name,
      pv,
      dir: loop.file,
      volumeMode: "Block",
      device: loop.device,
    });
    await this.client
      .patch(Resources.PersistentVolumeClaim, ns, pvc.metadata.name!, { spec: { volumeName: pv } })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }

  private async onClaimGone(pvc: Claim): Promise<void> {
    const restore = this.restores.find(
      (r) => r.namespace === pvc.metadata.namespace && r.claim === pvc.metadata.name && !r.deleted,
    );
    if (!restore || restore.pv !== `restored-${pvc.metadata.uid}`) return;
    restore.deleted = true;
    await this.client.delete(Resources.PersistentVolume, undefined, restore.pv).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    const loop = this.loops.get(restore.pv);
    if (loop) {
      this.loops.delete(restore.pv);
      loop.detach();
    } else rmSync(restore.dir, { recursive: true, force: true });
  }
}

async function copyDir(from: string, to: string): Promise<void> {
  mkdirSync(path.dirname(to), { recursive: true });
  await run("cp", ["-a", "--reflink=auto", `${from}/.`, to]);
}
