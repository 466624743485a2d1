// A backup not started yet may be waiting for its BackupLocation to exist or become Available: a location's
// change wakes the new backups of its namespace that reference it.
import type { BackupLocation, FederatedBackup } from "../../api/v1alpha1/index.js";
import type { Informer } from "../../k8s/informer.js";
import { objectKey, type KubeObject } from "../../k8s/types.js";
import type { EventKeys } from "../runtime/controller.js";

export function backupsWaitingForLocation(
  backups: Pick<Informer<FederatedBackup & KubeObject>, "list">,
): EventKeys<BackupLocation & KubeObject> {
  return (_event, location) =>
    backups
      .list(
        (b) =>
          b.metadata.namespace === location.metadata.namespace &&
          b.spec.locationRef?.name === location.metadata.name &&
          (b.status?.phase ?? "New") === "New",
      )
      .map(objectKey);
}
