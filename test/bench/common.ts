// Helpers shared by the benchmarks under test/bench: commands, test data, timing, statistics, formatting.
import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
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
  const start = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - start) / 1e6;
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
