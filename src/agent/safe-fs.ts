// Opening files below a trusted directory when everything below it may have been prepared by a tenant.
//
// The agent runs as root with CAP_DAC_OVERRIDE, CAP_CHOWN and CAP_FOWNER, and reads and writes directories
// that tenants can write too: the shared volume (from a guest with a shared filesystem, from a
// virt-launcher pod) and the backup location (from any pod of the namespace that mounts its claim). A path
// there is hostile input: a disk replaced by a symbolic link to another VM's disk or to a host file, a
// directory swapped for a symlink so that a write lands elsewhere, a hard link to someone else's file, a
// FIFO that would hang the agent. So every path below a root is resolved here, and only here:
//
// - Node has no openat(2). A directory open as descriptor D can be named again as /proc/self/fd/D, a magic
//   link the kernel resolves to that very directory, whatever path leads to it now; /proc/self/fd/D/<name>
//   then resolves like openat(D, name). An operation on it is stable against the directory being renamed
//   or its path being swapped for a symlink after it was opened.
// - Paths are walked one component at a time, each directory opened with O_DIRECTORY|O_NOFOLLOW, so no
//   symlink is followed at any component; nothing here follows a symlink even to look at it (lstat only).
// - A file is lstat'ed and refused unless it is a regular file with a single link, then opened with
//   O_NOFOLLOW|O_NONBLOCK (O_NONBLOCK: a FIFO swapped in meanwhile cannot block the open) and fstat'ed: the
//   descriptor must be that same regular file (device and inode), and /proc/self/fd/N must read back as the
//   path that was walked.
// - New files are created with O_CREAT|O_EXCL|O_NOFOLLOW only: an existing file is never opened for writing.
// - Removal unlinks names (which never follows a symlink) and descends only into directories it opened
//   itself, listing them through their descriptor.
//
// Linux only (it needs /proc). The caller names the root (a mount point) and trusts it; nothing below it is.
import { constants, type BigIntStats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { lstat, mkdir, open, readdir, readlink, rename, rmdir, unlink } from "node:fs/promises";
import { posix } from "node:path";

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;
const DIRECTORY_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

export type UnsafeReason =
  /** A symbolic link where a file or directory was expected. */
  | "SymbolicLink"
  /** A FIFO, socket, device or directory where a regular file was expected. */
  | "NotRegularFile"
  /** Something other than a directory where a directory was expected. */
  | "NotDirectory"
  /** A regular file with more than one link: it may be another file's data under a second name. */
  | "HardLink"
  /** What was opened is not what was checked (it was moved or replaced meanwhile). */
  | "Replaced"
  /** The path is not a plain relative path (empty component, "..", absolute, NUL). */
  | "InvalidPath";

/** A path refused because following or opening it could reach something else than it names. */
export class UnsafePathError extends Error {
  override readonly name = "UnsafePathError";
  constructor(
    readonly reason: UnsafeReason,
    /** The path concerned, relative to the root it was opened below. */
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** The UnsafePathError behind `err` (itself or one of its causes), if any. */
export function unsafeCause(err: unknown): UnsafePathError | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 10 && current instanceof Error; depth++) {
    if (current instanceof UnsafePathError) return current;
    current = current.cause;
  }
  return undefined;
}

/** The path through which the kernel reopens what descriptor `fd` refers to. */
export function descriptorPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/**
 * An open directory below a trusted root, and the one way to reach what is inside it. Close it when done
 * (the FileHandles it returns are the caller's to close too).
 */
export class SafeDir {
  private constructor(
    private readonly handle: FileHandle,
    /** Relative to the root ("" for the root itself); for messages. */
    readonly path: string,
    /** What /proc/self/fd must show for this directory. */
    private readonly realPath: string,
  ) {}

  /** Opens the trusted root. The caller vouches for `root` itself (it may be reached through symlinks). */
  static async openRoot(root: string): Promise<SafeDir> {
    const handle = await open(root, O_RDONLY | O_DIRECTORY);
    try {
      return new SafeDir(handle, "", await readlink(descriptorPath(handle.fd)));
    } catch (err) {
      await handle.close();
      throw new Error(`cannot read back ${root} through /proc/self/fd (is /proc mounted?)`, { cause: err });
    }
  }

  get fd(): number {
    return this.handle.fd;
  }

  /** `name` (one component) in this directory, as a path that resolves like openat(this, name). */
  entryPath(name: string): string {
    return `${descriptorPath(this.fd)}/${checkComponent(name, this.relative(name))}`;
  }

  /** `rel` below this directory, relative to the root: for messages. */
  relative(rel: string): string {
    return this.path === "" ? rel : rel === "" ? this.path : `${this.path}/${rel}`;
  }

  /**
   * Opens the directory `rel` below this one ("" opens this one again). With `create`, missing components
   * are created one by one (mode `mode`, default 0o777 less the umask) and each creation is made durable.
   */
  async openDir(rel: string, opts: { create?: boolean; mode?: number } = {}): Promise<SafeDir> {
    const names = this.components(rel);
    if (names.length === 0) return this.reopen();
    // `opened` is the deepest directory opened so far (undefined: none yet, this one).
    let opened: SafeDir | undefined;
    try {
      for (const name of names) {
        const next = await (opened ?? this).child(name, opts.create ?? false, opts.mode ?? 0o777);
        await opened?.close();
        opened = next;
      }
      return opened ?? this.reopen();
    } catch (err) {
      await opened?.close();
      throw onTheWay(err, this.relative(rel));
    }
  }

  /** Opens the regular file `rel` for reading; refuses anything else (see UnsafePathError). */
  async openFile(rel: string): Promise<FileHandle> {
    return this.inParent(rel, false, (dir, name) => dir.openFileHere(name));
  }

  /**
   * What `rel` is, without following it: undefined when it does not exist (nor its directory). Throws an
   * UnsafePathError when a directory on the way is not a plain directory.
   */
  async entryStat(rel: string): Promise<BigIntStats | undefined> {
    return this.inParent(
      rel,
      false,
      async (dir, name) => {
        try {
          return await lstat(dir.entryPath(name), { bigint: true });
        } catch (err) {
          if (isCode(err, "ENOENT")) return undefined;
          throw relabel(err, dir.relative(name));
        }
      },
      () => undefined,
    );
  }

  /**
   * Creates the new file `name` in this directory (O_CREAT|O_EXCL|O_NOFOLLOW: fails if anything, even a
   * dangling symlink, has that name) and opens it for writing. `mode` is less the umask (default 0o600).
   */
  async createFile(name: string, mode = 0o600): Promise<FileHandle> {
    try {
      return await open(this.entryPath(name), CREATE_FLAGS, mode);
    } catch (err) {
      throw relabel(err, this.relative(name));
    }
  }

  /** Renames `from` to `to`, both names in this directory (replacing `to` if it exists, like rename(2)). */
  async rename(from: string, to: string): Promise<void> {
    try {
      await rename(this.entryPath(from), this.entryPath(to));
    } catch (err) {
      throw relabel(err, `${this.relative(from)} -> ${to}`);
    }
  }

  /** Removes the name `rel` (a file or a symlink, never what it points to). False if it did not exist. */
  async unlink(rel: string): Promise<boolean> {
    return this.inParent(
      rel,
      false,
      async (dir, name) => {
        try {
          await unlink(dir.entryPath(name));
          return true;
        } catch (err) {
          if (isCode(err, "ENOENT")) return false;
          throw relabel(err, dir.relative(name));
        }
      },
      () => false,
    );
  }

  /**
   * Removes `rel` and, if it is a directory, everything below it, never following a symlink: a symlink is
   * removed as a name. False if it did not exist. A directory on the way to `rel` that is not a plain
   * directory is an UnsafePathError (what it leads to is not ours to remove).
   */
  async removeTree(rel: string): Promise<boolean> {
    return this.inParent(
      rel,
      false,
      (dir, name) => dir.removeTreeHere(name),
      () => false,
    );
  }

  /** Removes `rel` if it is an empty directory; false if it is not there, not empty or not a directory. */
  async removeEmptyDir(rel: string): Promise<boolean> {
    return this.inParent(
      rel,
      false,
      async (dir, name) => {
        try {
          await rmdir(dir.entryPath(name));
          return true;
        } catch (err) {
          if (["ENOENT", "ENOTEMPTY", "EEXIST", "ENOTDIR", "EBUSY"].some((code) => isCode(err, code))) return false;
          throw relabel(err, dir.relative(name));
        }
      },
      () => false,
    );
  }

  /** The names in this directory. */
  async list(): Promise<string[]> {
    try {
      return await readdir(descriptorPath(this.fd));
    } catch (err) {
      throw relabel(err, this.path || ".");
    }
  }

  /** Makes the creations, renames and removals of entries in this directory durable. */
  async sync(): Promise<void> {
    try {
      await this.handle.sync();
    } catch (err) {
      // Some filesystems (FUSE ones among them) refuse fsync on directories; their entries are as durable
      // as they get.
      if (!isCode(err, "EINVAL") && !isCode(err, "ENOTSUP")) throw relabel(err, this.path || ".");
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  // ---- internals ----

  private async reopen(): Promise<SafeDir> {
    const handle = await open(descriptorPath(this.fd), O_RDONLY | O_DIRECTORY);
    return new SafeDir(handle, this.path, this.realPath);
  }

  // Opens the directory `name` of this one, creating it first if asked.
  private async child(name: string, create: boolean, mode: number): Promise<SafeDir> {
    const rel = this.relative(name);
    const entry = this.entryPath(name);
    let handle: FileHandle;
    try {
      handle = await open(entry, DIRECTORY_FLAGS);
    } catch (err) {
      if (isCode(err, "ENOENT") && create) {
        try {
          // mkdir never follows a symlink in the last component: one there is EEXIST, refused below.
          await mkdir(entry, { mode });
          await this.sync();
        } catch (mkdirErr) {
          if (!isCode(mkdirErr, "EEXIST")) throw relabel(mkdirErr, rel);
        }
        return this.child(name, false, mode);
      }
      // O_NOFOLLOW on a symlink gives ELOOP, or ENOTDIR together with O_DIRECTORY.
      if (isCode(err, "ELOOP") || isCode(err, "ENOTDIR")) throw await this.refusal(name, "directory");
      throw relabel(err, rel);
    }
    try {
      await this.checkReadsBack(handle, name);
      return new SafeDir(handle, rel, posix.join(this.realPath, name));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  private async openFileHere(name: string): Promise<FileHandle> {
    const rel = this.relative(name);
    const entry = this.entryPath(name);
    let checked: BigIntStats;
    try {
      checked = await lstat(entry, { bigint: true });
    } catch (err) {
      throw relabel(err, rel);
    }
    // Refused before it is opened: opening a device can have effects of its own.
    refuseUnlessPlainFile(checked, rel);
    let handle: FileHandle;
    try {
      handle = await open(entry, READ_FLAGS);
    } catch (err) {
      if (isCode(err, "ELOOP")) throw new UnsafePathError("SymbolicLink", rel, `${rel} is a symbolic link`);
      throw relabel(err, rel);
    }
    try {
      const opened = await handle.stat({ bigint: true });
      refuseUnlessPlainFile(opened, rel);
      if (opened.dev !== checked.dev || opened.ino !== checked.ino) {
        throw new UnsafePathError("Replaced", rel, `${rel} was replaced while it was being opened`);
      }
      await this.checkReadsBack(handle, name);
      return handle;
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  private async removeTreeHere(name: string): Promise<boolean> {
    const entry = this.entryPath(name);
    try {
      await unlink(entry);
      return true;
    } catch (err) {
      if (isCode(err, "ENOENT")) return false;
      // Linux says EISDIR for a directory, POSIX allows EPERM.
      if (!isCode(err, "EISDIR") && !isCode(err, "EPERM")) throw relabel(err, this.relative(name));
    }
    let dir: SafeDir;
    try {
      dir = await this.child(name, false, 0);
    } catch (err) {
      if (isCode(err, "ENOENT")) return false;
      // Swapped for a symlink or a file since the unlink: remove that name, once.
      if (err instanceof UnsafePathError && (err.reason === "SymbolicLink" || err.reason === "NotDirectory")) {
        await unlink(entry).catch((e: unknown) => {
          if (!isCode(e, "ENOENT")) throw relabel(e, this.relative(name));
        });
        return true;
      }
      throw err;
    }
    try {
      for (const child of await dir.list()) await dir.removeTreeHere(child);
    } finally {
      await dir.close();
    }
    try {
      await rmdir(entry);
    } catch (err) {
      if (!isCode(err, "ENOENT")) throw relabel(err, this.relative(name));
    }
    return true;
  }

  // Runs `fn` with the directory that holds the last component of `rel` and that component's name.
  // `missing` answers instead when a directory on the way does not exist (else ENOENT is thrown).
  private async inParent<T>(
    rel: string,
    create: boolean,
    fn: (dir: SafeDir, name: string) => Promise<T>,
    missing?: () => T,
  ): Promise<T> {
    const names = this.components(rel);
    const name = names.pop();
    if (name === undefined) throw new UnsafePathError("InvalidPath", this.relative(rel), "the path is empty");
    if (names.length === 0) return fn(this, name);
    let dir: SafeDir;
    try {
      dir = await this.openDir(names.join("/"), { create });
    } catch (err) {
      if (missing && isCode(err, "ENOENT")) return missing();
      throw onTheWay(err, this.relative(rel));
    }
    try {
      return await fn(dir, name);
    } finally {
      await dir.close();
    }
  }

  private components(rel: string): string[] {
    if (rel === "") return [];
    return rel.split("/").map((name) => checkComponent(name, this.relative(rel)));
  }

  // What /proc/self/fd shows for the descriptor must be the path walked: an extra check that nothing on the
  // way was moved while it was opened.
  private async checkReadsBack(handle: FileHandle, name: string): Promise<void> {
    const actual = await readlink(descriptorPath(handle.fd));
    if (actual !== posix.join(this.realPath, name)) {
      const rel = this.relative(name);
      throw new UnsafePathError("Replaced", rel, `${rel} was moved or replaced while it was being opened`);
    }
  }

  // Why `name` could not be opened as a directory: lstat only, never following it.
  private async refusal(name: string, wanted: "directory"): Promise<Error> {
    const rel = this.relative(name);
    let info: BigIntStats;
    try {
      info = await lstat(this.entryPath(name), { bigint: true });
    } catch (err) {
      return relabel(err, rel);
    }
    if (info.isSymbolicLink()) return new UnsafePathError("SymbolicLink", rel, `${rel} is a symbolic link`);
    if (!info.isDirectory()) {
      return new UnsafePathError("NotDirectory", rel, `${rel} is ${kindOf(info)}, not a ${wanted}`);
    }
    return new UnsafePathError("Replaced", rel, `${rel} was replaced while it was being opened`);
  }
}

/** Opens `rel` below `dir` (see SafeDir.openDir), runs `fn` and closes it, whatever happens. */
export async function withDir<T>(
  dir: SafeDir,
  rel: string,
  opts: { create?: boolean; mode?: number },
  fn: (dir: SafeDir) => Promise<T>,
): Promise<T> {
  const opened = await dir.openDir(rel, opts);
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

/** Opens the trusted root, runs `fn` and closes it, whatever happens. */
export async function withRoot<T>(root: string, fn: (dir: SafeDir) => Promise<T>): Promise<T> {
  const dir = await SafeDir.openRoot(root);
  try {
    return await fn(dir);
  } finally {
    await dir.close();
  }
}

/** Opens the regular file `rel` below `dir`, runs `fn` and closes it, whatever happens. */
export async function withFile<T>(dir: SafeDir, rel: string, fn: (file: FileHandle) => Promise<T>): Promise<T> {
  const file = await dir.openFile(rel);
  try {
    return await fn(file);
  } finally {
    await file.close();
  }
}

export function isCode(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

/**
 * Throws an UnsafePathError unless `info` (from lstat, never following) is a regular file with one link:
 * a symlink, a FIFO, socket, device or directory, or a hard link.
 */
export function refuseUnlessPlainFile(info: BigIntStats, rel: string): void {
  if (info.isSymbolicLink()) throw new UnsafePathError("SymbolicLink", rel, `${rel} is a symbolic link`);
  if (!info.isFile()) throw new UnsafePathError("NotRegularFile", rel, `${rel} is ${kindOf(info)}`);
  if (info.nlink > 1n) throw new UnsafePathError("HardLink", rel, `${rel} has ${info.nlink} hard links`);
}

function kindOf(info: BigIntStats): string {
  if (info.isSymbolicLink()) return "a symbolic link";
  if (info.isDirectory()) return "a directory";
  if (info.isFIFO()) return "a FIFO";
  if (info.isSocket()) return "a socket";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  return info.isFile() ? "a regular file" : "of an unknown type";
}

function checkComponent(name: string, rel: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new UnsafePathError("InvalidPath", rel, `${JSON.stringify(rel)} is not a plain relative path`);
  }
  return name;
}

// An error met on the way to `target` names both where it happened and what was being reached.
function onTheWay(err: unknown, target: string): unknown {
  if (err instanceof UnsafePathError && err.path !== target && !err.message.includes(" on the way to ")) {
    return new UnsafePathError(err.reason, err.path, `${err.message}, on the way to ${target}`);
  }
  return err;
}

// System errors name the /proc/self/fd path they were given, which says nothing to a reader: name the path
// relative to the root instead, keeping the code for callers that test it.
function relabel(err: unknown, rel: string): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code !== "string" || err instanceof UnsafePathError) return err;
  const out = new Error(`${e.code}: ${describeCode(e.code)}, ${e.syscall ?? "access"} ${rel}`, {
    cause: err,
  }) as NodeJS.ErrnoException;
  out.code = e.code;
  if (e.errno !== undefined) out.errno = e.errno;
  if (e.syscall !== undefined) out.syscall = e.syscall;
  out.path = rel;
  return out;
}

function describeCode(code: string): string {
  const known: Record<string, string> = {
    ENOENT: "no such file or directory",
    EEXIST: "file already exists",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    ENOTEMPTY: "directory not empty",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
  };
  return known[code] ?? "error";
}
