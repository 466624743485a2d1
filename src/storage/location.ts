// Where backups are stored, as every step spells it: a PersistentVolumeClaim mounted into the agent's Job,
// or an S3 bucket reached with a Secret's key pair mounted there. One shape for NodeSnapshot, NodeRestore
// and the cleanup Job, resolved by the operator from the FederatedBackup (its inline claim or its
// BackupLocation) and recorded in the step, so that the agent writes where the step says.
import type { S3Location } from "./s3-client.js";

export interface LocationSource {
  persistentVolumeClaim?: { claimName: string };
  s3?: S3Location;
}

/** One string per location, equal for two sources that store in the same place (claim, or bucket and prefix). */
export function locationIdentity(source: LocationSource): string {
  if (source.persistentVolumeClaim) return `pvc:${source.persistentVolumeClaim.claimName}`;
  const s3 = source.s3!;
  return `s3:${s3.endpoint.replace(/\/+$/, "")}/${s3.bucket}/${(s3.prefix ?? "").replace(/^\/+|\/+$/g, "")}`;
}

/** For messages: "PersistentVolumeClaim backups" or "s3://bucket/prefix at https://host". */
export function describeLocation(source: LocationSource): string {
  if (source.persistentVolumeClaim) return `PersistentVolumeClaim ${source.persistentVolumeClaim.claimName}`;
  const s3 = source.s3!;
  const prefix = (s3.prefix ?? "").replace(/^\/+|\/+$/g, "");
  return `s3://${s3.bucket}${prefix ? `/${prefix}` : ""} at ${s3.endpoint}`;
}

/** The source of a step's location, without the step's own fields (a backup's path). */
export function locationSourceOf(location: LocationSource): LocationSource {
  return location.persistentVolumeClaim
    ? { persistentVolumeClaim: { claimName: location.persistentVolumeClaim.claimName } }
    : { s3: location.s3! };
}
