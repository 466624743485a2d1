// Test fixtures for backups: a shared volume and a backup location as PersistentVolumes (hostPath
// directories on this machine) with ReadWriteMany claims, and VirtualMachineInstances whose hostDisk
// files are real files of random bytes on that volume.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { KubeClient } from "../../src/k8s/client.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";

export const NODE_MOUNT_PATH = "/var/lib/vmdisks";

export interface VolumeFixture {
  claimName: string;
  pvName: string;
  hostDir: string;
}

/** A hostPath PersistentVolume pre-bound to a ReadWriteMany claim of the same name. */
export async function createVolume(
  client: KubeClient,
  namespace: string,
  claimName: string,
  hostDir: string,
): Promise<VolumeFixture> {
  mkdirSync(hostDir, { recursive: true });
  const pvName = `${namespace}-${claimName}`;
  await client.create(Resources.PersistentVolume, {
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name: pvName },
    spec: {
      capacity: { storage: "10Gi" },
      accessModes: ["ReadWriteMany"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: "",
      hostPath: { path: hostDir, type: "Directory" },
      claimRef: { namespace, name: claimName },
    },
  } as KubeObject);
  await client.create(Resources.PersistentVolumeClaim, {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: claimName, namespace },
    spec: {
      accessModes: ["ReadWriteMany"],
      storageClassName: "",
      volumeName: pvName,
      resources: { requests: { storage: "10Gi" } },
    },
  } as KubeObject);
  return { claimName, pvName, hostDir };
}

export interface VmFixture {
  name: string;
  node?: string;
  phase?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Sizes of its disk files in bytes (default one disk of 64 KiB). */
  disks?: number[];
}

/** Paths of a VM's disks relative to the shared volume. */
export const diskPaths = (namespace: string, vm: VmFixture): string[] =>
  (vm.disks ?? [64 * 1024]).map((_, i) => `${namespace}/${vm.name}/disk${i}.img`);

/** Writes the VM's disk files (random bytes) and creates its VMI, Running on its node. */
export async function createVm(
  client: KubeClient,
  namespace: string,
  sharedDir: string,
  vm: VmFixture,
): Promise<VirtualMachineInstance & KubeObject> {
  const files = diskPaths(namespace, vm);
  (vm.disks ?? [64 * 1024]).forEach((size, i) => {
    const file = path.join(sharedDir, files[i]!);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(size));
  });
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
    spec: {
      domain: { devices: { disks: files.map((_, i) => ({ name: `disk${i}`, disk: { bus: "virtio" } })) } },
      volumes: files.map((f, i) => ({
        name: `disk${i}`,
        hostDisk: { path: `${NODE_MOUNT_PATH}/${f}`, type: "Disk", shared: true },
      })),
    },
    status: { phase, ...(vm.node ? { nodeName: vm.node } : {}) },
  });
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
