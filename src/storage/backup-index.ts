// A backup's index at an object-store location: the FederatedBackup and its node steps as the cluster that
// ran it last saw them, written once the run is over, so that another cluster given the same location can
// list the backups there and restore from them (backup sync). One small object per backup, all under one
// prefix, so that a sync lists them in one paginated LIST instead of walking every VM's files:
//
//   <prefix>/.fedbackup/index/<namespace>/<name>-<uid8>.json   (the backup's directory is <namespace>/<name>-<uid8>)
//
// An index comes from a location others can write to: it is parsed as untrusted. The checks here keep it
// to its own namespace and directory; the API server checks the rest (the CRDs' schemas) when the synced
// objects are created, and whatever a restore then reads is checked as any backup is (manifests, sha256).
import type { FederatedBackup, NodeSnapshot } from "../api/v1alpha1/index.js";

export const BACKUP_INDEX_SCHEMA_VERSION = 1;
/** Where the indexes are, below a location's prefix. */
export const BACKUP_INDEX_DIR = ".fedbackup/index";

export interface BackupIndex {
  schemaVersion: typeof BACKUP_INDEX_SCHEMA_VERSION;
  backup: {
    namespace: string;
    name: string;
    uid: string;
    labels?: Record<string, string>;
    spec: FederatedBackup["spec"];
    status: NonNullable<FederatedBackup["status"]>;
  };
  steps: Array<{ name: string; spec: NodeSnapshot["spec"]; status: NonNullable<NodeSnapshot["status"]> }>;
}

/** Phases of a run whose index is written (and so synced): over, with something to restore. */
export const INDEXED_PHASES = ["Completed", "PartiallyFailed"] as const;

const MAX_STEPS = 10_000;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The index key of a backup's directory `<namespace>/<name>-<uid8>`, relative to the location's prefix. */
export function backupIndexKey(backupPath: string): string {
  return `${BACKUP_INDEX_DIR}/${backupPath}.json`;
}

/** The prefix under which the indexes of `namespace` are listed. */
export const namespaceIndexPrefix = (namespace: string): string => `${BACKUP_INDEX_DIR}/${namespace}/`;

/**
 * The backup directory an index key names (`<namespace>/<dir>`), or undefined for a key that is not an index
 * of `namespace` (another namespace's, a nested or oddly named key).
 */
export function backupPathOfIndexKey(key: string, namespace: string): string | undefined {
  const prefix = namespaceIndexPrefix(namespace);
  if (!key.startsWith(prefix) || !key.endsWith(".json")) return undefined;
  const dir = key.slice(prefix.length, -".json".length);
  return DNS_SUBDOMAIN.test(dir) && dir.length <= 253 ? `${namespace}/${dir}` : undefined;
}

/** The index of a finished run: the backup and its steps as they are. */
export function backupIndexOf(backup: FederatedBackup, steps: readonly NodeSnapshot[]): BackupIndex {
  const { namespace, name, uid, labels } = backup.metadata;
  return {
    schemaVersion: BACKUP_INDEX_SCHEMA_VERSION,
    backup: {
      namespace: namespace!,
      name: name!,
      uid: uid!,
      ...(labels && Object.keys(labels).length ? { labels } : {}),
      spec: backup.spec,
      status: backup.status ?? {},
    },
    steps: steps.map((s) => ({ name: s.metadata.name!, spec: s.spec, status: s.status ?? {} })),
  };
}

export class BackupIndexError extends Error {
  override readonly name = "BackupIndexError";
}

/**
 * Checks an index read from the location at the key of `backupPath` (`<namespace>/<dir>`): of this
 * schema, a backup of that namespace in a phase that is over, and every step of it recording that very
 * directory. Throws a BackupIndexError naming what is wrong.
 */
export function parseBackupIndex(value: unknown, backupPath: string): BackupIndex {
  const namespace = backupPath.split("/")[0]!;
  const fail = (what: string): never => {
    throw new BackupIndexError(`the index of ${backupPath} ${what}`);
  };
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(value)) return fail("is not a JSON object");
  if (value.schemaVersion !== BACKUP_INDEX_SCHEMA_VERSION)
    return fail(`has schemaVersion ${String(value.schemaVersion)}`);
  const backup = value.backup;
  if (!isObject(backup)) return fail("has no backup");
  if (backup.namespace !== namespace) return fail(`is of namespace ${JSON.stringify(backup.namespace)}`);
  if (typeof backup.name !== "string" || !DNS_SUBDOMAIN.test(backup.name) || backup.name.length > 253)
    return fail("has no valid backup name");
  if (typeof backup.uid !== "string" || backup.uid.length === 0 || backup.uid.length > 64)
    return fail("has no valid backup uid");
  if (!backupPath.endsWith(`/${backup.name}-${backup.uid.slice(0, 8)}`))
    return fail(`is of backup ${backup.name} (uid ${backup.uid}), which would not be stored there`);
  if (backup.labels !== undefined && !isStringMap(backup.labels)) return fail("has labels that are not strings");
  if (!isObject(backup.spec)) return fail("has no backup spec");
  if (!isObject(backup.status)) return fail("has no backup status");
  if (!(INDEXED_PHASES as readonly unknown[]).includes(backup.status.phase))
    return fail(`is of a run in phase ${JSON.stringify(backup.status.phase)}`);
  const steps = value.steps;
  if (!Array.isArray(steps) || steps.length > MAX_STEPS) return fail("has no list of steps");
  for (const [i, step] of steps.entries()) {
    if (!isObject(step)) return fail(`has a step ${i} that is not an object`);
    if (typeof step.name !== "string" || !DNS_SUBDOMAIN.test(step.name) || step.name.length > 253)
      return fail(`has a step ${i} without a valid name`);
    if (!isObject(step.spec) || !isObject(step.status)) return fail(`has a step ${step.name} without spec or status`);
    if (step.spec.backupName !== backup.name) return fail(`has a step ${step.name} of another backup`);
    const location = step.spec.location;
    if (!isObject(location) || location.path !== backupPath)
      return fail(`has a step ${step.name} that wrote elsewhere than ${backupPath}`);
    if (step.spec.node !== undefined && (typeof step.spec.node !== "string" || !DNS_SUBDOMAIN.test(step.spec.node)))
      return fail(`has a step ${step.name} with an invalid node`);
  }
  return value as unknown as BackupIndex;
}

function isStringMap(v: unknown): boolean {
  return (
    typeof v === "object" &&
    v !== null &&
    Object.entries(v).every(([k, x]) => typeof x === "string" && k.length <= 316 && x.length <= 63)
  );
}
