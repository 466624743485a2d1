// The objects a sync creates from a location's index (pure): the FederatedBackup, marked synced and
// pointing at the BackupLocation it was found at, and its NodeSnapshots, owned by it, each recording this
// location (never the one the index names: an index is untrusted, and a location it named could send a
// restore's credentials elsewhere) and the backup's own directory, which parseBackupIndex checked.
import {
  ANNOTATION_SYNCED_FROM,
  ANNOTATION_SYNCED_UID,
  LABEL_BACKUP,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_NODE,
  LABEL_ROUND,
  LABEL_SYNCED,
} from "../../api/labels.js";
import type { BackupLocation, FederatedBackup, NodeSnapshot } from "../../api/v1alpha1/index.js";
import type { KubeObject } from "../../k8s/types.js";
import type { BackupIndex } from "../../storage/backup-index.js";
import { ownerRef } from "../runtime/agent-job.js";
import { sourceOfLocation } from "./sync-plan.js";

const API_VERSION = "fedbackup.io/v1alpha1";

/** The synced FederatedBackup (its status is written once it exists: syncedBackupStatus). */
export function syncedBackup(index: BackupIndex, location: BackupLocation): FederatedBackup & KubeObject {
  const { name, namespace, uid, labels, spec } = index.backup;
  // It runs nowhere: no inline location (the BackupLocation it was found at instead) and no ttl (it goes
  // when its index goes from the location).
  const { location: _inline, ttl: _ttl, ...kept } = spec;
  return {
    apiVersion: API_VERSION,
    kind: "FederatedBackup",
    metadata: {
      name,
      namespace,
      labels: { ...labels, [LABEL_SYNCED]: "true" },
      annotations: { [ANNOTATION_SYNCED_FROM]: location.metadata.name!, [ANNOTATION_SYNCED_UID]: uid },
    },
    spec: { ...kept, locationRef: { name: location.metadata.name! } },
  };
}

export const syncedBackupStatus = (index: BackupIndex): NonNullable<FederatedBackup["status"]> => index.backup.status;

/** The synced backup's steps, owned by `backup` (created, with its uid). */
export function syncedSteps(
  index: BackupIndex,
  backup: FederatedBackup & KubeObject,
  location: BackupLocation,
): Array<{ manifest: NodeSnapshot & KubeObject; status: NonNullable<NodeSnapshot["status"]> }> {
  const source = sourceOfLocation(location);
  return index.steps.map((step) => ({
    manifest: {
      apiVersion: API_VERSION,
      kind: "NodeSnapshot",
      metadata: {
        name: step.name,
        namespace: backup.metadata.namespace!,
        labels: {
          [LABEL_NAME]: "fedbackup",
          [LABEL_MANAGED_BY]: "fedbackup",
          [LABEL_BACKUP]: backup.metadata.name!,
          [LABEL_ROUND]: String(step.spec.round),
          ...(step.spec.node ? { [LABEL_NODE]: step.spec.node } : {}),
        },
        ownerReferences: [ownerRef({ apiVersion: API_VERSION, kind: "FederatedBackup", metadata: backup.metadata })],
      },
      spec: { ...step.spec, backupUID: backup.metadata.uid!, location: { ...source, path: step.spec.location.path } },
    },
    status: step.status,
  }));
}
