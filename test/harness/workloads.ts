// Test fixtures for backups: a shared volume and a backup location as PersistentVolumes (hostPath
// directories on this machine) with ReadWriteMany claims, and VirtualMachineInstances (bare, or of
// VirtualMachines) whose hostDisk files are real files of random bytes on that volume.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { KubeClient } from "../../src/k8s/client.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { FIRST_NODE_ANNOTATION, instanceOf, type VirtualMachine } from "./kubevirt-vms.js";
import { isAlreadyExists } from "../../src/k8s/errors.js";

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

/** Writes the VM's disk files (random bytes); returns the VMI spec whose hostDisk volumes are those files. */
function writeDisks(namespace: string, sharedDir: string, vm: VmFixture): NonNullable<VirtualMachineInstance["spec"]> {
  const files = diskPaths(namespace, vm);
  (vm.disks ?? [64 * 1024]).forEach((size, i) => {
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

/** Writes the VM's disk files (random bytes) and creates its VMI, Running on its node. */
export async function createVm(
  client: KubeClient,
  namespace: string,
  sharedDir: string,
  vm: VmFixture,
): Promise<VirtualMachineInstance & KubeObject> {
  const spec = writeDisks(namespace, sharedDir, vm);
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
        spec: writeDisks(namespace, sharedDir, vm),
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
