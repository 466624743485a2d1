// An S3 BackupLocation for tests and what backs up to it, against the object store of test/harness.
import type { BackupLocation, FederatedBackup } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { startObjectStore, weedBinary, type ObjectStore } from "../harness/object-store.js";
import { adminClient, backupManifest, waitFor, type BackupEnv } from "./operator-env.js";

/** The bucket the S3 locations of the tests use. */
export const BUCKET = "offsite";
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** The credentials Secret and an S3 BackupLocation named `name` in `namespace`, once it is Available. */
export async function s3Location(
  store: ObjectStore,
  namespace: string,
  name: string,
  prefix: string,
  client = adminClient(),
): Promise<void> {
  await client.apply(Resources.Secret, {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: `${name}-credentials`, namespace },
    type: "Opaque",
    data: { AWS_ACCESS_KEY_ID: b64(store.accessKeyId), AWS_SECRET_ACCESS_KEY: b64(store.secretAccessKey) },
  } as KubeObject);
  await client.create(Resources.BackupLocation, {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "BackupLocation",
    metadata: { name, namespace },
    spec: {
      s3: { ...store.location(BUCKET, prefix), credentialsSecretRef: { name: `${name}-credentials` } },
      validationFrequency: "10s",
    },
  });
  await waitFor(`BackupLocation ${name} to be Available`, 30_000, async () => {
    const l = await client.get<BackupLocation & KubeObject>(Resources.BackupLocation, namespace, name);
    return l.status?.phase === "Available" ? true : undefined;
  });
}

/** A FederatedBackup of the env's shared volume to the BackupLocation `location`. */
export function backupTo(env: BackupEnv, name: string, location: string): FederatedBackup & KubeObject {
  const manifest = backupManifest(env, name, { snapshot: { method: "Copy" } });
  delete manifest.spec.location;
  return { ...manifest, spec: { ...manifest.spec, locationRef: { name: location } } };
}

/**
 * A real S3 server with `buckets`, for a before() hook: a cold cache builds weed first
 * (hack/objectstore/build.sh), which may take many minutes, so the hook's timeout is raised for that part.
 */
export async function objectStoreFor(hook: Mocha.Context, buckets: string[]): Promise<ObjectStore> {
  const timeout = hook.timeout();
  hook.timeout(30 * 60_000);
  weedBinary();
  hook.timeout(timeout);
  return startObjectStore({ buckets });
}

/**
 * Deletes the BackupLocations of `namespace`: left behind, each would be validated every few seconds by the
 * operators of the tests that follow, whose request counts and events must not see them.
 */
export async function deleteBackupLocations(namespace: string): Promise<void> {
  const client = adminClient();
  const locations = await client.list<BackupLocation & KubeObject>(Resources.BackupLocation, { namespace });
  for (const l of locations.items) await client.delete(Resources.BackupLocation, namespace, l.metadata.name!);
}
