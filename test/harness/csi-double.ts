// A test double of the CSI snapshot machinery for hostPath PersistentVolumes (no snapshot controller or
// CSI driver runs here): it plays the snapshot controller and the CSI provisioner, through the real API.
//
// - A VolumeSnapshot whose source claim is bound to a hostPath PV: the PV's directory is copied to a new
//   directory (`cp -a --reflink=auto`, the cut point), and the VolumeSnapshot's status is set through the
//   status subresource (creationTime, readyToUse, restoreSize, boundVolumeSnapshotContentName).
// - A PVC whose dataSource is a VolumeSnapshot: the snapshot's directory is copied to a new directory and a
//   hostPath PV pre-bound to the claim is created (the PV binder controller completes the binding).
// - A blank PVC (no dataSource, no volumeName) whose StorageClass's provisioner is CSI_DOUBLE_DRIVER, as the
//   CSI external-provisioner would: a new empty directory as a hostPath PV (Filesystem), or a loop device of
//   zeros of the requested size as a Block-mode PV (Block), annotated pv.kubernetes.io/provisioned-by with the
//   driver and bound to the claim as a restored claim is.
// - A restored or provisioned claim that is deleted: its PV and directory (or loop device) go too.
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
// - A VolumeGroupSnapshot (groupsnapshot.storage.k8s.io/v1beta2) selecting claims of its namespace by label:
//   as the snapshot controller does, a member VolumeSnapshot per selected claim (`snapshot-<hash>`, owned by
//   the group, with the finalizer that keeps it while its group exists, and status.volumeGroupSnapshotName),
//   every claim copied at one cut point: the group's and every member's creationTime are the same instant.
//   Deleting the group deletes its members; a member deleted alone stays (finalizer) until its group is gone,
//   as upstream, where an individual member cannot be deleted.
//
// It records every snapshot it took (a group's members too) and every claim it restored, for assertions.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { parseQuantity } from "../../src/controllers/runtime/quantity.js";
import { KubeClient } from "../../src/k8s/client.js";
import { isAlreadyExists, isNotFound } from "../../src/k8s/errors.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { StorageClassResource, attachLoopDevice, type LoopDevice } from "./block-volumes.js";
import type { ControlPlane } from "./control-plane.js";

const run = promisify(execFile);

/** The CSI driver name the double answers for (VolumeSnapshotClass.driver). */
export const CSI_DOUBLE_DRIVER = "hostpath.csi.fedbackup.test";

type VolumeSnapshot = KubeObject & {
  spec: { source: { persistentVolumeClaimName?: string }; volumeSnapshotClassName?: string };
  status?: { creationTime?: string; readyToUse?: boolean; volumeGroupSnapshotName?: string };
};
type LabelSelector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
};
type VolumeGroupSnapshot = KubeObject & {
  spec: { source: { selector?: LabelSelector }; volumeGroupSnapshotClassName?: string };
  status?: { creationTime?: string; readyToUse?: boolean };
};

/** The finalizer the snapshot controller puts on a group's member snapshots (upstream's name). */
export const IN_GROUP_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshot-in-group-protection";
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

export interface GroupSnapshotRecord {
  namespace: string;
  name: string;
  /** The member VolumeSnapshots it made, by source claim. */
  members: Array<{ name: string; sourceClaim: string }>;
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

/** A blank claim the double provisioned (its StorageClass's provisioner is CSI_DOUBLE_DRIVER). */
export interface ProvisionRecord {
  namespace: string;
  claim: string;
  pv: string;
  /** The new empty directory (Filesystem) or the loop device's backing file (Block). */
  dir: string;
  volumeMode: VolumeMode;
  /** The loop device of a Block-mode claim. */
  device?: string;
  /** Its size in bytes (Block: the requested size rounded up to 512). */
  size: number;
  deleted?: boolean;
}

type StorageClass = KubeObject & { provisioner?: string };

export class CsiDouble {
  readonly snapshots: SnapshotRecord[] = [];
  readonly restores: RestoreRecord[] = [];
  readonly provisioned: ProvisionRecord[] = [];
  readonly groupSnapshots: GroupSnapshotRecord[] = [];
  private readonly client: KubeClient;
  private readonly vsInformer: Informer<VolumeSnapshot>;
  private readonly vgsInformer: Informer<VolumeGroupSnapshot>;
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
    this.vgsInformer = new Informer<VolumeGroupSnapshot>(this.client, Resources.VolumeGroupSnapshot, {}, warn);
    const report = (err: unknown) => process.stderr.write(`csi double: ${String(err)}\n`);
    this.vgsInformer.on((event, vgs) => {
      if (event === "delete" || vgs.metadata.deletionTimestamp) void this.onGroupGone(vgs).catch(report);
      else void this.onGroupSnapshot(vgs).catch(report);
    });
    this.vsInformer.on((event, vs) => {
      if (event !== "delete" && vs.metadata.deletionTimestamp) {
        void this.onMemberDeleting(vs).catch(report);
        return;
      }
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
    await this.vgsInformer.start();
  }

  async stop(): Promise<void> {
    await this.vgsInformer.stop();
    await this.vsInformer.stop();
    await this.pvcInformer.stop();
    this.client.close();
    for (const loop of this.loops.values()) loop.detach();
    this.loops.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * A VolumeSnapshotClass of this driver (cluster-scoped; created once, kept). The double takes snapshots of
   * every hostPath or loop-device volume whatever its driver: `driver` names another, for tests that need
   * two drivers with different classes.
   */
  async ensureClass(name: string, driver = CSI_DOUBLE_DRIVER): Promise<void> {
    try {
      await this.client.create(Resources.VolumeSnapshotClass, {
        apiVersion: "snapshot.storage.k8s.io/v1",
        kind: "VolumeSnapshotClass",
        metadata: { name },
        driver,
        deletionPolicy: "Delete",
      } as KubeObject);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  /** A VolumeGroupSnapshotClass of this driver, or of `driver` (cluster-scoped; created once, kept). */
  async ensureGroupClass(name: string, driver = CSI_DOUBLE_DRIVER): Promise<void> {
    try {
      await this.client.create(Resources.VolumeGroupSnapshotClass, {
        apiVersion: "groupsnapshot.storage.k8s.io/v1beta2",
        kind: "VolumeGroupSnapshotClass",
        metadata: { name },
        driver,
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
    if (vs.metadata.ownerReferences?.some((o) => o.kind === "VolumeGroupSnapshot")) return; // a group's member
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
    const bytes = await this.copySource(from, dir);
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

  /** Copies a claim's volume to `dir` (a sparse file of the device's bytes in Block mode); its size. */
  private async copySource(from: { path: string; volumeMode: VolumeMode }, dir: string): Promise<number> {
    if (from.volumeMode === "Block") {
      // The device's bytes, zero runs left as holes; the restore size is the device's size.
      mkdirSync(this.dir, { recursive: true });
      await run("cp", ["--sparse=always", from.path, dir]);
      return statSync(dir).size;
    }
    await copyDir(from.path, dir);
    const { stdout } = await run("du", ["-sb", dir]);
    return Number(stdout.split(/\s/)[0]) || 0;
  }

  /**
   * A VolumeGroupSnapshot: its members first (as the snapshot controller creates them), then every selected
   * claim copied, all at one cut point, then the members' and the group's status.
   */
  private async onGroupSnapshot(vgs: VolumeGroupSnapshot): Promise<void> {
    const uid = vgs.metadata.uid!;
    if (vgs.status?.creationTime || this.busy.has(uid)) return;
    const selector = vgs.spec.source.selector;
    if (!selector) return;
    const ns = vgs.metadata.namespace!;
    this.busy.add(uid);
    const claims = this.pvcInformer
      .list()
      .filter((pvc) => pvc.metadata.namespace === ns && matches(selector, pvc.metadata.labels ?? {}));
    const sources: Array<{ claim: string; from: { path: string; volumeMode: VolumeMode } }> = [];
    for (const pvc of claims) {
      const from = await this.sourceOfClaim(ns, pvc.metadata.name!);
      if (from) sources.push({ claim: pvc.metadata.name!, from });
    }
    const at = Date.now();
    const creationTime = new Date(at).toISOString();
    if (this.options.cutFirst) {
      const cut = await this.setGroupStatus(ns, vgs.metadata.name!, { creationTime, readyToUse: false });
      if (!cut) return;
    }
    const members: GroupSnapshotRecord["members"] = [];
    for (const { claim, from } of sources) {
      const name = `snapshot-${createHash("sha256").update(`${uid}${claim}`).digest("hex")}`;
      const member = await this.client.create<VolumeSnapshot>(Resources.VolumeSnapshot, {
        apiVersion: "snapshot.storage.k8s.io/v1",
        kind: "VolumeSnapshot",
        metadata: {
          name,
          namespace: ns,
          finalizers: [IN_GROUP_FINALIZER],
          ownerReferences: [
            {
              apiVersion: "groupsnapshot.storage.k8s.io/v1beta2",
              kind: "VolumeGroupSnapshot",
              name: vgs.metadata.name!,
              uid,
            },
          ],
        },
        spec: { source: { persistentVolumeClaimName: claim } },
      });
      const dir = path.join(this.dir, `snapshot-${member.metadata.uid}`);
      const bytes = await this.copySource(from, dir);
      this.snapshotDirs.set(member.metadata.uid!, dir);
      this.snapshotModes.set(member.metadata.uid!, from.volumeMode);
      this.snapshots.push({ namespace: ns, name, sourceClaim: claim, dir, volumeMode: from.volumeMode, at });
      members.push({ name, sourceClaim: claim });
      await this.setStatus(ns, name, {
        creationTime,
        readyToUse: true,
        restoreSize: String(bytes),
        boundVolumeSnapshotContentName: `snapcontent-${member.metadata.uid}`,
        volumeGroupSnapshotName: vgs.metadata.name,
      });
    }
    this.groupSnapshots.push({ namespace: ns, name: vgs.metadata.name!, members, at });
    await this.setGroupStatus(ns, vgs.metadata.name!, {
      creationTime,
      readyToUse: true,
      boundVolumeGroupSnapshotContentName: `groupsnapcontent-${uid}`,
    });
  }

  /** A deleted group: its members go with it (their finalizer comes off once the group is gone). */
  private async onGroupGone(vgs: VolumeGroupSnapshot): Promise<void> {
    for (const vs of this.vsInformer.list()) {
      if (vs.metadata.namespace !== vgs.metadata.namespace) continue;
      if (!vs.metadata.ownerReferences?.some((o) => o.uid === vgs.metadata.uid)) continue;
      await this.client.delete(Resources.VolumeSnapshot, vs.metadata.namespace, vs.metadata.name!).catch(ignoreGone);
      await this.onMemberDeleting(vs);
    }
  }

  /** A member being deleted keeps its finalizer while its group exists, as the snapshot controller does. */
  private async onMemberDeleting(vs: VolumeSnapshot): Promise<void> {
    if (!vs.metadata.finalizers?.includes(IN_GROUP_FINALIZER)) return;
    const owner = vs.metadata.ownerReferences?.find((o) => o.kind === "VolumeGroupSnapshot");
    const group = owner ? this.vgsInformer.get(`${vs.metadata.namespace}/${owner.name}`) : undefined;
    if (group && group.metadata.uid === owner?.uid && !group.metadata.deletionTimestamp) return;
    await this.client
      .patch(Resources.VolumeSnapshot, vs.metadata.namespace, vs.metadata.name!, {
        metadata: { finalizers: (vs.metadata.finalizers ?? []).filter((f) => f !== IN_GROUP_FINALIZER) },
      })
      .catch(ignoreGone);
  }

  /** Writes a VolumeGroupSnapshot's status; false when it is gone. */
  private async setGroupStatus(ns: string, name: string, status: Record<string, unknown>): Promise<boolean> {
    try {
      await this.client.patch(Resources.VolumeGroupSnapshot, ns, name, { status }, { subresource: "status" });
      return true;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return false;
    }
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
    if (!source && !pvc.spec.volumeName && !this.busy.has(uid)) return this.provisionBlank(pvc);
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

  /**
   * A blank claim of a class of the double's driver, as the external-provisioner makes one: an empty
   * directory or a loop device of zeros of the requested size, as a PV pre-bound to the claim.
   */
  private async provisionBlank(pvc: Claim): Promise<void> {
    const className = pvc.spec.storageClassName;
    if (!className) return;
    const sc = await this.client.get<StorageClass>(StorageClassResource, undefined, className).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
      return undefined;
    });
    const uid = pvc.metadata.uid!;
    if (sc?.provisioner !== CSI_DOUBLE_DRIVER || this.busy.has(uid)) return;
    this.busy.add(uid);
    const ns = pvc.metadata.namespace!;
    const pv = `pvc-${uid}`;
    const requested = pvc.spec.resources?.requests?.storage ?? "1Gi";
    const volumeMode: VolumeMode = pvc.spec.volumeMode === "Block" ? "Block" : "Filesystem";
    let record: ProvisionRecord;
    let source: Record<string, unknown>;
    if (volumeMode === "Block") {
      const loop = attachLoopDevice(Math.ceil(parseQuantity(requested) / 512) * 512, "zeros");
      this.loops.set(pv, loop);
      record = {
        namespace: ns,
        claim: pvc.metadata.name!,
        pv,
        dir: loop.file,
        volumeMode,
        device: loop.device,
        size: loop.size,
      };
      source = { hostPath: { path: loop.device, type: "BlockDevice" } };
    } else {
      const dir = path.join(this.dir, `provisioned-${uid}`);
      mkdirSync(dir, { recursive: true });
      record = { namespace: ns, claim: pvc.metadata.name!, pv, dir, volumeMode, size: parseQuantity(requested) };
      source = { hostPath: { path: dir, type: "Directory" } };
    }
    this.provisioned.push(record);
    await this.client.create(Resources.PersistentVolume, {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: pv, annotations: { "pv.kubernetes.io/provisioned-by": CSI_DOUBLE_DRIVER } },
      spec: {
        capacity: { storage: requested },
        volumeMode,
        accessModes: pvc.spec.accessModes ?? ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: className,
        ...source,
        claimRef: { namespace: ns, name: pvc.metadata.name, uid },
      },
    } as KubeObject);
    await this.client
      .patch(Resources.PersistentVolumeClaim, ns, pvc.metadata.name!, { spec: { volumeName: pv } })
      .catch(ignoreGone);
  }

  private async onClaimGone(pvc: Claim): Promise<void> {
    const blank = this.provisioned.find(
      (r) => r.namespace === pvc.metadata.namespace && r.pv === `pvc-${pvc.metadata.uid}` && !r.deleted,
    );
    if (blank) return this.release(blank);
    const restore = this.restores.find(
      (r) => r.namespace === pvc.metadata.namespace && r.claim === pvc.metadata.name && !r.deleted,
    );
    if (!restore || restore.pv !== `restored-${pvc.metadata.uid}`) return;
    return this.release(restore);
  }

  /** Deletes a restored or provisioned claim's PV, then its directory or loop device. */
  private async release(restore: { pv: string; dir: string; deleted?: boolean }): Promise<void> {
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

const ignoreGone = (err: unknown): void => {
  if (!isNotFound(err)) throw err;
};

/** Whether labels match a label selector (matchLabels and the four operators of matchExpressions). */
function matches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok =
      e.operator === "In"
        ? inValues
        : e.operator === "NotIn"
          ? !inValues
          : e.operator === "Exists"
            ? has
            : e.operator === "DoesNotExist"
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

async function copyDir(from: string, to: string): Promise<void> {
  mkdirSync(path.dirname(to), { recursive: true });
  await run("cp", ["-a", "--reflink=auto", `${from}/.`, to]);
}
