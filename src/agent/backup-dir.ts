// Opens a backup's directory at the step's location: below the mounted claim's root (created on the way
// for a backup), or under the S3 bucket's prefix.
import type { S3Client } from "@aws-sdk/client-s3";
import type { LocationDir } from "../storage/location-dir.js";
import type { S3Location } from "../storage/s3-client.js";
import { objectKey } from "../storage/s3-client.js";
import { S3LocationDir } from "../storage/s3-location-dir.js";
import { FsLocationDir } from "./fs-location-dir.js";
import { withDir, withRoot } from "./safe-fs.js";

/** An object-store location and a client signed with its credentials. */
export interface ObjectStore {
  client: S3Client;
  location: S3Location;
}

/**
 * Runs `fn` with the backup's directory open: `backupPath` below `locationRoot` (a mounted claim; never
 * through a symlink, created if `create`), or below the prefix of `objectStore` when there is one.
 */
export async function withBackupDir<T>(
  where: { locationRoot: string; objectStore?: ObjectStore | undefined },
  backupPath: string,
  create: boolean,
  fn: (dir: LocationDir) => Promise<T>,
): Promise<T> {
  if (where.objectStore) return fn(objectStoreDir(where.objectStore, backupPath));
  return withRoot(where.locationRoot, (root) =>
    withDir(root, backupPath, { create }, (dir) => fn(new FsLocationDir(dir))),
  );
}

/** The directory `path` (relative to the location's root; "" for the root) of an object-store location. */
export function objectStoreDir(store: ObjectStore, path: string): S3LocationDir {
  const rel = path.replace(/^\/+|\/+$/g, "");
  const root = rel ? objectKey(store.location, rel) : (store.location.prefix ?? "").replace(/^\/+|\/+$/g, "");
  return new S3LocationDir(store.client, store.location.bucket, root);
}
