// Helpers shared by the benchmarks under test/bench: commands, test data, timing, statistics, formatting.
import { spawn } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface RunOptions {
  /** Collect and return the command's stdout (otherwise it is discarded). */
  capture?: boolean;
  cwd?: string;
  /** The command's environment (the benchmark's own by default). */
  env?: NodeJS.ProcessEnv;
  /** Kills the command (SIGTERM) when aborted. */
  signal?: AbortSignal;
}

/**
 * Runs a command and resolves with its stdout (when captured); rejects with its stderr unless it exits 0.
 * Never blocks the event loop, unlike execFileSync: a benchmark waits for long commands, and its SIGINT and
 * SIGTERM handlers (and tsx's, which SIGKILLs a child that does not answer a relayed signal within
 * milliseconds) must run meanwhile, so that the cleanup does.
 */
export function run(command: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["ignore", opts.capture ? "pipe" : "ignore", "pipe"],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr?.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.join(" ")}: ${signal ?? `exit ${code}`}: ${stderr.trim()}`));
    });
  });
}

/**
 * Writes `bytes` of incompressible data (AES-CTR keystream from openssl) to `path`. Different seeds give
 * different contents, so that two files of a set never share blocks or hash alike.
 */
export async function writeIncompressible(
  path: string,
  bytes: number,
  seed = "bench",
  signal?: AbortSignal,
): Promise<void> {
  const script =
    'openssl enc -aes-128-ctr -pass "pass:$3" -nosalt -pbkdf2 < /dev/zero 2>/dev/null | head -c "$1" > "$2"';
  await run("bash", ["-c", script, "write-incompressible", String(bytes), path, seed], signal ? { signal } : {});
  // The pipeline's status is head's: check that openssl did deliver.
  const written = (await stat(path)).size;
  if (written !== bytes) throw new Error(`writing ${path} with openssl produced ${written} bytes, not ${bytes}`);
}

/** Reads the files once, so that every contestant starts with their data in the page cache. */
export async function warm(paths: readonly string[], signal?: AbortSignal): Promise<void> {
  await run("cat", paths, signal ? { signal } : {});
}

/** Milliseconds `body` takes, after a `sync` (so that the write-back of the previous run does not land on this one). */
export async function timed(body: () => unknown): Promise<number> {
  await run("sync");
  return (await measured(body)).ms;
}

/**
 * How a run of a throughput benchmark is separated from the one before it, whose output was just deleted:
 * - `sync`: the previous run's dirty pages are written back, and the deletion of its output committed (on a
 *   filesystem mounted with `discard`, the freed blocks are discarded then), before the timer starts;
 *   otherwise that work lands on this run and is charged to whichever contestant comes next;
 * - `dropCaches` (root only; implies the sync): the page cache is emptied, so the sources are read from the
 *   device; otherwise they are read once before the run, so that every contestant starts with them cached.
 */
export interface Separation {
  sync: boolean;
  dropCaches: boolean;
}

export type PreparationStep = "sync" | "drop-caches" | "warm-sources";

/** The steps, in order, that put the machine in the state `separation` promises before a timed run. */
export function preparationSteps(separation: Separation): PreparationStep[] {
  // drop_caches drops clean pages only: the write-back must come first.
  if (separation.dropCaches) return ["sync", "drop-caches"];
  return separation.sync ? ["warm-sources", "sync"] : ["warm-sources"];
}

/** Why `separation` cannot be had here (it needs root), or undefined when it can. */
export function separationUnavailable(separation: Separation, uid: number | undefined): string | undefined {
  if (separation.dropCaches && uid !== 0) return "not root: cannot write /proc/sys/vm/drop_caches";
  return undefined;
}

/** Carries out preparationSteps(separation) for a run over `sources`. */
export async function prepareRun(
  separation: Separation,
  sources: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  for (const step of preparationSteps(separation)) {
    if (step === "sync") await run("sync", [], signal ? { signal } : {});
    else if (step === "drop-caches") await writeFile("/proc/sys/vm/drop_caches", "3\n");
    else await warm(sources, signal);
  }
}

export interface Measurement {
  /** Wall time of the work. */
  ms: number;
  /**
   * Wall time until what the work wrote is on the device: `ms` plus the write-back that `settle` waits for
   * (`ms` when there is nothing to settle).
   */
  durableMs: number;
  /**
   * CPU time of this process and of the commands it ran and waited for, user and system, during the work:
   * what the work cost, whatever else the machine was doing (10 ms resolution).
   */
  cpuMs: number;
}

/** Wall and CPU time of `body`, and the wall time until `settle` (run right after it) is done too. */
export async function measured(body: () => unknown, settle?: () => unknown): Promise<Measurement> {
  const cpuBefore = cpuTicks(await readFile("/proc/self/stat", "utf8"));
  const start = process.hrtime.bigint();
  await body();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const cpuAfter = cpuTicks(await readFile("/proc/self/stat", "utf8"));
  await settle?.();
  const durableMs = Number(process.hrtime.bigint() - start) / 1e6;
  return { ms, durableMs, cpuMs: (cpuAfter - cpuBefore) * (1000 / USER_HZ) };
}

/**
 * Writes back every regular file under `dir` and waits for it (fsync each, as the agent commits each file it
 * extracts), without the rest of the filesystem's dirty data that a plain `sync` would also wait for.
 */
export async function writeBack(dir: string, signal?: AbortSignal): Promise<void> {
  await run("find", [dir, "-type", "f", "-exec", "sync", "--", "{}", "+"], signal ? { signal } : {});
}

/** The unit of /proc's CPU times: fixed at 100 per second by Linux's user-space ABI, whatever the kernel's HZ. */
const USER_HZ = 100;

/**
 * utime + stime + cutime + cstime of a /proc/<pid>/stat line, in clock ticks: the process's own CPU time and
 * that of its children it has waited for. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so the fields are counted from the last ')'.
 */
export function cpuTicks(stat: string): number {
  const close = stat.lastIndexOf(")");
  if (close < 0) throw new Error(`not a /proc stat line: ${stat.slice(0, 80)}`);
  // After the name: state (field 3), ppid (4), ... utime (14), stime (15), cutime (16), cstime (17).
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const ticks = [11, 12, 13, 14].map((i) => Number(fields[i]));
  if (ticks.some((t) => !Number.isInteger(t) || t < 0)) throw new Error(`no CPU times in: ${stat.slice(0, 80)}`);
  return ticks.reduce((sum, t) => sum + t, 0);
}

/**
 * The order of `items` for interleaved run `round` (from 0): a permutation seeded by the round, the same in
 * every run of the benchmark. Rotating one fixed order would leave each contestant behind the same
 * predecessor in every round but the first, and what a run leaves behind (the page cache it grew, memory it
 * freed) weighs on the next: with the 5 s `cp, then sha256sum` always just before it, the extract (through
 * the page cache) took 2.4 s, 1.2-1.9 s after other contestants.
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const order = [...items];
  // mulberry32: a small, well-mixed generator, enough to shuffle a handful of contestants.
  let state = (round + 1) * 0x9e3779b9;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j] as T, order[i] as T];
  }
  return order;
}

export const best = (values: readonly number[]): number => Math.min(...values);

/** The middle value (the upper one of the two middle values for an even count). */
export const median = (values: readonly number[]): number =>
  [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? NaN;

export const worst = (values: readonly number[]): number => Math.max(...values);

export const fmt = (values: readonly number[]): string =>
  `best ${best(values).toFixed(0)} ms, median ${median(values).toFixed(0)} ms ` +
  `(${values.map((v) => v.toFixed(0)).join(" ")})`;

/** A human size: 64 MiB, 2 GiB, 1.5 GiB. */
export function size(bytes: number): string {
  if (bytes >= GiB) return `${Number((bytes / GiB).toFixed(2))} GiB`;
  return `${Number((bytes / MiB).toFixed(2))} MiB`;
}

/** Prints rows of cells as left-aligned columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
