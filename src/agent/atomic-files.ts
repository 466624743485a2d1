// Crash-safe file replacement: a file appears under its final name complete or not at all.
//
// The agent can be killed at any moment (node drain, Job timeout, OOM). Everything it writes goes to a
// temporary name in the same directory first (same directory = same filesystem, so rename is atomic),
// is fsynced, renamed into place, and the directory is fsynced so the rename itself survives a power
// loss. Backups are committed file by file and the manifest last: a manifest on disk implies that every
// file it lists was already durable before it.
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

const TEMP_MARKER = ".tmp-";

/** `<dir>/.<name>.tmp-<random>`: hidden, beside the target, unique per attempt. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}${TEMP_MARKER}${randomBytes(6).toString("hex")}`);
}

/** Whether a directory entry is a temporary file of tempPathFor (a leftover of an interrupted write). */
export function isTempName(name: string): boolean {
  return /^\..+\.tmp-[0-9a-f]{12}$/.test(name);
}

/** Flushes a file's data and metadata to stable storage. */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    // fsync through a second descriptor is fine on Linux: it flushes the inode, whoever wrote it.
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a directory, making the creations, renames and deletions of its entries durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems (and some FUSE ones) refuse fsync on directories; their renames are as durable as
    // they get, so this is not an error worth failing a backup over.
    if (!isErrno(err, "EINVAL") && !isErrno(err, "ENOTSUP")) throw err;
  } finally {
    await handle.close();
  }
}

/**
 * mkdir -p that also makes the new directories durable: each directory it creates is an entry in its
 * parent, and a file committed inside a directory whose own entry is lost would be lost with it.
 */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // `first` is the topmost directory created; fsync its parent and every created directory's parent.
  for (let created = dir; ; created = dirname(created)) {
    await fsyncDir(dirname(created));
    if (created === first || dirname(created) === created) break;
  }
}

/**
 * Produces `target` atomically: `produce` writes the temporary path it is given; then the temporary
 * file is fsynced and renamed over `target`, and the directory fsynced. If `produce` or any step fails,
 * the temporary file is removed and `target` is left as it was.
 */
export async function commitAtomic<T>(target: string, produce: (tempPath: string) => Promise<T>): Promise<T> {
  const dir = dirname(target);
  await mkdirDurable(dir);
  const temp = tempPathFor(target);
  try {
    const result = await produce(temp);
    await fsyncFile(temp);
    await rename(temp, target);
    await fsyncDir(dir);
    return result;
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Writes `data` to `target` atomically and durably. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await commitAtomic(target, async (temp) => {
    const handle = await open(temp, "wx");
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
  });
}

/** Writes `value` as indented JSON (one trailing newline) to `target` atomically and durably. */
export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, `${JSON.stringify(value, null, 2)}\n`);
}

/** Deletes a file (if present) and makes the deletion durable before returning. */
export async function removeDurably(path: string): Promise<void> {
  await rm(path, { force: true });
  try {
    await fsyncDir(dirname(path));
  } catch (err) {
    if (!isErrno(err, "ENOENT")) throw err;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
