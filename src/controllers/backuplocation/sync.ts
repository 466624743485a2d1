// Carries out a sync of an object-store location (sync-plan.ts decides what): lists the indexes of the
// location's namespace in one paginated LIST, writes the missing ones of this cluster's finished runs, and
// creates the backups it lacks from the others, deletes the synced ones whose index is gone. Runs after
// each successful validation of the location, with the credentials the validation read.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { ANNOTATION_SYNCED_FROM } from "../../api/labels.js";
import type { BackupLocation, FederatedBackup, NodeSnapshot } from "../../api/v1alpha1/index.js";
import type { KubeClient } from "../../k8s/client.js";
import type { Informer } from "../../k8s/informer.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import {
  backupIndexKey,
  backupIndexOf,
  backupPathOfIndexKey,
  namespaceIndexPrefix,
  parseBackupIndex,
} from "../../storage/backup-index.js";
import { objectKey } from "../../storage/s3-client.js";
import type { Logger } from "../../telemetry/logger.js";
import { createIfAbsent, deleteIfExists, replaceStatus, writeStatus } from "../runtime/objects.js";
import { planSync } from "./sync-plan.js";
import { syncedBackup, syncedBackupStatus, syncedSteps } from "./synced-backup.js";

/** Far above any index (a backup of 1,000 nodes and 10,000 VMs is a few MB); a larger object is not read. */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

export interface SyncDeps {
  client: KubeClient;
  backups: Informer<FederatedBackup & KubeObject>;
  steps: Informer<NodeSnapshot & KubeObject>;
  log: Logger;
}

export interface SyncReport {
  pushed: number;
  pulled: number;
  pruned: number;
  conflicts: string[];
  /** Index directories that could not be read or created from, with why. */
  invalid: Array<{ path: string; message: string }>;
}

export async function syncLocation(deps: SyncDeps, location: BackupLocation, s3: S3Client): Promise<SyncReport> {
  const namespace = location.metadata.namespace!;
  const where = location.spec.s3!;
  const indexed = new Set<string>();
  const listPrefix = objectKey(where, namespaceIndexPrefix(namespace));
  const root = objectKey(where, "");
  for (let token: string | undefined, first = true; first || token; first = false) {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: where.bucket, Prefix: listPrefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) {
      const path = object.Key && backupPathOfIndexKey(object.Key.slice(root.length), namespace);
      if (path) indexed.add(path);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  }
  const plan = planSync({
    location,
    indexed,
    backups: deps.backups.list((b) => b.metadata.namespace === namespace),
    steps: deps.steps.list((s) => s.metadata.namespace === namespace),
  });
  const report: SyncReport = { pushed: 0, pulled: 0, pruned: 0, conflicts: plan.conflicts, invalid: [] };

  for (const { backup, steps, path } of plan.push) {
    const body = JSON.stringify(backupIndexOf(backup, steps));
    await s3.send(
      new PutObjectCommand({
        Bucket: where.bucket,
        Key: objectKey(where, backupIndexKey(path)),
        Body: body,
        ContentType: "application/json",
      }),
    );
    report.pushed++;
  }
  for (const path of plan.pull) {
    try {
      await pull(deps, location, s3, path);
      report.pulled++;
    } catch (err) {
      report.invalid.push({ path, message: err instanceof Error ? err.message : String(err) });
    }
  }
  for (const backup of plan.prune) {
    await deleteIfExists(deps.client, Resources.FederatedBackup, namespace, backup.metadata.name!);
    report.pruned++;
  }
  return report;
}

// Creates the backup of one index, then its status, then its steps with theirs. A sync interrupted half way
// finds the backup (its steps recorded nowhere yet, or some of them) next time: it is completed, not
// duplicated, since every create is idempotent and the plan looks at the steps' recorded directory.
async function pull(deps: SyncDeps, location: BackupLocation, s3: S3Client, path: string): Promise<void> {
  const { client } = deps;
  const where = location.spec.s3!;
  const response = await s3.send(
    new GetObjectCommand({ Bucket: where.bucket, Key: objectKey(where, backupIndexKey(path)) }),
  );
  if ((response.ContentLength ?? 0) > MAX_INDEX_BYTES) throw new Error(`the index of ${path} is larger than any index`);
  let value: unknown;
  try {
    value = JSON.parse(await response.Body!.transformToString());
  } catch {
    throw new Error(`the index of ${path} is not valid JSON`);
  }
  const index = parseBackupIndex(value, path);
  const manifest = syncedBackup(index, location);
  const namespace = manifest.metadata.namespace!;
  const backup =
    (await createIfAbsent(client, Resources.FederatedBackup, manifest)) ??
    (await client.get<FederatedBackup & KubeObject>(Resources.FederatedBackup, namespace, manifest.metadata.name!));
  // A backup of that name made here, not by a sync of this location: never written over.
  if (backup.metadata.annotations?.[ANNOTATION_SYNCED_FROM] !== location.metadata.name) {
    throw new Error(`FederatedBackup ${namespace}/${manifest.metadata.name} exists and was not synced from here`);
  }
  for (const { manifest: step, status } of syncedSteps(index, backup, location)) {
    const created =
      (await createIfAbsent(client, Resources.NodeSnapshot, step)) ??
      (await client.get<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, namespace, step.metadata.name!));
    if (!created.status?.phase) await writeStatus(client, Resources.NodeSnapshot, created, status);
  }
  // Written once, here, and last: whoever sees its phase (the digest, a restore) sees every step of it, and a
  // pull cut short before this is completed by the next sync. The backup controller never writes it.
  if (!backup.status?.phase) await replaceStatus(client, Resources.FederatedBackup, backup, syncedBackupStatus(index));
}
