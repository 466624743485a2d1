// Block-mode PersistentVolumes for tests, backed by loop devices: a sparse file of the wanted size is
// attached with `losetup`, and a PersistentVolume with volumeMode Block whose path is the loop device is
// pre-bound to a Block-mode claim. The pod runner (pod-runner.ts) exposes such a claim at a container's
// volumeDevices[].devicePath, as a kubelet does. Needs root (losetup).
//
// Every loop device attached here is recorded until it is detached: `detachAllLoopDevices` (and, as a
// last resort, the process's exit) detaches whatever a failed test left attached.
import { execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { closeSync, createReadStream, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { KubeClient } from "../../src/k8s/client.js";
import { isAlreadyExists, isNotFound } from "../../src/k8s/errors.js";
import { Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";

export const StorageClassResource: ResourceType = {
  group: "storage.k8s.io",
  version: "v1",
  plural: "storageclasses",
  kind: "StorageClass",
  namespaced: false,
};

export type AccessMode = "ReadWriteOnce" | "ReadWriteMany" | "ReadOnlyMany" | "ReadWriteOncePod";

/**
 * What to write on a new device: random bytes throughout, nothing (all zeros, a fully sparse file), or
 * runs of random bytes and of zeros alternating every `MIXED_RUN` bytes (the zero runs stay holes).
 */
export type DeviceContent = "random" | "zeros" | "mixed";
export const MIXED_RUN = 1024 * 1024;

/** Loop devices attached by this process and not detached yet: device → its backing file. */
const attached = new Map<string, string>();

export interface LoopDevice {
  /** The loop device, /dev/loopN. */
  device: string;
  /** Its backing sparse file. */
  file: string;
  size: number;
  /** Detaches the device and deletes the file (idempotent). */
  detach(): void;
}

/** Whether loop devices can be attached here, or why not. */
export function loopDevicesUsable(): true | string {
  if (process.getuid?.() !== 0) return "not running as root, cannot attach loop devices";
  try {
    execFileSync("losetup", ["--version"], { stdio: "pipe" });
  } catch {
    return "losetup is missing";
  }
  return true;
}

/** Writes `content` over the first `size` bytes of `target` (a device or a file), through it, then syncs. */
export function fill(target: string, size: number, content: DeviceContent): void {
  if (content === "zeros") return;
  const fd = openSync(target, "r+");
  try {
    const chunk = Buffer.alloc(Math.min(MIXED_RUN, size));
    for (let at = 0; at < size; at += chunk.length) {
      const n = Math.min(chunk.length, size - at);
      if (content === "mixed" && Math.floor(at / MIXED_RUN) % 2 === 1) continue;
      randomFillSync(chunk, 0, n);
      writeSync(fd, chunk, 0, n, at);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A sparse file of `size` bytes (a multiple of 512) attached as a loop device, filled with `content`
 * written through the device. `from` is a file whose content the new file starts as (sparse copy) instead.
 */
export function attachLoopDevice(size: number, content: DeviceContent = "random", from?: string): LoopDevice {
  if (size <= 0 || size % 512 !== 0)
    throw new Error(`a loop device's size must be a positive multiple of 512, not ${size}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-loop-"));
  const file = path.join(dir, "device.img");
  if (from) execFileSync("cp", ["--sparse=always", from, file]);
  execFileSync("truncate", ["-s", String(size), file]);
  let device: string;
  try {
    device = execFileSync("losetup", ["--find", "--show", file], { encoding: "utf8" }).trim();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  attached.set(device, file);
  const detach = (): void => {
    if (attached.get(device) !== file) return;
    detachLoop(device);
    attached.delete(device);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (!from) fill(device, size, content);
  } catch (err) {
    detach();
    throw err;
  }
  return { device, file, size, detach };
}

function detachLoop(device: string): void {
  // A device still held open (a process of a pod being killed) is detached once released (autoclear).
  for (let attempt = 0; ; attempt++) {
    try {
      execFileSync("losetup", ["-d", device], { stdio: "pipe" });
      return;
    } catch (err) {
      if (attempt >= 20) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

/** Detaches every loop device this process attached and has not detached yet (for teardowns). */
export function detachAllLoopDevices(): void {
  for (const [device, file] of [...attached]) {
    try {
      detachLoop(device);
    } catch (err) {
      process.stderr.write(`block volumes: could not detach ${device}: ${String(err)}\n`);
    }
    attached.delete(device);
    rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

process.on("exit", () => detachAllLoopDevices());

/** The sha256 (hex) of the first `size` bytes of a device or file (all of it when size is undefined). */
export async function sha256Of(target: string, size?: number): Promise<string> {
  const hash = createHash("sha256");
  const stream = createReadStream(target, size === undefined ? {} : { start: 0, end: size - 1 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** A StorageClass (cluster-scoped; created once, kept), Immediate binding, no dynamic provisioning by default. */
export async function ensureStorageClass(
  client: KubeClient,
  name: string,
  provisioner = "kubernetes.io/no-provisioner",
): Promise<void> {
  try {
    await client.create(StorageClassResource, {
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: { name },
      provisioner,
      reclaimPolicy: "Retain",
      volumeBindingMode: "Immediate",
    } as KubeObject);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

export interface ClaimOptions {
  /** Default ["ReadWriteOnce"]. */
  accessModes?: AccessMode[];
  /** Default "" (no class). */
  storageClassName?: string;
  /** A node the volume is reachable from only (PV nodeAffinity on kubernetes.io/hostname). */
  node?: string;
  /**
   * The CSI driver that "provisioned" the PV (its pv.kubernetes.io/provisioned-by annotation, as the CSI
   * external-provisioner writes it): the operator takes it as the claim's driver, so the CSI double's class
   * applies to the claim.
   */
  provisionedBy?: string;
  /** Labels, annotations and owners of the claim. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: KubeObject["metadata"]["ownerReferences"];
}

export interface BlockVolumeOptions extends ClaimOptions {
  namespace: string;
  claimName: string;
  /** Bytes, a multiple of 512. */
  size: number;
  /** Default random bytes. */
  content?: DeviceContent;
  /** PV name; default `<namespace>-<claimName>`. */
  pvName?: string;
}

export interface BlockVolumeFixture {
  namespace: string;
  claimName: string;
  pvName: string;
  device: string;
  file: string;
  size: number;
  /** Deletes the claim and the PV, detaches the loop device and deletes its file. */
  cleanup(): Promise<void>;
}

const nodeAffinity = (node: string) => ({
  required: {
    nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [node] }] }],
  },
});

/**
 * A PersistentVolume with `source` (its hostPath, local, ...) pre-bound to a claim of `claimName`, both of
 * `capacity` and `volumeMode`, as a provisioner would leave them. Filesystem and Block fixtures share it.
 */
export async function createPreboundClaim(
  client: KubeClient,
  p: ClaimOptions & {
    namespace: string;
    claimName: string;
    pvName: string;
    capacity: string;
    volumeMode: "Filesystem" | "Block";
    source: Record<string, unknown>;
    defaultAccessModes: AccessMode[];
  },
): Promise<void> {
  const accessModes = p.accessModes ?? p.defaultAccessModes;
  const storageClassName = p.storageClassName ?? "";
  await client.create(Resources.PersistentVolume, {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: {
      name: p.pvName,
      ...(p.provisionedBy ? { annotations: { "pv.kubernetes.io/provisioned-by": p.provisionedBy } } : {}),
    },
    spec: {
      capacity: { storage: p.capacity },
      volumeMode: p.volumeMode,
      accessModes,
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName,
      ...p.source,
      ...(p.node ? { nodeAffinity: nodeAffinity(p.node) } : {}),
      claimRef: { namespace: p.namespace, name: p.claimName },
    },
  } as KubeObject);
  await client.create(Resources.PersistentVolumeClaim, {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: p.claimName,
      namespace: p.namespace,
      ...(p.labels ? { labels: p.labels } : {}),
      ...(p.annotations ? { annotations: p.annotations } : {}),
      ...(p.ownerReferences ? { ownerReferences: p.ownerReferences } : {}),
    },
    spec: {
      volumeMode: p.volumeMode,
      accessModes,
      storageClassName,
      volumeName: p.pvName,
      resources: { requests: { storage: p.capacity } },
    },
  } as KubeObject);
}

/**
 * A PersistentVolume of volumeMode Block on `device` (a local volume pinned to `node`, else a hostPath of
 * type BlockDevice) pre-bound to a claim of volumeMode Block, both of `size` bytes.
 */
export async function createBlockClaimOn(
  client: KubeClient,
  device: string,
  options: Omit<BlockVolumeOptions, "content">,
): Promise<{ pvName: string }> {
  const { namespace, claimName, size } = options;
  const pvName = options.pvName ?? `${namespace}-${claimName}`;
  await createPreboundClaim(client, {
    ...options,
    pvName,
    capacity: String(size),
    volumeMode: "Block",
    // A local volume pinned to its node, else a hostPath of type BlockDevice.
    source: options.node ? { local: { path: device } } : { hostPath: { path: device, type: "BlockDevice" } },
    defaultAccessModes: ["ReadWriteOnce"],
  });
  return { pvName };
}

/** A loop device of `size` bytes filled with `content`, as a Block-mode PV pre-bound to a Block-mode claim. */
export async function createBlockVolume(client: KubeClient, options: BlockVolumeOptions): Promise<BlockVolumeFixture> {
  const loop = attachLoopDevice(options.size, options.content ?? "random");
  try {
    const { pvName } = await createBlockClaimOn(client, loop.device, options);
    return {
      namespace: options.namespace,
      claimName: options.claimName,
      pvName,
      device: loop.device,
      file: loop.file,
      size: options.size,
      cleanup: async () => {
        try {
          await deleteClaimAndVolume(client, options.namespace, options.claimName, pvName);
        } finally {
          loop.detach();
        }
      },
    };
  } catch (err) {
    loop.detach();
    throw err;
  }
}

/** Deletes a claim and its PV, ignoring the ones already gone. */
export async function deleteClaimAndVolume(
  client: KubeClient,
  namespace: string,
  claimName: string,
  pvName: string,
): Promise<void> {
  const ignoreGone = (err: unknown) => {
    if (!isNotFound(err)) throw err;
  };
  await client.delete(Resources.PersistentVolumeClaim, namespace, claimName).catch(ignoreGone);
  await client.delete(Resources.PersistentVolume, undefined, pvName).catch(ignoreGone);
}

/** Waits until a claim is Bound; returns its PV's name. */
export async function waitForBound(
  client: KubeClient,
  namespace: string,
  claimName: string,
  timeoutMs = 30_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pvc = await client.get<KubeObject & { spec: { volumeName?: string }; status?: { phase?: string } }>(
      Resources.PersistentVolumeClaim,
      namespace,
      claimName,
    );
    if (pvc.status?.phase === "Bound" && pvc.spec.volumeName) return pvc.spec.volumeName;
    if (Date.now() > deadline)
      throw new Error(`claim ${namespace}/${claimName} not Bound after ${timeoutMs} ms (${pvc.status?.phase})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
