// The API resources fedbackup reads or writes, with their REST coordinates.
export interface ResourceType {
  group: string; // "" for the core group
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

const r = (group: string, version: string, plural: string, kind: string, namespaced = true): ResourceType => ({
  group,
  version,
  plural,
  kind,
  namespaced,
});

export const Resources = {
  FederatedBackup: r("fedbackup.io", "v1alpha1", "federatedbackups", "FederatedBackup"),
  WorkloadRestore: r("fedbackup.io", "v1alpha1", "workloadrestores", "WorkloadRestore"),
  BackupSchedule: r("fedbackup.io", "v1alpha1", "backupschedules", "BackupSchedule"),
  BackupLocation: r("fedbackup.io", "v1alpha1", "backuplocations", "BackupLocation"),
  NodeSnapshot: r("fedbackup.io", "v1alpha1", "nodesnapshots", "NodeSnapshot"),
  NodeRestore: r("fedbackup.io", "v1alpha1", "noderestores", "NodeRestore"),
  VirtualMachineInstance: r("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance"),
  VirtualMachine: r("kubevirt.io", "v1", "virtualmachines", "VirtualMachine"),
  VirtualMachineInstanceMigration: r(
    "kubevirt.io",
    "v1",
    "virtualmachineinstancemigrations",
    "VirtualMachineInstanceMigration",
  ),
  // CDI's DataVolume, read (never written) for a VM's definition.
  DataVolume: r("cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume"),
  VolumeSnapshot: r("snapshot.storage.k8s.io", "v1", "volumesnapshots", "VolumeSnapshot"),
  VolumeSnapshotClass: r("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", "VolumeSnapshotClass", false),
  // v1beta2: served by external-snapshotter v8.4 and later (v8.6 also serves v1, and stores v1beta2).
  VolumeGroupSnapshot: r("groupsnapshot.storage.k8s.io", "v1beta2", "volumegroupsnapshots", "VolumeGroupSnapshot"),
  VolumeGroupSnapshotClass: r(
    "groupsnapshot.storage.k8s.io",
    "v1beta2",
    "volumegroupsnapshotclasses",
    "VolumeGroupSnapshotClass",
    false,
  ),
  Node: r("", "v1", "nodes", "Node", false),
  Pod: r("", "v1", "pods", "Pod"),
  PersistentVolumeClaim: r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
  PersistentVolume: r("", "v1", "persistentvolumes", "PersistentVolume", false),
  ServiceAccount: r("", "v1", "serviceaccounts", "ServiceAccount"),
  Service: r("", "v1", "services", "Service"),
  ConfigMap: r("", "v1", "configmaps", "ConfigMap"),
  Secret: r("", "v1", "secrets", "Secret"),
  Namespace: r("", "v1", "namespaces", "Namespace", false),
  APIService: r("apiregistration.k8s.io", "v1", "apiservices", "APIService", false),
  Event: r("events.k8s.io", "v1", "events", "Event"),
  Job: r("batch", "v1", "jobs", "Job"),
  Lease: r("coordination.k8s.io", "v1", "leases", "Lease"),
  Role: r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
  RoleBinding: r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
} as const;

export const apiVersionOf = (t: ResourceType): string => (t.group ? `${t.group}/${t.version}` : t.version);

/** The resource of a kind this module knows, by apiVersion and kind (undefined when it knows none). */
export function resourceOfKind(apiVersion: string, kind: string): ResourceType | undefined {
  return Object.values(Resources).find((t: ResourceType) => t.kind === kind && apiVersionOf(t) === apiVersion);
}

/** The REST path of a collection (name undefined) or of one object, optionally a subresource of it. */
export function resourcePath(t: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  let p = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  if (t.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${t.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}
