// The agent's client for an object-store location, signed with the key pair the operator mounted into the
// Job from the location's Secret (one file per key). The mount is the kubelet's (its files are symlinks
// into a timestamped directory, which is how Secret volumes are updated in place), not the tenants', so it
// is read with plain reads; the key pair is never logged.
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { LocationSource } from "../storage/location.js";
import { ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY, s3ClientFor } from "../storage/s3-client.js";
import type { ObjectStore } from "./backup-dir.js";
import { isCode } from "./safe-fs.js";

/** The object store of `location` (none for a claim location), with the credentials found in `dir`. */
export async function objectStoreOf(location: LocationSource, dir: string): Promise<ObjectStore | undefined> {
  if (!location.s3) return undefined;
  const read = async (key: string) => {
    try {
      return (await readFile(path.join(dir, key), "utf8")).trim();
    } catch (err) {
      if (isCode(err, "ENOENT")) return "";
      throw err;
    }
  };
  const accessKeyId = await read(ACCESS_KEY_ID_KEY);
  const secretAccessKey = await read(SECRET_ACCESS_KEY_KEY);
  if (!accessKeyId || !secretAccessKey) {
    throw new Error(
      `the S3 credentials are not mounted at ${dir}: Secret ${location.s3.credentialsSecretRef.name} needs the keys ` +
        `${ACCESS_KEY_ID_KEY} and ${SECRET_ACCESS_KEY_KEY}`,
    );
  }
  return { client: s3ClientFor(location.s3, { accessKeyId, secretAccessKey }), location: location.s3 };
}

/** Parses the cleanup Job's --location (a LocationSource as JSON, no secret in it). */
export function parseLocationArgument(text: string): LocationSource {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error("--location is not JSON");
  }
  const v = value as LocationSource;
  const claim = v?.persistentVolumeClaim?.claimName;
  const s3 = v?.s3;
  if (typeof claim === "string" && claim && !s3) return { persistentVolumeClaim: { claimName: claim } };
  if (
    !claim &&
    s3 &&
    typeof s3.endpoint === "string" &&
    typeof s3.bucket === "string" &&
    typeof s3.credentialsSecretRef?.name === "string"
  )
    return { s3 };
  throw new Error("--location must name a persistentVolumeClaim or an s3 location (endpoint, bucket, credentials)");
}
