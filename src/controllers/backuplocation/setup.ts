// Registers the BackupLocation controller with the manager: its cache (shared with the backups that read
// the locations) and its validations, each location again every spec.validationFrequency, each successful
// validation of an S3 location followed by its backup sync.
import { probeS3 } from "../../storage/s3-probe.js";
import { s3ClientFor } from "../../storage/s3-client.js";
import { backupCache, backupLocationCache, nodeSnapshotCache } from "../runtime/caches.js";
import { syncLocation } from "./sync.js";
import type { ControllerContext } from "../runtime/controller-context.js";
import { BackupLocationReconciler } from "./reconciler.js";

export const LOCATION_CONTROLLER = "backuplocation";

export function setupBackupLocation(ctx: ControllerContext): void {
  const { manager } = ctx;
  const locations = backupLocationCache(manager);
  // A location's sync compares its indexes with the namespace's backups and their steps.
  const backups = backupCache(manager);
  const steps = nodeSnapshotCache(manager);
  const reconciler = new BackupLocationReconciler({
    client: ctx.client,
    locations,
    log: ctx.log.child({ controller: LOCATION_CONTROLLER }),
    clock: ctx.clock,
    probe: (location, credentials) => probeS3(location, credentials),
    // A client per sync, closed after it: the key pair may have changed since the last one.
    sync: async (location, credentials) => {
      const s3 = s3ClientFor(location.spec.s3!, credentials);
      try {
        return await syncLocation(
          { client: ctx.client, backups, steps, log: ctx.log.child({ controller: LOCATION_CONTROLLER }) },
          location,
          s3,
        );
      } finally {
        s3.destroy();
      }
    },
    events: ctx.events,
  });
  manager.addController({ name: LOCATION_CONTROLLER, for: locations, reconcile: (key) => reconciler.reconcile(key) });
}
