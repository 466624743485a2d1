// The gauges alerts read (last success, VMs missing) follow each FederatedBackup in the cache, on every
// replica, leader or not, and from the first list on: a failover or restart does not reset them.
import type { FederatedBackup } from "../../api/v1alpha1/index.js";
import type { InformerHandler } from "../../k8s/informer.js";
import type { OperatorMetrics } from "../../telemetry/metrics.js";
import { backupState } from "./transitions.js";

export function backupStateGauges(
  metrics: Pick<OperatorMetrics, "observeBackupState" | "forgetBackup">,
): InformerHandler<FederatedBackup> {
  return (event, backup) => {
    const { namespace = "", name = "" } = backup.metadata;
    if (event === "delete") metrics.forgetBackup(namespace, name);
    else metrics.observeBackupState(namespace, name, backupState(backup.status));
  };
}
