// A restore not planned yet may be waiting for its backup to finish (spec.waitForBackup): a backup's
// change wakes the new restores of its namespace.
import type { FederatedBackup, WorkloadRestore } from "../../api/v1alpha1/index.js";
import type { Informer } from "../../k8s/informer.js";
import { objectKey, type KubeObject } from "../../k8s/types.js";
import type { EventKeys } from "../runtime/controller.js";

export function restoresWaitingForBackup(
  restores: Pick<Informer<WorkloadRestore & KubeObject>, "list">,
): EventKeys<FederatedBackup & KubeObject> {
  return (_event, backup) =>
    restores
      .list((r) => r.metadata.namespace === backup.metadata.namespace && (r.status?.phase ?? "New") === "New")
      .map(objectKey);
}
