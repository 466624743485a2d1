// Shared helpers for the agent tests: temp dirs, test files, a recording Freezer, child processes.
import { xfsImage } from "../../harness/xfs.js";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { constants, createReadStream, mkdirSync, mkdtempSync } from "node:fs";
import { lstat, mkdir, open, readFile, readdir, readlink, rm, statfs, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NodeBackupPlan } from "../../../src/agent/backup.js";
import type { Freezer, NodeActivity } from "../../../src/agent/quiesce.js";
import type { AgentLog, VmRef } from "../../../src/agent/types.js";
import { vmKey } from "../../../src/agent/types.js";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** A fresh directory under the OS temp dir (ext4 here), removed by the returned cleanup. */
export function makeTempDir(prefix: string, parent = tmpdir()): { dir: string; cleanup: () => Promise<void> } {
  const dir = mkdtempSync(join(parent, `fedbackup-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes `bytes` of random data (one random MiB repeated for large files, which is enough to detect reordering). */
export async function writeRandomFile(path: string, bytes: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  if (bytes <= 4 * MiB) {
    await writeFile(path, randomBytes(bytes));
    return;
  }
  const block = randomBytes(MiB + 7);
  const handle = await open(path, "w");
  try {
    for (let at = 0; at < bytes; at += block.length) {
      const n = Math.min(block.length, bytes - at);
      // Vary each block so that a chunk written at the wrong offset changes the checksum.
      block.writeUInt32LE(at >>> 0, 0);
      await handle.write(block, 0, n, at);
    }
  } finally {
    await handle.close();
  }
}

/** A sparse file of `bytes` (all holes), made with truncate. */
/** Inverts the byte at `position` of the file at `path`: a change whatever the byte was (random data). */
export async function flipByte(path: string, position: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, position);
  } finally {
    await handle.close();
  }
}

export async function writeSparseFile(path: string, bytes: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, "");
  await truncate(path, bytes);
}

/** sha256 and size computed independently of the code under test: plain node:crypto over a stream. */
export async function referenceHash(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** Asserts two files are byte-for-byte identical (streamed, so it works for large files). */
export async function assertSameBytes(a: string, b: string): Promise<void> {
  const [ha, hb] = [await open(a, "r"), await open(b, "r")];
  try {
    const [sa, sb] = [await ha.stat(), await hb.stat()];
    assert.equal(sb.size, sa.size, `${b} has ${sb.size} bytes, ${a} has ${sa.size}`);
    const [ba, bb] = [Buffer.alloc(4 * MiB), Buffer.alloc(4 * MiB)];
    for (let at = 0; at < sa.size;) {
      const { bytesRead: na } = await ha.read(ba, 0, ba.length, at);
      const { bytesRead: nb } = await hb.read(bb, 0, bb.length, at);
      assert.equal(nb, na);
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) assert.fail(`${a} and ${b} differ in the 4 MiB at ${at}`);
      at += na;
    }
  } finally {
    await Promise.all([ha.close(), hb.close()]);
  }
}

export interface FreezerEvent {
  op: "freeze" | "unfreeze";
  vm: string;
  at: number;
  unfreezeTimeoutSeconds?: number;
}

/**
 * The injected Freezer interface, recording every call. By default freeze and unfreeze succeed at once;
 * `onFreeze` / `onUnfreeze` replace that per call (throw, hang, delay).
 */
export class RecordingFreezer implements Freezer {
  readonly events: FreezerEvent[] = [];
  onFreeze?: (vm: VmRef) => Promise<void>;
  onUnfreeze?: (vm: VmRef) => Promise<void>;

  async freeze(vm: VmRef, unfreezeTimeoutSeconds: number): Promise<void> {
    this.events.push({ op: "freeze", vm: vmKey(vm), at: performance.now(), unfreezeTimeoutSeconds });
    if (this.onFreeze) await this.onFreeze(vm);
  }

  async unfreeze(vm: VmRef): Promise<void> {
    this.events.push({ op: "unfreeze", vm: vmKey(vm), at: performance.now() });
    if (this.onUnfreeze) await this.onUnfreeze(vm);
  }

  /** "freeze ns/a", "unfreeze ns/a", ... */
  get log(): string[] {
    return this.events.map((e) => `${e.op} ${e.vm}`);
  }

  /** Every VM frozen at least once was unfrozen after its last freeze call. */
  assertAllThawed(): void {
    const lastFreeze = new Map<string, number>();
    const lastUnfreeze = new Map<string, number>();
    this.events.forEach((e, i) => (e.op === "freeze" ? lastFreeze : lastUnfreeze).set(e.vm, i));
    for (const [vm, i] of lastFreeze) {
      const j = lastUnfreeze.get(vm);
      assert.ok(j !== undefined && j > i, `${vm} was frozen but not unfrozen afterwards: ${this.log.join(", ")}`);
    }
  }
}

export const alwaysActive = (): Promise<NodeActivity> => Promise.resolve({ active: true });

export const realClock = { now: () => Date.now() };

/** Collects log lines; tests print them on failure only when debugging. */
export function memoryLog(): AgentLog & { lines: string[] } {
  const lines: string[] = [];
  const add = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${meta ? JSON.stringify(meta) : ""}`);
  };
  return { lines, debug: add("debug"), info: add("info"), warn: add("warn"), error: add("error") };
}

export interface ChildRun {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

/** Runs a TypeScript fixture in a child process: `node --import tsx <fixture> <args>`. */
export function runFixture(fixture: string, args: string[]): ChildRun {
  const child = spawn(process.execPath, ["--import", "tsx", join(FIXTURES, fixture), ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal, stderr }));
  });
  return { pid: child.pid ?? -1, exited, kill: (signal) => child.kill(signal) };
}

/** Polls `check` every few ms until it returns true or `ms` pass. */
export async function waitFor(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A node backup plan with the tests' defaults: backup backups/nightly (uid-nightly), node-1, round 1, Auto.
 * `backupRoot` is the backup's directory: its parent stands for the location's mount point (created here,
 * as a mount point exists before the agent runs).
 */
export function nodeBackupPlan(
  sharedRoot: string,
  backupRoot: string,
  overrides: Partial<NodeBackupPlan> = {},
): NodeBackupPlan {
  mkdirSync(dirname(backupRoot), { recursive: true });
  return {
    backup: { namespace: "backups", name: "nightly", uid: "uid-nightly" },
    node: "node-1",
    round: 1,
    method: "Auto",
    quiesce: "GuestAgent",
    freezeTimeoutMs: 2000,
    maxFreezeMs: 30_000,
    extractAt: "Backup",
    sharedRoot,
    locationRoot: dirname(backupRoot),
    backupPath: basename(backupRoot),
    workloads: [],
    ...overrides,
  };
}

/**
 * Everything below `dir`, never following a symlink: path -> "file <sha256> <links>" (hard links show),
 * "symlink -> <target>", "dir", "fifo", ... For comparing a whole tree before and after.
 */
export async function describeTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    const path = rel ? join(dir, rel) : dir;
    for (const name of (await readdir(path)).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      const info = await lstat(join(dir, child));
      if (info.isSymbolicLink()) out[child] = `symlink -> ${await readlink(join(dir, child))}`;
      else if (info.isFIFO()) out[child] = "fifo";
      else if (info.isDirectory()) {
        out[child] = "dir";
        await walk(child);
      } else if (info.isFile()) {
        const sha = createHash("sha256")
          .update(await readFile(join(dir, child)))
          .digest("hex");
        out[child] = `file ${sha} links ${info.nlink}`;
      } else out[child] = "other";
    }
  };
  await walk("");
  return out;
}

/**
 * Opens a FIFO for writing without blocking, which releases a reader blocked in open(2) on it (code
 * under test that wrongly opened it would otherwise hang a thread of the pool, and the test run with it).
 */
export async function releaseFifo(path: string): Promise<void> {
  try {
    const handle = await open(path, constants.O_WRONLY | constants.O_NONBLOCK);
    await handle.close();
  } catch {
    // ENXIO: nobody is reading it, so nobody is blocked.
  }
}

const XFS_MAGIC = 0x58465342;

export interface ReflinkVolume {
  /** The mount point of a fresh XFS filesystem with reflink support. */
  mnt: string;
  /** A scratch directory beside it, on the ordinary temp filesystem. */
  dir: string;
  unmount(): Promise<void>;
}

/**
 * Loop-mounts a fresh 512 MiB XFS image with reflink=1, or says why it cannot (not root, no mkfs.xfs, no
 * loop device): tests of the Reflink method skip with that reason.
 */
export async function mountReflinkVolume(): Promise<ReflinkVolume | string> {
  const xfs = xfsImage();
  if (typeof xfs === "string") return xfs;
  const { dir, cleanup: removeDir } = makeTempDir("xfs");
  const cleanup = async () => {
    await removeDir();
    xfs.cleanup();
  };
  const mnt = join(dir, "mnt");
  await mkdir(mnt);
  try {
    xfs.mount(mnt);
  } catch (err) {
    await cleanup();
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `mounting the XFS image failed: ${stderr || String(err)}`;
  }
  assert.equal((await statfs(mnt)).type, XFS_MAGIC);
  const unmount = async () => {
    // A busy mount (a test still closing files) clears up within moments; lazy unmount as a last resort.
    for (let attempt = 0; ; attempt++) {
      try {
        execFileSync("umount", [mnt], { stdio: "pipe" });
        break;
      } catch (err) {
        if (attempt >= 20) {
          execFileSync("umount", ["-l", mnt], { stdio: "pipe" });
          console.log(`      (umount needed -l: ${String(err)})`);
          break;
        }
        await sleep(100);
      }
    }
    await cleanup();
  };
  return { mnt, dir, unmount };
}
