// Where fedbackup keeps its own files on the shared volume, relative to the volume's root:
//
//   .fedbackup/snapshots/<backupNamespace>/<backupName>-<backupUid>/<node>-r<round>/<vmNamespace>/<vm>/<path>
//
// The node agent writes kept snapshots (and the working copies of a capture) there; the operator names the
// same directory when it asks for a deleted backup's snapshots to be removed. Both import this one module,
// so they cannot disagree.
//
// Each backup's directory is keyed by its namespace, name and uid: two backups named "nightly" in two
// namespaces, or a backup deleted and created again under the same name, never share a directory, so
// removing one backup's snapshots can never touch another's. The per-VM directory keeps two VMs that list
// the same file (a shared ISO) apart and lets one VM's leftovers be removed alone.

/** The top directory of everything fedbackup writes on the shared volume; no VM file may lie inside it. */
export const SHARED_VOLUME_TOP = ".fedbackup";

/** The directory that every backup's snapshots live in. */
export const SNAPSHOTS_DIR = `${SHARED_VOLUME_TOP}/snapshots`;

/** A FederatedBackup, as its snapshot directory is keyed. */
export interface BackupKey {
  namespace: string;
  name: string;
  uid: string;
}

/** A VM (namespace and name). */
export interface WorkloadKey {
  namespace: string;
  name: string;
}

/** Whether a path relative to the shared volume root lies in fedbackup's own directory. */
export function isInSharedVolumeTop(path: string): boolean {
  return path === SHARED_VOLUME_TOP || path.startsWith(`${SHARED_VOLUME_TOP}/`);
}

/** One backup's snapshots: `.fedbackup/snapshots/<namespace>/<name>-<uid>`. */
export function backupSnapshotsPath(backup: BackupKey): string {
  return [
    SNAPSHOTS_DIR,
    component("backup namespace", backup.namespace),
    component("backup directory", `${component("backup name", backup.name)}-${component("backup uid", backup.uid)}`),
  ].join("/");
}

/** One node run's snapshots: `<backup's>/<node>-r<round>`. */
export function snapshotRunPath(backup: BackupKey, node: string, round: number): string {
  if (!Number.isSafeInteger(round) || round < 0) throw new RangeError(`invalid round ${round}`);
  return `${backupSnapshotsPath(backup)}/${component("node", node)}-r${round}`;
}

/** One VM's snapshot in a node run: `<run's>/<vmNamespace>/<vm>`. */
export function workloadSnapshotPath(backup: BackupKey, node: string, round: number, vm: WorkloadKey): string {
  return `${snapshotRunPath(backup, node, round)}/${component("VM namespace", vm.namespace)}/${component("VM name", vm.name)}`;
}

/**
 * Whether `path` is the directory of a kept snapshot of `vm` (of any backup, node and round), as
 * workloadSnapshotPath spells it. A restore checks this before it reads from a snapshot a manifest points
 * to, so that an edited manifest cannot make it read another VM's files.
 */
export function isWorkloadSnapshotPath(path: string, vm: WorkloadKey): boolean {
  const parts = path.split("/");
  const top = SNAPSHOTS_DIR.split("/");
  // top..., backup namespace, name-uid, node-rN, VM namespace, VM name
  if (parts.length !== top.length + 5) return false;
  if (top.some((part, i) => parts[i] !== part)) return false;
  if (parts.some((part) => componentProblem(part) !== undefined)) return false;
  if (!/-r\d+$/.test(parts[top.length + 2] ?? "")) return false;
  return parts[top.length + 3] === vm.namespace && parts[top.length + 4] === vm.name;
}

// Each key becomes exactly one path component: nothing that could add, remove or climb a directory.
function component(kind: string, value: string): string {
  const problem = componentProblem(value);
  if (problem) throw new Error(`invalid ${kind} ${JSON.stringify(value)}: ${problem}`);
  return value;
}

function componentProblem(value: string): string | undefined {
  if (value.length === 0) return "it is empty";
  if (value === "." || value === "..") return "it is a dot name";
  if (value.includes("/")) return "it contains '/'";
  if (value.includes("\0")) return "it contains a NUL character";
  return undefined;
}
