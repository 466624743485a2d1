// Registers the BackupLocation controller with the manager: its cache (shared with the backups that read
// the locations) and its validations, each location again every spec.validationFrequency.
import { probeS3 } from "../../storage/s3-probe.js";
import { backupLocationCache } from "../runtime/caches.js";
import type { ControllerContext } from "../runtime/controller-context.js";
import { BackupLocationReconciler } from "./reconciler.js";

export const LOCATION_CONTROLLER = "backuplocation";

export function setupBackupLocation(ctx: ControllerContext): void {
  const { manager } = ctx;
  const locations = backupLocationCache(manager);
  const reconciler = new BackupLocationReconciler({
    client: ctx.client,
    locations,
    log: ctx.log.child({ controller: LOCATION_CONTROLLER }),
    clock: ctx.clock,
    probe: (location, credentials) => probeS3(location, credentials),
  });
  manager.addController({ name: LOCATION_CONTROLLER, for: locations, reconcile: (key) => reconciler.reconcile(key) });
}
