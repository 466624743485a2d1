// Reading and writing the manifests of a backup at its location (the types and checks are
// storage/manifest-schema.ts, the paths storage/layout.ts, re-exported here for the agent's modules).
//
// A VM's manifest is written last, after all its files are complete (atomic and durable on a claim, a
// completed upload on an object store: LocationDir.commit), so its presence is the commit record: a manifest that parses, belongs to this backup and round, and whose files all exist
// with the listed sizes is "complete". Sizes, not checksums, decide completeness because a rerun must
// decide quickly; restore.ts verifies every checksum before it touches a disk.
//
// The location is writable by others than the agent, so on a claim every file here is reached through
// safe-fs.ts below the backup's directory: a manifest, a file or a directory replaced by a symlink, a FIFO or a hard
// link is never followed or read (UnsafePathError), and a manifest is parsed and checked, never trusted.
import type { LocationDir } from "../storage/location-dir.js";
import type { PositionalSource } from "../storage/positional.js";
import { isErrno } from "./atomic-files.js";
import { FsLocationDir } from "./fs-location-dir.js";
import { readFully, writeFully } from "./positional-io.js";
import { unsafeCause, withRoot } from "./safe-fs.js";

import type { NodeManifest, WorkloadManifest } from "../storage/manifest-schema.js";
import { ManifestError, parseNodeManifest, parseWorkloadManifest } from "../storage/manifest-schema.js";
import {
  backupBlockDiskPath,
  backupFilesystemDiskPath,
  manifestFileSource,
  nodeManifestPath,
  workloadDefinitionPath,
  workloadManifestPath,
  workloadSecretsPath,
} from "../storage/layout.js";

export * from "../storage/manifest-schema.js";
export * from "../storage/layout.js";

// ---- read / write ----

/**
 * The backup's directory: open at its location (the agent's case), or a local path that the caller trusts
 * as a root (nothing below it is trusted either way).
 */
export type BackupDir = LocationDir | string;

export function inBackupDir<T>(backup: BackupDir, fn: (dir: LocationDir) => Promise<T>): Promise<T> {
  return typeof backup === "string" ? withRoot(backup, (root) => fn(new FsLocationDir(root))) : fn(backup);
}

/** Commits a VM's manifest; returns its path relative to the backup's directory. */
export async function writeWorkloadManifest(backup: BackupDir, manifest: WorkloadManifest): Promise<string> {
  const { namespace, name } = manifest.workload;
  // Validate what is written with the same rules as what is read: a manifest this code cannot read back
  // must never be committed.
  parseWorkloadManifest(JSON.parse(JSON.stringify(manifest)));
  const path = workloadManifestPath(namespace, name);
  await inBackupDir(backup, (dir) => writeJson(dir, path, manifest));
  return path;
}

export async function readWorkloadManifest(
  backup: BackupDir,
  namespace: string,
  name: string,
): Promise<WorkloadManifest> {
  return parseWorkloadManifest(await readJson(backup, workloadManifestPath(namespace, name)));
}

/** Commits a node run's manifest; returns its path relative to the backup's directory. */
export async function writeNodeManifest(backup: BackupDir, manifest: NodeManifest): Promise<string> {
  const path = nodeManifestPath(manifest.node, manifest.round);
  await inBackupDir(backup, (dir) => writeJson(dir, path, manifest));
  return path;
}

export async function readNodeManifest(backup: BackupDir, node: string, round: number): Promise<NodeManifest> {
  return parseNodeManifest(await readJson(backup, nodeManifestPath(node, round)));
}

/** Far above any real manifest (a node's with 10,000 VMs is a few MB); a larger file is not read. */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

// Reads `path` below the backup's directory (never through a symlink: an unsafe one is an UnsafePathError).
async function readJson(backup: BackupDir, path: string): Promise<unknown> {
  let text: string;
  try {
    text = await inBackupDir(backup, async (dir) => {
      const file = await dir.openFile(path);
      try {
        const { size } = await file.stat();
        if (size > MAX_MANIFEST_BYTES) {
          throw new ManifestError("Invalid", `${path} has ${size} bytes, more than any manifest`);
        }
        return (await readWhole(file, size)).toString("utf8");
      } finally {
        await file.close();
      }
    });
  } catch (err) {
    if (isErrno(err, "ENOENT")) throw new ManifestError("NotFound", `no manifest at ${path}`, { cause: err });
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ManifestError("Invalid", `${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

// ---- completeness ----

export interface CompletenessExpectation {
  backupUid: string;
  round: number;
  /** When given (non-empty), a manifest of another VM with the same name (recreated) is not complete. */
  workloadUid?: string;
  /** The shared volume's mount point, to check the files of an extractAt Restore manifest (in the snapshot). */
  sharedRoot?: string;
}

export type Completeness = { complete: true; manifest: WorkloadManifest } | { complete: false; reason: string };

/**
 * Whether the VM's manifest is complete for this round: it parses, has the expected backup uid and round
 * (and VM uid when given), and every listed file exists as a regular file with the listed size. Anything
 * unsafe on the way (see safe-fs.ts) makes it incomplete.
 */
export async function checkManifestComplete(
  backup: BackupDir,
  namespace: string,
  name: string,
  expect: CompletenessExpectation,
): Promise<Completeness> {
  return inBackupDir(backup, (dir) => checkComplete(dir, namespace, name, expect));
}

async function checkComplete(
  backup: LocationDir,
  namespace: string,
  name: string,
  expect: CompletenessExpectation,
): Promise<Completeness> {
  let manifest: WorkloadManifest;
  try {
    manifest = await readWorkloadManifest(backup, namespace, name);
  } catch (err) {
    if (err instanceof ManifestError) return { complete: false, reason: err.message };
    const unsafe = unsafeCause(err);
    if (unsafe) return { complete: false, reason: unsafe.message };
    throw err;
  }
  if (manifest.workload.namespace !== namespace || manifest.workload.name !== name) {
    return { complete: false, reason: `the manifest is for ${manifest.workload.namespace}/${manifest.workload.name}` };
  }
  if (manifest.backup.uid !== expect.backupUid) {
    return { complete: false, reason: `the manifest belongs to backup uid ${manifest.backup.uid}` };
  }
  if (manifest.round !== expect.round) {
    return { complete: false, reason: `the manifest is from round ${manifest.round}, not ${expect.round}` };
  }
  if (expect.workloadUid && manifest.workload.uid !== expect.workloadUid) {
    return {
      complete: false,
      reason: `the manifest is for VM uid ${manifest.workload.uid}, not ${expect.workloadUid}`,
    };
  }
  const sizeOf = async (dir: { openFile(rel: string): Promise<PositionalSource> }, path: string) => {
    const file = await dir.openFile(path);
    try {
      return (await file.stat()).size;
    } finally {
      await file.close();
    }
  };
  for (const file of manifest.files) {
    try {
      const source = manifestFileSource(manifest, file.path);
      let size: number;
      if (source.root === "backup") {
        size = await sizeOf(backup, source.path);
      } else if (expect.sharedRoot !== undefined) {
        size = await withRoot(expect.sharedRoot, (shared) => sizeOf(shared, source.path));
      } else {
        return { complete: false, reason: `${file.path} is in a kept snapshot on the shared volume, not checked` };
      }
      if (size !== file.bytes) {
        return { complete: false, reason: `${file.path} has ${size} bytes, the manifest lists ${file.bytes}` };
      }
    } catch (err) {
      if (isErrno(err, "ENOENT")) return { complete: false, reason: `${file.path} is missing` };
      const known = unsafeCause(err) ?? (err instanceof ManifestError ? err : undefined);
      if (known) return { complete: false, reason: known.message };
      throw err;
    }
  }
  const claimDisks = [
    ...(manifest.blockDisks ?? []).map((disk) => ({
      what: `the data of block disk ${disk.name}`,
      path: backupBlockDiskPath(namespace, name, disk.name),
      bytes: disk.storedBytes,
    })),
    ...(manifest.filesystemDisks ?? []).map((disk) => ({
      what: `the disk.img of filesystem disk ${disk.name}`,
      path: backupFilesystemDiskPath(namespace, name, disk.name),
      bytes: disk.bytes,
    })),
    ...(manifest.definition
      ? [{ what: "the definition", path: workloadDefinitionPath(namespace, name), bytes: manifest.definition.bytes }]
      : []),
    ...(manifest.secrets
      ? [{ what: "the Secrets file", path: workloadSecretsPath(namespace, name), bytes: manifest.secrets.bytes }]
      : []),
  ];
  for (const { what, path, bytes } of claimDisks) {
    try {
      const size = await sizeOf(backup, path);
      if (size !== bytes) {
        return { complete: false, reason: `${what} has ${size} bytes, the manifest lists ${bytes}` };
      }
    } catch (err) {
      if (isErrno(err, "ENOENT")) return { complete: false, reason: `${what} is missing` };
      const known = unsafeCause(err) ?? (err instanceof ManifestError ? err : undefined);
      if (known) return { complete: false, reason: known.message };
      throw err;
    }
  }
  return { complete: true, manifest };
}

/** Writes `value` as indented JSON (one trailing newline) to `path`, complete or not at all. */
export async function writeJson(dir: LocationDir, path: string, value: unknown, mode?: number): Promise<void> {
  const data = Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
  await dir.commit(path, (sink) => writeFully(sink, data, 0), mode);
}

/** The first `size` bytes of `file` (a shorter file is an error: it changed since its size was read). */
export async function readWhole(file: PositionalSource, size: number): Promise<Buffer> {
  const buffer = Buffer.alloc(size);
  const n = await readFully(file, buffer, size, 0);
  if (n !== size) throw new ManifestError("Invalid", `a file of ${size} bytes ended after ${n} while it was read`);
  return buffer;
}
