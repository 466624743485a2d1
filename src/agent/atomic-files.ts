// Crash-safe file replacement: a file appears under its final name complete or not at all.
//
// The agent can be killed at any moment (node drain, Job timeout, OOM). Everything it writes goes to a
// temporary name in the same directory first (same directory = same filesystem, so rename is atomic),
// is fsynced, renamed into place, and the directory is fsynced so the rename itself survives a power
// loss. Backups are committed file by file and the manifest last: a manifest on disk implies that every
// file it lists was already durable before it.
//
// The directory is an open SafeDir (safe-fs.ts): the temporary file is created there exclusively, and the
// rename and fsync act on that directory, wherever its path leads by then.
import { randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { SafeDir } from "./safe-fs.js";

export { isCode as isErrno } from "./safe-fs.js";

const TEMP_MARKER = ".tmp-";

/** `.<name>.tmp-<random>`: hidden, beside the target, unique per attempt. */
export function tempNameFor(name: string): string {
  return `.${name}${TEMP_MARKER}${randomBytes(6).toString("hex")}`;
}

/** Whether a directory entry is a temporary file of tempNameFor (a leftover of an interrupted write). */
export function isTempName(name: string): boolean {
  return /^\..+\.tmp-[0-9a-f]{12}$/.test(name);
}

/**
 * Produces `name` in `dir` atomically: `produce` writes the new temporary file it is handed; then that file
 * is fsynced and renamed over `name`, and the directory fsynced. If `produce` or any step fails, the
 * temporary file is removed and `name` is left as it was. `mode` is the new file's (less the umask).
 */
export async function commitAtomic<T>(
  dir: SafeDir,
  name: string,
  produce: (temp: FileHandle) => Promise<T>,
  mode = 0o666,
): Promise<T> {
  const temp = tempNameFor(name);
  const handle = await dir.createFile(temp, mode);
  let closed = false;
  try {
    const result = await produce(handle);
    await handle.sync();
    closed = true;
    // close() can report a deferred write error (NFS does this).
    await handle.close();
    await dir.rename(temp, name);
    await dir.sync();
    return result;
  } catch (err) {
    if (!closed) await handle.close().catch(() => {});
    await dir.unlink(temp).catch(() => {});
    throw err;
  }
}

/** Writes `data` to `name` in `dir` atomically and durably. */
export async function writeFileAtomic(dir: SafeDir, name: string, data: string | Uint8Array): Promise<void> {
  await commitAtomic(dir, name, (handle) => handle.writeFile(data));
}

/** Writes `value` as indented JSON (one trailing newline) to `name` in `dir` atomically and durably. */
export async function writeJsonAtomic(dir: SafeDir, name: string, value: unknown): Promise<void> {
  await writeFileAtomic(dir, name, `${JSON.stringify(value, null, 2)}\n`);
}

/** Deletes `rel` below `dir` (if present; a symlink as a name) and makes the deletion durable. */
export async function removeDurably(dir: SafeDir, rel: string): Promise<void> {
  if (!(await dir.unlink(rel))) return;
  const parent = rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : "";
  const opened = await dir.openDir(parent);
  try {
    await opened.sync();
  } finally {
    await opened.close();
  }
}
