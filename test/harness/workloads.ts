// Test fixtures for backups: a shared volume and a backup location as PersistentVolumes (hostPath
// directories on this machine) with ReadWriteMany claims, and VirtualMachineInstances (bare, or of
// VirtualMachines) whose hostDisk files are real files of random bytes on that volume. VMs may also have
// disks on claims of their own (persistentVolumeClaim or dataVolume volumes, Filesystem mode with a
// disk.img at the volume's root as CDI lays it out, or Block mode on a loop device), with random bytes.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { KubeClient } from "../../src/k8s/client.js";
import { Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { FIRST_NODE_ANNOTATION, instanceOf, type VirtualMachine } from "./kubevirt-vms.js";
import { isAlreadyExists, isNotFound } from "../../src/k8s/errors.js";
import {
  attachLoopDevice,
  createBlockClaimOn,
  deleteClaimAndVolume,
  createPreboundClaim,
  fill,
  type AccessMode,
  type ClaimOptions,
  type DeviceContent,
  type LoopDevice,
} from "./block-volumes.js";

export const NODE_MOUNT_PATH = "/var/lib/vmdisks";

export interface VolumeFixture {
  claimName: string;
  pvName: string;
  hostDir: string;
}

/** Options of a Filesystem-mode volume (createVolume); the defaults are the shared volume's. */
export interface VolumeOptions extends ClaimOptions {
  /** Capacity of the PV and request of the claim (a quantity, or bytes). Default 10Gi. */
  capacity?: string | number;
}

/**
 * A hostPath PersistentVolume pre-bound to a claim of the same name: ReadWriteMany, no StorageClass and
 * 10Gi unless `options` say otherwise (a node in the options pins the PV there with a nodeAffinity).
 */
export async function createVolume(
  client: KubeClient,
  namespace: string,
  claimName: string,
  hostDir: string,
  options: VolumeOptions = {},
): Promise<VolumeFixture> {
  mkdirSync(hostDir, { recursive: true });
  const pvName = `${namespace}-${claimName}`;
  await createPreboundClaim(client, {
    ...options,
    namespace,
    claimName,
    pvName,
    capacity: String(options.capacity ?? "10Gi"),
    volumeMode: "Filesystem",
    source: { hostPath: { path: hostDir, type: "Directory" } },
    defaultAccessModes: ["ReadWriteMany"],
  });
  return { claimName, pvName, hostDir };
}

export interface VmFixture {
  name: string;
  node?: string;
  phase?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /**
   * Sizes of its hostDisk files in bytes (default one disk of 64 KiB, or none when `claimDisks` are
   * given).
   */
  disks?: number[];
  /** Disks on claims of the VM's own, after the hostDisks (volumes disk<n>, n counting on from them). */
  claimDisks?: ClaimDiskSpec[];
}

/** A VM disk on a claim of its own. */
export interface ClaimDiskSpec extends ClaimOptions {
  /**
   * How the VM names it: a persistentVolumeClaim volume, or a dataVolume volume (a DataVolume of the
   * claim's name, Succeeded, owning the claim, as CDI leaves it after an import).
   */
  source: "persistentVolumeClaim" | "dataVolume";
  /** Filesystem (a disk.img of `size` bytes at the volume's root) or Block (a loop device of `size` bytes). */
  volumeMode: "Filesystem" | "Block";
  /** Bytes (a multiple of 512 for Block). */
  size: number;
  /** Default `<vm name>-disk<n>`. */
  claimName?: string;
  /** What is written on it: random bytes by default. */
  content?: DeviceContent;
}

/** A VM disk on a claim, as created: where its bytes are on this machine. */
export interface ClaimDiskFixture {
  namespace: string;
  vm: string;
  /** Its volume (and disk) name in the VMI spec. */
  volumeName: string;
  claimName: string;
  pvName: string;
  source: ClaimDiskSpec["source"];
  volumeMode: ClaimDiskSpec["volumeMode"];
  size: number;
  /** The loop device (Block) or the disk.img file (Filesystem) holding the disk's bytes. */
  path: string;
  /** Deletes the DataVolume (if any), the claim and the PV, and detaches or deletes the backing storage. */
  cleanup(): Promise<void>;
}

const hostDiskSizes = (vm: VmFixture): number[] => vm.disks ?? (vm.claimDisks?.length ? [] : [64 * 1024]);

/** Paths of a VM's disks relative to the shared volume. */
export const diskPaths = (namespace: string, vm: VmFixture): string[] =>
  hostDiskSizes(vm).map((_, i) => `${namespace}/${vm.name}/disk${i}.img`);

/** VM disks on claims created by createVm and createVirtualMachine, by `<namespace>/<vm>`. */
const claimDisksByVm = new Map<string, ClaimDiskFixture[]>();

/** The claim disks created for a VM (in volume order), with where their bytes are. */
export const claimDisksOf = (namespace: string, vm: string): ClaimDiskFixture[] =>
  claimDisksByVm.get(`${namespace}/${vm}`) ?? [];

/** Removes the claim disks created for the VMs of a namespace (all namespaces when undefined). */
export async function cleanupClaimDisks(namespace?: string): Promise<void> {
  const errors: unknown[] = [];
  for (const [key, disks] of [...claimDisksByVm]) {
    if (namespace !== undefined && !key.startsWith(`${namespace}/`)) continue;
    claimDisksByVm.delete(key);
    for (const d of disks) await d.cleanup().catch((err: unknown) => errors.push(err));
  }
  if (errors.length > 0) throw errors[0];
}

/** Writes the VM's disk files (random bytes); returns the VMI spec whose hostDisk volumes are those files. */
function writeDisks(namespace: string, sharedDir: string, vm: VmFixture): NonNullable<VirtualMachineInstance["spec"]> {
  const files = diskPaths(namespace, vm);
  hostDiskSizes(vm).forEach((size, i) => {
    const file = path.join(sharedDir, files[i]!);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(size));
  });
  return {
    domain: { devices: { disks: files.map((_, i) => ({ name: `disk${i}`, disk: { bus: "virtio" } })) } },
    volumes: files.map((f, i) => ({
      name: `disk${i}`,
      hostDisk: { path: `${NODE_MOUNT_PATH}/${f}`, type: "Disk", shared: true },
    })),
  };
}

/** The hostDisk files and the claim disks of a VM, and the VMI spec naming them all. */
async function createDisks(
  client: KubeClient,
  namespace: string,
  sharedDir: string,
  vm: VmFixture,
): Promise<NonNullable<VirtualMachineInstance["spec"]>> {
  const spec = writeDisks(namespace, sharedDir, vm);
  if (!vm.claimDisks?.length) return spec;
  const first = hostDiskSizes(vm).length;
  const disks: ClaimDiskFixture[] = [];
  claimDisksByVm.set(`${namespace}/${vm.name}`, disks);
  const volumes: Array<Record<string, unknown>> = [
    ...((spec.volumes ?? []) as unknown as Array<Record<string, unknown>>),
  ];
  const domain = spec.domain as { devices: { disks: Array<Record<string, unknown>> } };
  for (const [j, d] of vm.claimDisks.entries()) {
    const volumeName = `disk${first + j}`;
    const claimName = d.claimName ?? `${vm.name}-${volumeName}`;
    const disk =
      d.source === "dataVolume"
        ? await createDataVolume(client, { ...d, namespace, name: claimName })
        : await createClaimDisk(client, { ...d, namespace, claimName });
    disks.push({ ...disk, vm: vm.name, volumeName, source: d.source });
    domain.devices.disks.push({ name: volumeName, disk: { bus: "virtio" } });
    volumes.push(
      d.source === "dataVolume"
        ? { name: volumeName, dataVolume: { name: claimName } }
        : { name: volumeName, persistentVolumeClaim: { claimName } },
    );
  }
  return { ...spec, volumes: volumes as unknown as NonNullable<VirtualMachineInstance["spec"]>["volumes"] };
}

type ClaimDisk = Omit<ClaimDiskFixture, "vm" | "volumeName" | "source">;

/**
 * A claim of its own holding a VM disk of `size` random bytes (or `content`): Block mode on a loop device,
 * or Filesystem mode on a hostPath directory with the disk at `disk.img` (as CDI lays it out).
 */
export async function createClaimDisk(
  client: KubeClient,
  options: ClaimOptions & {
    namespace: string;
    claimName: string;
    volumeMode: "Filesystem" | "Block";
    size: number;
    content?: DeviceContent;
  },
): Promise<ClaimDisk> {
  const { namespace, claimName, size } = options;
  const accessModes: AccessMode[] = options.accessModes ?? ["ReadWriteOnce"];
  if (options.volumeMode === "Block") {
    const loop: LoopDevice = attachLoopDevice(size, options.content ?? "random");
    try {
      const { pvName } = await createBlockClaimOn(client, loop.device, { ...options, accessModes });
      return {
        namespace,
        claimName,
        pvName,
        volumeMode: "Block",
        size,
        path: loop.device,
        cleanup: async () => {
          try {
            await deleteClaimAndVolume(client, namespace, claimName, pvName);
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
  const hostDir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-claim-"));
  const image = path.join(hostDir, "disk.img");
  try {
    // A sparse file of the size (zero runs stay holes, as in an image CDI converted), then its content.
    writeFileSync(image, "");
    truncateSync(image, size);
    fill(image, size, options.content ?? "random");
    const { pvName } = await createVolume(client, namespace, claimName, hostDir, {
      ...options,
      accessModes,
      capacity: size,
    });
    return {
      namespace,
      claimName,
      pvName,
      volumeMode: "Filesystem",
      size,
      path: image,
      cleanup: async () => {
        try {
          await deleteClaimAndVolume(client, namespace, claimName, pvName);
        } finally {
          rmSync(hostDir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    rmSync(hostDir, { recursive: true, force: true });
    throw err;
  }
}

export const DataVolumeResource: ResourceType = {
  group: "cdi.kubevirt.io",
  version: "v1beta1",
  plural: "datavolumes",
  kind: "DataVolume",
  namespaced: true,
};

export type DataVolume = KubeObject & {
  spec: { source?: Record<string, unknown>; pvc?: Record<string, unknown> };
  status?: { phase?: string; progress?: string; claimName?: string };
};

/**
 * A CDI DataVolume as it is once its import Succeeded: the DataVolume (source blank), its claim of the
 * same name owned by it and bound (Filesystem with a disk.img, or Block on a loop device) holding the
 * disk's `size` bytes, and status.phase Succeeded.
 */
export async function createDataVolume(
  client: KubeClient,
  options: ClaimOptions & {
    namespace: string;
    name: string;
    volumeMode: "Filesystem" | "Block";
    size: number;
    content?: DeviceContent;
  },
): Promise<ClaimDisk & { dataVolume: DataVolume }> {
  const { namespace, name, size, volumeMode } = options;
  const accessModes: AccessMode[] = options.accessModes ?? ["ReadWriteOnce"];
  const dv = await client.create<DataVolume>(DataVolumeResource, {
    apiVersion: "cdi.kubevirt.io/v1beta1",
    kind: "DataVolume",
    metadata: { name, namespace, ...(options.labels ? { labels: options.labels } : {}) },
    spec: {
      source: { blank: {} },
      pvc: {
        accessModes,
        volumeMode,
        storageClassName: options.storageClassName ?? "",
        resources: { requests: { storage: String(size) } },
      },
    },
  });
  const claim = await createClaimDisk(client, {
    ...options,
    claimName: name,
    accessModes,
    annotations: { "cdi.kubevirt.io/storage.pod.phase": "Succeeded" },
    ownerReferences: [
      {
        apiVersion: "cdi.kubevirt.io/v1beta1",
        kind: "DataVolume",
        name,
        uid: dv.metadata.uid!,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  });
  const status = await client.patch<DataVolume>(
    DataVolumeResource,
    namespace,
    name,
    { status: { phase: "Succeeded", progress: "100.0%", claimName: name } },
    { subresource: "status" },
  );
  return {
    ...claim,
    dataVolume: status,
    cleanup: async () => {
      try {
        await client.delete(DataVolumeResource, namespace, name).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
      } finally {
        await claim.cleanup();
      }
    },
  };
}

/** Writes the VM's disk files (random bytes) and creates its VMI, Running on its node. */
export async function createVm(
  client: KubeClient,
  namespace: string,
  sharedDir: string,
  vm: VmFixture,
): Promise<VirtualMachineInstance & KubeObject> {
  const spec = await createDisks(client, namespace, sharedDir, vm);
  const phase = vm.phase ?? (vm.node ? "Running" : "Pending");
  return client.create<VirtualMachineInstance & KubeObject>(Resources.VirtualMachineInstance, {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachineInstance",
    metadata: {
      name: vm.name,
      namespace,
      labels: { app: "demo", ...(vm.node ? { "kubevirt.io/nodeName": vm.node } : {}), ...vm.labels },
      ...(vm.annotations ? { annotations: vm.annotations } : {}),
    },
    spec,
    status: { phase, ...(vm.node ? { nodeName: vm.node } : {}) },
  });
}

/**
 * Writes the VM's disk files and creates a VirtualMachine using them (runStrategy Always, or Halted when
 * `running` is false). A running VM with a node also gets its VMI on that node, made as the simulated
 * controller (kubevirt-vms.ts) makes one, so that the controller finds it already running there.
 */
export async function createVirtualMachine(
  client: KubeClient,
  namespace: string,
  sharedDir: string,
  vm: VmFixture & { running?: boolean },
): Promise<VirtualMachine> {
  const running = vm.running !== false;
  const labels = { app: "demo", ...vm.labels };
  const created = await client.create<VirtualMachine>(Resources.VirtualMachine, {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachine",
    metadata: {
      name: vm.name,
      namespace,
      labels,
      ...(vm.node ? { annotations: { [FIRST_NODE_ANNOTATION]: vm.node } } : {}),
    },
    spec: {
      runStrategy: running ? "Always" : "Halted",
      template: {
        metadata: { labels, ...(vm.annotations ? { annotations: vm.annotations } : {}) },
        spec: await createDisks(client, namespace, sharedDir, vm),
      },
    },
  });
  if (running && vm.node) {
    try {
      await client.create(Resources.VirtualMachineInstance, instanceOf(created, vm.node));
    } catch (err) {
      // The simulator was quicker, on the same node (see FIRST_NODE_ANNOTATION).
      if (!isAlreadyExists(err)) throw err;
    }
  }
  return created;
}

/** Moves a VMI to another node the way a completed live migration leaves it. */
export async function migrateVm(
  client: KubeClient,
  namespace: string,
  name: string,
  from: string,
  to: string,
): Promise<void> {
  const now = new Date().toISOString();
  await client.patch(Resources.VirtualMachineInstance, namespace, name, {
    metadata: { labels: { "kubevirt.io/nodeName": to } },
    status: {
      nodeName: to,
      migrationState: {
        sourceNode: from,
        targetNode: to,
        startTimestamp: now,
        endTimestamp: now,
        completed: true,
        failed: false,
      },
    },
  });
}
