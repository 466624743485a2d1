// Where a FederatedBackup writes: its inline spec.location, or the BackupLocation spec.locationRef names
// (same namespace), resolved before the run starts. A referenced location must be Available, validated for
// its current spec; otherwise the run waits (LocationNotFound, LocationUnavailable). Once the run started,
// the location its steps recorded is the one used (recordedLocation), whatever the BackupLocation says
// since: a location that becomes Unavailable mid-run does not stop the steps already planned.
import type { BackupLocation, FederatedBackup } from "../../api/v1alpha1/index.js";
import type { LocationSource } from "../../storage/location.js";
import type { ResolvedLocation } from "../runtime/recorded-location.js";

export { recordedLocation, type ResolvedLocation } from "../runtime/recorded-location.js";

export const LOCATION_NOT_FOUND = "LocationNotFound";
export const LOCATION_UNAVAILABLE = "LocationUnavailable";

export type LocationResolution =
  | { location: ResolvedLocation }
  | { waiting: { reason: typeof LOCATION_NOT_FOUND | typeof LOCATION_UNAVAILABLE; message: string } };

/** This backup's own directory below a prefix: `<prefix>/<namespace>/<name>-<uid8>`. */
export function backupDirectory(backup: FederatedBackup, pathPrefix: string | undefined): string {
  const prefix = pathPrefix?.replace(/^\/+|\/+$/g, "");
  const own = `${backup.metadata.namespace}/${backup.metadata.name}-${(backup.metadata.uid ?? "").slice(0, 8)}`;
  return prefix ? `${prefix}/${own}` : own;
}

/** The inline spec.location, resolved (undefined for a backup that references a BackupLocation). */
export function inlineLocation(backup: FederatedBackup): ResolvedLocation | undefined {
  const claim = backup.spec.location?.persistentVolumeClaim;
  if (!claim) return undefined;
  return {
    source: { persistentVolumeClaim: { claimName: claim.claimName } },
    path: backupDirectory(backup, claim.pathPrefix),
  };
}

/**
 * The location a run that has not started would write to. `find` looks a BackupLocation up by name in the
 * backup's namespace.
 */
export function resolveBackupLocation(
  backup: FederatedBackup,
  find: (name: string) => BackupLocation | undefined,
): LocationResolution {
  const ref = backup.spec.locationRef;
  if (!ref) {
    const inline = inlineLocation(backup);
    if (inline) return { location: inline };
    return {
      waiting: { reason: LOCATION_NOT_FOUND, message: "the backup names neither spec.location nor spec.locationRef" },
    };
  }
  const where = `BackupLocation ${backup.metadata.namespace}/${ref.name} (spec.locationRef)`;
  const found = find(ref.name);
  if (!found) {
    return {
      waiting: {
        reason: LOCATION_NOT_FOUND,
        message: `${where} does not exist; the backup starts once it does and is Available`,
      },
    };
  }
  const status = found.status;
  if (status?.phase !== "Available" || status.observedGeneration !== found.metadata.generation) {
    const why =
      status?.phase === "Unavailable"
        ? `is Unavailable (${status.reason ?? "no reason"}: ${status.message ?? ""})`
        : status?.phase === "Available"
          ? "has changed since it was last validated"
          : "has not been validated yet";
    return {
      waiting: { reason: LOCATION_UNAVAILABLE, message: `${where} ${why}; the backup starts once it is Available` },
    };
  }
  const spec = found.spec;
  const source: LocationSource = spec.s3
    ? { s3: spec.s3 }
    : { persistentVolumeClaim: { claimName: spec.persistentVolumeClaim!.claimName } };
  return {
    location: { source, path: backupDirectory(backup, spec.persistentVolumeClaim?.pathPrefix) },
  };
}
