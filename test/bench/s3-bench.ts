// The agent's upload to an S3 location against its goals (`make bench`), on a real SeaweedFS server on
// loopback (test/harness/object-store.ts):
//
// 1. Throughput, on the set of agent-goals.ts: 4 files of 512 MiB of incompressible data (2 GiB), in the
//    page cache. Interleaved runs (the order changes each round) of
//    - the agent's extract to S3: for each file objectStoreDir(...).commit(key, sink => copyAndHash(handle,
//      sink)), the files one after the other as the agent extracts a VM's files (multipart uploads of
//      PART_BYTES parts, UPLOAD_QUEUE in flight, the sha256 computed in the same pass);
//    - Debian's `rclone copy` of the same files to the same bucket (another prefix), given the same work:
//      parts of PART_BYTES, UPLOAD_QUEUE parts in flight, one file at a time (--transfers 1). rclone hashes
//      too: it computes each file's MD5 before a multipart upload (to store it in the object's metadata), so
//      both read and hash every byte;
//    - (reference) `rclone copy` with its defaults (4 files at once, 4 parts of 5 MiB in flight each).
//    Goal: median extract <= 1.25 x median of the comparable rclone run.
// 2. Peak memory of the agent uploading one 64 MiB and one 2 GiB file, each in a child process
//    (s3-upload-rss-child.ts). Goal: <= 128 MiB and about the same for both sizes (the extraction's goal).
//
// The server and the client share the machine: on 2 cores, the CPU that weed spends on each byte is taken
// from the client, so the figures compare clients on this server rather than measure a network.
//
//   tsx test/bench/s3-bench.ts [--runs N (default 3)] [--file-mib M (default 512, the set's file size)]
//
// Prints the tables and a summary, and writes the figures to bench-results/s3.json. Without rclone (make
// bench installs Debian's as root) its rows are skipped with a note. Everything lives in one fresh directory
// under TMPDIR (the server's data too), removed at the end. Exits 0 when a goal is missed, 1 on an error.
import { mkdtempSync, statfsSync } from "node:fs";
import { mkdir, open, rm, writeFile } from "node:fs/promises";
import { availableParallelism, constants, loadavg, totalmem, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { objectStoreDir, type ObjectStore as AgentObjectStore } from "../../src/agent/backup-dir.js";
import { copyAndHash } from "../../src/agent/copy-and-hash.js";
import { s3ClientFor, type S3Credentials } from "../../src/storage/s3-client.js";
import { PART_BYTES, UPLOAD_QUEUE } from "../../src/storage/s3-location-dir.js";
import { startObjectStore, type ObjectStore } from "../harness/object-store.js";
import type { RunOptions } from "./common.js";
import {
  GiB,
  MiB,
  REPO_ROOT,
  best,
  median,
  roundOrder,
  run as runCommand,
  size,
  table,
  timed,
  warm,
  writeIncompressible,
} from "./common.js";
import { comparableFlags, rcloneEnvironment } from "./rclone.js";

const RATIO_GOAL = 1.25;
const RSS_GOAL_MIB = 128;
/** "About the same" peak memory for 64 MiB and 2 GiB: within this many MiB. */
const RSS_SAME_MIB = 16;
const SET_FILES = 4;
const SMALL_BYTES = 64 * MiB;
const BIG_BYTES = 2 * GiB;
const BUCKET = "bench";
const REMOTE = "fedbackupbench";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const RESULTS = join(REPO_ROOT, "bench-results", "s3.json");

const options = parseArgs(process.argv.slice(2));
const setFileBytes = options.fileMiB * MiB;

const interrupt = new AbortController();
let interruptedBy: NodeJS.Signals | undefined;
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupt.signal.aborted) return;
  interruptedBy = signal;
  console.error(`\n${signal}: stopping and cleaning up`);
  interrupt.abort(new Error(`interrupted by ${signal}`));
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
const checkpoint = () => interrupt.signal.throwIfAborted();
const run = (command: string, args: readonly string[] = [], opts: RunOptions = {}) =>
  runCommand(command, args, { signal: interrupt.signal, ...opts });

interface Summary {
  goal: string;
  measured: string;
  /** PASS, MISS, SKIP, or "-" for a figure without a goal. */
  result: string;
}
const summary: Summary[] = [];
/** What bench-results/s3.json holds besides the summary. */
const results: Record<string, unknown> = {};

const held: { dir?: string; store?: ObjectStore; client?: S3Client } = {};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "fedbackup-s3-bench-"));
  held.dir = dir;
  // The set, the 2 GiB and 64 MiB files, and what the server keeps of the uploads (deleted objects' volumes
  // are not compacted during the run): every run of each contestant and the 2 GiB upload.
  const setBytes = SET_FILES * setFileBytes;
  const needed = setBytes + BIG_BYTES + SMALL_BYTES + (3 * options.runs * setBytes + BIG_BYTES) * 1.1;
  const free = statfsSync(dir);
  if (free.bavail * free.bsize < needed) {
    throw new Error(`the temp dir's filesystem has ${size(free.bavail * free.bsize)} free; this needs ${size(needed)}`);
  }
  const rclone = await rcloneVersion();
  console.log(
    `fedbackup agent S3 upload benchmark: node ${process.version}, ${rclone ?? "rclone missing"}, ` +
      `${options.runs} interleaved runs, parts of ${size(PART_BYTES)}, ${UPLOAD_QUEUE} in flight`,
  );
  printLoad("at the start");
  Object.assign(results, {
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), memoryGiB: Math.round(totalmem() / GiB), node: process.version },
    rclone: rclone ?? null,
    runs: options.runs,
    partBytes: PART_BYTES,
    partsInFlight: UPLOAD_QUEUE,
  });

  console.log("Starting the S3 server (SeaweedFS weed mini)...");
  const store = await startObjectStore({ dir: join(dir, "weed"), buckets: [BUCKET] });
  held.store = store;
  // The agent's client: the product's settings (retries included), one for the whole extraction.
  const client = s3ClientFor(store.location(BUCKET), store.credentials);
  held.client = client;
  const agentStore: AgentObjectStore = { client, location: store.location(BUCKET) };

  console.log("Writing the test data (incompressible, from openssl)...");
  const setDir = join(dir, "set");
  await mkdir(setDir);
  const sources = Array.from({ length: SET_FILES }, (_, i) => join(setDir, `vm-${i + 1}.img`));
  for (const [i, path] of sources.entries()) {
    await writeIncompressible(path, setFileBytes, `bench-set-${i + 1}`, interrupt.signal);
  }
  const small = join(dir, "disk-64mib.img");
  const big = join(dir, "disk-2gib.img");
  await writeIncompressible(small, SMALL_BYTES, "bench-s3-64mib", interrupt.signal);
  await writeIncompressible(big, BIG_BYTES, "bench-s3-2gib", interrupt.signal);
  const reference = await sha256sums([...sources, small, big]);
  checkpoint();

  await throughput(dir, agentStore, store.credentials, sources, reference, rclone !== undefined);
  await memory(
    store,
    [
      { label: "64 MiB", path: small, bytes: SMALL_BYTES },
      { label: "2 GiB", path: big, bytes: BIG_BYTES },
    ],
    reference,
  );

  console.log("");
  printLoad("at the end");
  console.log("");
  console.log("== Summary ==");
  console.log(table([["goal", "measured", "result"], ...summary.map((s) => [s.goal, s.measured, s.result])]));
  await mkdir(join(RESULTS, ".."), { recursive: true });
  await writeFile(RESULTS, JSON.stringify({ ...results, load: loadavg(), summary }, null, 2) + "\n");
  console.log(`(figures written to ${RESULTS})`);
}

function printLoad(when: string): void {
  const cpus = availableParallelism();
  const load = loadavg();
  const busy = (load[0] ?? 0) > cpus / 2;
  console.log(
    `load average ${when}: ${load.map((l) => l.toFixed(2)).join(" ")} on ${cpus} CPUs` +
      (busy ? " (other work is running here: the figures are noisier than on an idle machine)" : ""),
  );
}

// ---- 1. throughput ----

interface Contestant {
  label: string;
  /** Uploads the set under `prefix` (of the bucket). */
  run: (prefix: string) => Promise<void>;
  times: number[];
  skipped?: string;
}

async function throughput(
  dir: string,
  store: AgentObjectStore,
  credentials: S3Credentials,
  sources: string[],
  reference: Map<string, string>,
  haveRclone: boolean,
): Promise<void> {
  const total = SET_FILES * setFileBytes;
  console.log("");
  console.log(`== 1. Throughput to S3: ${SET_FILES} files x ${size(setFileBytes)} = ${size(total)} ==`);
  const configFile = join(dir, "rclone.conf");
  await writeFile(configFile, "");
  const rcloneEnv = rcloneEnvironment(
    process.env,
    {
      name: REMOTE,
      endpoint: store.location.endpoint,
      region: store.location.region ?? "us-east-1",
      ...credentials,
    },
    configFile,
  );
  const rcloneCopy = (prefix: string, flags: string[]) =>
    run("rclone", ["copy", "--s3-no-check-bucket", ...flags, join(dir, "set"), `${REMOTE}:${BUCKET}/${prefix}`], {
      env: rcloneEnv,
    });
  const extract: Contestant = {
    label: "extract to S3 (commit + copyAndHash)",
    times: [],
    run: async (prefix) => {
      // One file after the other, as the agent extracts a VM's files.
      const target = objectStoreDir(store, prefix);
      for (const source of sources) {
        const handle = await open(source, "r");
        try {
          const hashed = await target.commit(basename(source), (sink) =>
            copyAndHash(handle, sink, { signal: interrupt.signal }),
          );
          if (hashed.sha256 !== reference.get(source)) {
            throw new Error(
              `extract hashed ${basename(source)} to ${hashed.sha256}; sha256sum said ${reference.get(source)}`,
            );
          }
        } finally {
          await handle.close();
        }
      }
    },
  };
  const rcloneSkip = haveRclone ? {} : { skipped: "rclone is missing (make bench installs Debian's as root)" };
  const comparable: Contestant = {
    label: `rclone copy ${comparableFlags(PART_BYTES, UPLOAD_QUEUE).join(" ")}`,
    times: [],
    run: (prefix) => rcloneCopy(prefix, comparableFlags(PART_BYTES, UPLOAD_QUEUE)).then(() => {}),
    ...rcloneSkip,
  };
  const defaults: Contestant = {
    label: "(ref.) rclone copy, its defaults",
    times: [],
    run: (prefix) => rcloneCopy(prefix, []).then(() => {}),
    ...rcloneSkip,
  };
  const contestants = [extract, comparable, defaults].filter((c) => !c.skipped);
  for (let i = 0; i < options.runs; i++) {
    const order = roundOrder(contestants, i);
    for (const [n, c] of order.entries()) {
      checkpoint();
      const prefix = `run-${i + 1}-${n + 1}`;
      await warm(sources, interrupt.signal);
      c.times.push(await timed(() => c.run(prefix)));
      await checkUploaded(store, prefix, sources);
      // Deleted now, so that each run writes to a server holding the same objects.
      await objectStoreDir(store, prefix).removeTree("");
    }
    console.log(
      `  run ${i + 1}/${options.runs}: ${contestants.map((c) => `${c.label} ${(c.times[i] ?? NaN).toFixed(0)} ms`).join(", ")}`,
    );
  }
  const mibPerS = (ms: number) => `${(total / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
  console.log(
    table([
      ["", "median", "best", "all runs (ms)"],
      ...contestants.map((c) => [
        c.label,
        `${median(c.times).toFixed(0)} ms (${mibPerS(median(c.times))})`,
        `${best(c.times).toFixed(0)} ms`,
        c.times.map((t) => t.toFixed(0)).join(" "),
      ]),
    ]),
  );
  console.log("(every object listed with its size; the extract's sha256 of each file matched sha256sum's)");
  results.throughput = {
    totalBytes: total,
    contestants: [extract, comparable, defaults].map((c) => ({
      label: c.label,
      timesMs: c.times.map((t) => Math.round(t)),
      medianMs: c.times.length ? Math.round(median(c.times)) : null,
      ...(c.skipped ? { skipped: c.skipped } : {}),
    })),
  };
  if (comparable.skipped) {
    console.log(`rclone rows skipped: ${comparable.skipped}`);
    summary.push({
      goal: `extract to S3 / rclone copy (same settings) <= ${RATIO_GOAL}`,
      measured: comparable.skipped,
      result: "SKIP",
    });
    summary.push({ goal: "extract to S3 throughput", measured: mibPerS(median(extract.times)), result: "-" });
    return;
  }
  const ratio = median(extract.times) / median(comparable.times);
  const ratioBest = best(extract.times) / best(comparable.times);
  const ratioDefaults = median(extract.times) / median(defaults.times);
  const verdict = ratio <= RATIO_GOAL ? "PASS" : "MISS";
  console.log(
    `extract / rclone (same settings): median ${ratio.toFixed(2)}, best ${ratioBest.toFixed(2)} ` +
      `(goal <= ${RATIO_GOAL} on the median: ${verdict})`,
  );
  console.log(`extract / rclone (its defaults): median ${ratioDefaults.toFixed(2)}`);
  results.ratio = { sameSettings: ratio, sameSettingsBest: ratioBest, rcloneDefaults: ratioDefaults };
  summary.push({
    goal: `extract to S3 / rclone copy (same settings) <= ${RATIO_GOAL} (${size(total)}, median of ${options.runs})`,
    measured: `${ratio.toFixed(2)} (best ${ratioBest.toFixed(2)}; ${mibPerS(median(extract.times))} vs ${mibPerS(median(comparable.times))})`,
    result: verdict,
  });
  summary.push({
    goal: "extract to S3 / (ref.) rclone copy with its defaults",
    measured: `${ratioDefaults.toFixed(2)} (rclone ${mibPerS(median(defaults.times))})`,
    result: "-",
  });
}

/** Each source is an object under `prefix` of the source's size (what rclone wrote is checked this way). */
async function checkUploaded(store: AgentObjectStore, prefix: string, sources: string[]): Promise<void> {
  const listed = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/` }));
  const sizes = new Map((listed.Contents ?? []).map((o) => [o.Key ?? "", o.Size ?? -1]));
  for (const source of sources) {
    const key = `${prefix}/${basename(source)}`;
    if (sizes.get(key) !== setFileBytes) {
      throw new Error(`${key}: ${sizes.has(key) ? `${sizes.get(key)} bytes` : "missing"}, expected ${setFileBytes}`);
    }
  }
  if (sizes.size !== sources.length) throw new Error(`${prefix}/ holds ${[...sizes.keys()].join(", ")}`);
}

// ---- 2. peak memory ----

async function memory(
  store: ObjectStore,
  files: { label: string; path: string; bytes: number }[],
  reference: Map<string, string>,
): Promise<void> {
  console.log("");
  console.log(
    "== 2. Peak memory of the upload (child process: node --import tsx test/bench/s3-upload-rss-child.ts) ==",
  );
  const rows = [["file", "maxRSS (the goal)", "RSS during the upload - RSS before it", "upload time"]];
  const peaks: number[] = [];
  const measured: Record<string, unknown>[] = [];
  // An empty file first: the share of the runtime (Node, tsx, the agent's modules and the S3 client) in the
  // figures below; it also fills tsx's cache, which the first child would otherwise build in its own memory.
  const empty = join(held.dir ?? "", "empty.img");
  await writeFile(empty, "");
  reference.set(empty, EMPTY_SHA256);
  for (const file of [{ label: "empty (runtime only)", path: empty, bytes: 0 }, ...files]) {
    checkpoint();
    const key = `rss/${basename(file.path)}`;
    await warm([file.path], interrupt.signal);
    const out = await run(
      process.execPath,
      ["--import", "tsx", join("test", "bench", "s3-upload-rss-child.ts"), file.path, BUCKET, key],
      {
        capture: true,
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          S3_BENCH_ENDPOINT: store.endpoint,
          AWS_ACCESS_KEY_ID: store.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: store.credentials.secretAccessKey,
        },
      },
    );
    const result = JSON.parse(out) as {
      bytes: number;
      sha256: string;
      ms: number;
      maxRssKiB: number;
      rssBeforeKiB: number;
      rssPeakDuringKiB: number;
    };
    if (result.sha256 !== reference.get(file.path) || result.bytes !== file.bytes) {
      throw new Error(
        `the child hashed ${file.label} to ${result.sha256} (${result.bytes} bytes); sha256sum said ${reference.get(file.path)}`,
      );
    }
    const head = await held.client!.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    if (head.ContentLength !== file.bytes) throw new Error(`${key} is ${head.ContentLength} bytes, not ${file.bytes}`);
    const mib = result.maxRssKiB / 1024;
    const growth = (result.rssPeakDuringKiB - result.rssBeforeKiB) / 1024;
    if (file.bytes > 0) peaks.push(mib);
    measured.push({
      file: file.label,
      maxRssMiB: Number(mib.toFixed(1)),
      growthMiB: Number(growth.toFixed(1)),
      ms: Math.round(result.ms),
    });
    rows.push([
      file.label,
      `${mib.toFixed(1)} MiB`,
      `${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MiB`,
      file.bytes > 0
        ? `${result.ms.toFixed(0)} ms (${(file.bytes / MiB / (result.ms / 1000)).toFixed(0)} MiB/s)`
        : `${result.ms.toFixed(0)} ms`,
    ]);
    await objectStoreDir({ client: held.client!, location: store.location(BUCKET) }, "rss").removeTree("");
  }
  console.log(table(rows));
  console.log(
    "(maxRSS is the child's peak, Node's, tsx's and the S3 client's start-up included; the middle column,\n" +
      " sampled every 5 ms, is what the upload itself adds)",
  );
  results.memory = measured;
  for (const [i, file] of files.entries()) {
    const mib = peaks[i] ?? NaN;
    summary.push({
      goal: `upload to S3 peak RSS <= ${RSS_GOAL_MIB} MiB, ${file.label} file`,
      measured: `${mib.toFixed(1)} MiB`,
      result: mib <= RSS_GOAL_MIB ? "PASS" : "MISS",
    });
  }
  const spread = Math.max(...peaks) - Math.min(...peaks);
  summary.push({
    goal: `upload to S3 peak RSS about the same for ${files.map((f) => f.label).join(" and ")} (within ${RSS_SAME_MIB} MiB)`,
    measured: `differ by ${spread.toFixed(1)} MiB`,
    result: spread <= RSS_SAME_MIB ? "PASS" : "MISS",
  });
}

// ---- helpers ----

/** rclone's version line, or undefined when it is not installed. */
async function rcloneVersion(): Promise<string | undefined> {
  try {
    const out = await run("rclone", ["version"], { capture: true });
    return out.split("\n")[0]?.trim();
  } catch {
    return undefined;
  }
}

async function sha256sums(paths: readonly string[]): Promise<Map<string, string>> {
  const out = await run("sha256sum", ["--", ...paths], { capture: true });
  const result = new Map<string, string>();
  for (const line of out.trim().split("\n")) {
    const match = /^([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (!match?.[1] || !match[2]) throw new Error(`unexpected sha256sum output: ${line}`);
    result.set(match[2], match[1]);
  }
  return result;
}

async function cleanup(): Promise<boolean> {
  let ok = true;
  const attempt = async (what: string, step: () => unknown) => {
    try {
      await step();
    } catch (err) {
      ok = false;
      console.error(`cleanup: ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  held.client?.destroy();
  if (held.store) await attempt("stopping the S3 server", () => held.store?.stop());
  if (held.dir) {
    const dir = held.dir;
    await attempt(`removing ${dir}`, () => rm(dir, { recursive: true, force: true }));
  }
  return ok;
}

function parseArgs(args: string[]): { runs: number; fileMiB: number } {
  const result = { runs: 3, fileMiB: 512 };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = Number(args[i + 1]);
    // 8 MiB: at least one part per file, so that every upload is a multipart one, as for a disk.
    if (flag === "--runs" && Number.isInteger(value) && value >= 1) result.runs = value;
    else if (flag === "--file-mib" && Number.isInteger(value) && value >= 8) result.fileMiB = value;
    else {
      console.error("usage: tsx test/bench/s3-bench.ts [--runs N (default 3)] [--file-mib M (default 512)]");
      process.exit(2);
    }
    i++;
  }
  return result;
}

try {
  await main();
} catch (err) {
  if (interruptedBy) {
    process.exitCode = 128 + constants.signals[interruptedBy];
  } else {
    console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  }
} finally {
  if (!(await cleanup())) process.exitCode ||= 1;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}
