// The node agent's data path against its goals (`make bench`):
//
// 1. Throughput, on a set of 4 VM disk files of 512 MiB of incompressible data (2 GiB in all): the agent's
//    extraction copy (copyAndHash, the files one after the other as the agent does) against `cp` alone,
//    `openssl dgst -sha256` alone, and `cp` then `sha256sum` of the copies. Runs are interleaved (the order
//    rotates), the sources are in the page cache and `sync` runs before each timed run.
//    Goal: median extract <= 1.25 x max(median cp, median openssl). The extract here is copyAndHash alone:
//    like cp, it does not fsync (the agent's commitAtomic adds an fsync and a rename per file). A reference
//    row, `dd bs=1M`, shows what a copy through user-space buffers without a hash costs on this machine.
// 2. Peak memory of the extraction, in a child process, for a 64 MiB and a 2 GiB file.
//    Goal: <= 128 MiB and about the same for both sizes.
// 3. The freeze window of one VM (what the guest feels) with runNodeBackup and a fake Freezer that answers at
//    once, for Reflink (loop-mounted XFS with reflink=1: needs root and mkfs.xfs) and Copy (the ordinary
//    filesystem of the temp dir), with a 64 MiB and a 2 GiB disk of real (not sparse) data.
//    Goal: Reflink under 100 ms in every run, and about the same for both sizes.
// 4. A block device (block-device-bench.ts): extraction of a 2 GiB loop device, half zeros, against `cp` and
//    `openssl dgst -sha256` of the device, and the bytes stored against the device size (needs root).
//    Goal: median extract <= 1.25 x max(median cp, median openssl), as for files.
//
//   tsx test/bench/agent-goals.ts [--runs N (default 5)] [--freeze-runs N (default 3)]
//
// Everything lives in one fresh directory under the OS temp dir (TMPDIR), removed at the end, as are the
// loop device and the mount. Needs about 14 GiB free there. Exits 0 when a goal is missed (a benchmark
// reports), 1 on an error, 128 + the signal's number after SIGINT or SIGTERM (once cleaned up).
import { mkdtempSync, statfsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { availableParallelism, constants, loadavg, tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { NodeBackupPlan } from "../../src/agent/backup.js";
import { runNodeBackup } from "../../src/agent/backup.js";
import type { HashResult } from "../../src/agent/copy-and-hash.js";
import { copyAndHash } from "../../src/agent/copy-and-hash.js";
import type { Freezer, NodeActivity } from "../../src/agent/quiesce.js";
import type { AgentLog, VmRef } from "../../src/agent/types.js";
import { vmKey } from "../../src/agent/types.js";
import { blockDeviceBench } from "./block-device-bench.js";
import type { RunOptions } from "./common.js";
import {
  GiB,
  MiB,
  REPO_ROOT,
  best,
  median,
  run as runCommand,
  size,
  table,
  timed,
  warm,
  worst,
  writeIncompressible,
} from "./common.js";

const EXTRACT_GOAL = 1.25;
const RSS_GOAL_MIB = 128;
/** "About the same" peak memory for 64 MiB and 2 GiB: within this many MiB. */
const RSS_SAME_MIB = 16;
const REFLINK_GOAL_MS = 100;
/** "About the same" Reflink window for 64 MiB and 2 GiB: medians within this many ms. */
const REFLINK_SAME_MS = 20;

const SET_FILES = 4;
const SET_FILE_BYTES = 512 * MiB;
const SMALL_BYTES = 64 * MiB;
const BIG_BYTES = 2 * GiB;
/** The XFS image: a 2 GiB disk, a 64 MiB disk, their clones (sharing blocks) and XFS's own metadata. */
const XFS_IMAGE = "3G";
const NEEDED_FREE_BYTES = 14 * GiB;
const XFS_MAGIC = 0x58465342;

const options = parseArgs(process.argv.slice(2));

// SIGINT/SIGTERM stop the run between steps (and the copies between chunks); the cleanup still runs.
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
/** A command of the benchmark proper: killed when interrupted. (The cleanup runs its commands with runCommand.) */
const run = (command: string, args: readonly string[] = [], opts: RunOptions = {}) =>
  runCommand(command, args, { signal: interrupt.signal, ...opts });

interface Summary {
  goal: string;
  measured: string;
  /** PASS, MISS, SKIP, or "-" for a figure without a goal. */
  result: string;
}
const summary: Summary[] = [];

/** Resources created by this run, released in `cleanup` whatever happens. */
const held: { dir?: string; image?: string; loopDevice?: string; mountPoint?: string } = {};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "fedbackup-bench-"));
  held.dir = dir;
  const free = statfsSync(dir);
  const freeBytes = free.bavail * free.bsize;
  if (freeBytes < NEEDED_FREE_BYTES) {
    throw new Error(
      `the temp dir's filesystem has ${size(freeBytes)} free; this benchmark needs ${size(NEEDED_FREE_BYTES)}`,
    );
  }
  console.log(
    `fedbackup agent data path benchmark: node ${process.version}, ${options.runs} interleaved runs, ` +
      `${options.freezeRuns} runs per freeze case`,
  );
  printLoad("at the start");
  console.log("");
  console.log("Writing the test data (incompressible, from openssl)...");
  const setDir = join(dir, "set");
  await mkdir(setDir);
  const sources = Array.from({ length: SET_FILES }, (_, i) => join(setDir, `vm-${i + 1}.img`));
  for (const [i, path] of sources.entries()) {
    await writeIncompressible(path, SET_FILE_BYTES, `bench-set-${i + 1}`, interrupt.signal);
  }
  // The shared volume of the Copy case (the temp dir's ordinary filesystem); its disks also serve the
  // memory measurement and are copied onto the XFS volume of the Reflink case.
  const copyShared = join(dir, "copy-shared");
  const disks = [
    { label: "64 MiB", name: "vm-64mib", file: "vms/vm-64mib/disk.img", bytes: SMALL_BYTES },
    { label: "2 GiB", name: "vm-2gib", file: "vms/vm-2gib/disk.img", bytes: BIG_BYTES },
  ];
  for (const disk of disks) {
    await mkdir(join(copyShared, disk.file, ".."), { recursive: true });
    await writeIncompressible(join(copyShared, disk.file), disk.bytes, `bench-${disk.name}`, interrupt.signal);
  }
  const reference = new Map<string, string>();
  for (const path of [...sources, ...disks.map((d) => join(copyShared, d.file))]) {
    reference.set(basenameKey(path), (await opensslSha256([path])).get(path) ?? "");
  }
  checkpoint();

  await throughput(dir, sources, reference);
  await memory(dir, copyShared, disks, reference);
  await freezeWindows(dir, copyShared, disks, reference);
  summary.push(...(await blockDeviceBench({ parent: dir, runs: options.runs, signal: interrupt.signal })));

  console.log("");
  printLoad("at the end");
  console.log("");
  console.log("== Summary ==");
  console.log(table([["goal", "measured", "result"], ...summary.map((s) => [s.goal, s.measured, s.result])]));
}

/** The load average: other work on the machine (2 cores are easily shared) makes every figure noisier. */
function printLoad(when: string): void {
  const cpus = availableParallelism();
  const load = loadavg().map((l) => l.toFixed(2));
  const busy = (loadavg()[0] ?? 0) > cpus / 2;
  console.log(
    `load average ${when}: ${load.join(" ")} on ${cpus} CPUs` +
      (busy ? " (other work is running here: the figures are noisier than on an idle machine)" : ""),
  );
}

// ---- 1. throughput ----

async function throughput(dir: string, sources: string[], reference: Map<string, string>): Promise<void> {
  const total = SET_FILES * SET_FILE_BYTES;
  console.log("");
  console.log(`== 1. Throughput: ${SET_FILES} files x ${size(SET_FILE_BYTES)} = ${size(total)} ==`);
  const outDir = join(dir, "out");
  const copies = sources.map((source) => join(outDir, basename(source)));
  const seen: { who: string; path: string; sha256: string }[] = [];
  const contestants: { label: string; run: () => Promise<void>; times: number[] }[] = [
    {
      label: "extract (copyAndHash)",
      times: [],
      run: async () => {
        // One file after the other, as the agent extracts a VM's files.
        const results: HashResult[] = [];
        for (const [i, source] of sources.entries()) {
          results.push(await copyAndHash(source, copies[i] ?? "", { signal: interrupt.signal }));
        }
        results.forEach((r, i) => seen.push({ who: "copyAndHash", path: sources[i] ?? "", sha256: r.sha256 }));
      },
    },
    { label: "cp", times: [], run: () => cp(sources, outDir) },
    {
      // Reference, not part of a goal: a copy through 1 MiB user-space buffers, as copyAndHash must do (cp
      // uses copy_file_range and never brings the data to user space). The floor of the extract's I/O.
      label: "(ref.) dd bs=1M, no hash",
      times: [],
      run: async () => {
        for (const [i, source] of sources.entries()) {
          await run("dd", [`if=${source}`, `of=${copies[i] ?? ""}`, "bs=1M", "status=none"]);
        }
      },
    },
    {
      label: "openssl dgst -sha256",
      times: [],
      run: async () => {
        for (const [path, sha256] of await opensslSha256(sources)) seen.push({ who: "openssl", path, sha256 });
      },
    },
    {
      label: "cp, then sha256sum",
      times: [],
      run: async () => {
        await cp(sources, outDir);
        const out = await run("sha256sum", ["--", ...copies], { capture: true });
        for (const line of out.trim().split("\n")) {
          const match = /^([0-9a-f]{64}) [ *](.*)$/.exec(line);
          if (!match?.[1] || !match[2]) throw new Error(`unexpected sha256sum output: ${line}`);
          seen.push({ who: "sha256sum", path: match[2], sha256: match[1] });
        }
      },
    },
  ];
  for (let i = 0; i < options.runs; i++) {
    // Rotate the order, so that no contestant always runs in the wake of the same predecessor.
    for (const c of [...contestants.slice(i % contestants.length), ...contestants.slice(0, i % contestants.length)]) {
      checkpoint();
      await rm(outDir, { recursive: true, force: true });
      await mkdir(outDir);
      await warm(sources, interrupt.signal);
      c.times.push(await timed(c.run));
    }
    const times = contestants.map((c) => `${c.label} ${(c.times[i] ?? NaN).toFixed(0)} ms`);
    console.log(`  run ${i + 1}/${options.runs}: ${times.join(", ")}`);
  }
  await rm(outDir, { recursive: true, force: true });
  for (const s of seen) {
    if (s.sha256 !== reference.get(basenameKey(s.path))) {
      throw new Error(
        `${s.who} computed sha256 ${s.sha256} for ${basename(s.path)}; ` +
          `openssl said ${reference.get(basenameKey(s.path))}`,
      );
    }
  }
  const [extract, cpTimes, dd, openssl, cpSha] = contestants.map((c) => c.times);
  if (!extract || !cpTimes || !dd || !openssl || !cpSha) throw new Error("internal: a contestant is missing");
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
  console.log("(every sha256 computed above matched openssl's reference)");
  const ratio = median(extract) / Math.max(median(cpTimes), median(openssl));
  const ratioBest = best(extract) / Math.max(best(cpTimes), best(openssl));
  const cpShaRatio = median(cpSha) / median(cpTimes);
  const cpShaRatioBest = best(cpSha) / best(cpTimes);
  const verdict = ratio <= EXTRACT_GOAL ? "PASS" : "MISS";
  console.log(
    `extract / max(cp, openssl):   median ${ratio.toFixed(2)}, best ${ratioBest.toFixed(2)}  ` +
      `(goal <= ${EXTRACT_GOAL} on the median: ${verdict})`,
  );
  console.log(`(cp, then sha256sum) / cp:    median ${cpShaRatio.toFixed(2)}, best ${cpShaRatioBest.toFixed(2)}`);
  console.log(
    `extract / (ref.) dd bs=1M:     median ${(median(extract) / median(dd)).toFixed(2)}, ` +
      `best ${(best(extract) / best(dd)).toFixed(2)}`,
  );
  console.log(
    `extract / (cp, then sha256sum): median ${(median(extract) / median(cpSha)).toFixed(2)}, ` +
      `best ${(best(extract) / best(cpSha)).toFixed(2)}`,
  );
  summary.push({
    goal: `extract / max(cp, openssl) <= ${EXTRACT_GOAL} (${size(total)}, median of ${options.runs})`,
    measured: `${ratio.toFixed(2)} (best ${ratioBest.toFixed(2)})`,
    result: verdict,
  });
  summary.push({
    goal: "extract / (ref.) dd bs=1M (a user-space copy without hash)",
    measured: `${(median(extract) / median(dd)).toFixed(2)} (best ${(best(extract) / best(dd)).toFixed(2)})`,
    result: "-",
  });
  summary.push({
    goal: "(cp, then sha256sum) / cp",
    measured: `${cpShaRatio.toFixed(2)} (best ${cpShaRatioBest.toFixed(2)})`,
    result: "-",
  });
}

async function cp(sources: readonly string[], outDir: string): Promise<void> {
  await run("cp", ["--", ...sources, outDir]);
}

/** sha256 of each path, by `openssl dgst -sha256` (one process for all). */
async function opensslSha256(paths: readonly string[]): Promise<Map<string, string>> {
  const out = await run("openssl", ["dgst", "-sha256", ...paths], { capture: true });
  const result = new Map<string, string>();
  for (const line of out.trim().split("\n")) {
    // SHA2-256(<path>)= <hex>   (OpenSSL 3; older versions print SHA256(<path>)= <hex>)
    const match = /^SHA2?-?256\((.*)\)= ([0-9a-f]{64})$/.exec(line);
    if (!match?.[1] || !match[2]) throw new Error(`unexpected openssl dgst output: ${line}`);
    result.set(match[1], match[2]);
  }
  return result;
}

// The set's files and the disks have distinct names, so the name is enough to find a reference hash.
function basenameKey(path: string): string {
  return basename(path) === "disk.img" ? basename(join(path, "..")) : basename(path);
}

// ---- 2. peak memory ----

interface Disk {
  label: string;
  name: string;
  file: string;
  bytes: number;
}

async function memory(dir: string, copyShared: string, disks: Disk[], reference: Map<string, string>): Promise<void> {
  console.log("");
  console.log(
    "== 2. Peak memory of the extraction (child process: node --import tsx test/bench/extract-rss-child.ts) ==",
  );
  const rss = new Map<string, number>();
  const rows = [["file", "maxRSS (the goal)", "RSS during the copy - RSS before it", "copyAndHash time"]];
  // An empty file first: the share of the runtime (Node, tsx, the agent's modules) in the figures below.
  const empty = join(dir, "empty.img");
  await run("truncate", ["-s", "0", empty]);
  for (const item of [
    { label: "empty (runtime only)", path: empty, key: "" },
    ...disks.map((d) => ({ label: d.label, path: join(copyShared, d.file), key: d.name })),
  ]) {
    checkpoint();
    const target = join(dir, "rss-target.img");
    await run("sync");
    const child = await run(
      process.execPath,
      ["--import", "tsx", join("test", "bench", "extract-rss-child.ts"), item.path, target],
      { capture: true, cwd: REPO_ROOT },
    );
    await rm(target, { force: true });
    const result = JSON.parse(child) as {
      bytes: number;
      sha256: string;
      ms: number;
      maxRssKiB: number;
      rssBeforeKiB: number;
      rssPeakDuringKiB: number;
    };
    if (item.key && result.sha256 !== reference.get(item.key)) {
      throw new Error(
        `the child's copyAndHash of ${item.label} gave sha256 ${result.sha256}; ` +
          `openssl said ${reference.get(item.key)}`,
      );
    }
    const mib = result.maxRssKiB / 1024;
    rss.set(item.label, mib);
    const growth = (result.rssPeakDuringKiB - result.rssBeforeKiB) / 1024;
    rows.push([
      item.label,
      `${mib.toFixed(1)} MiB`,
      `${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MiB`,
      `${result.ms.toFixed(0)} ms`,
    ]);
  }
  await rm(empty, { force: true });
  console.log(table(rows));
  console.log(
    "(maxRSS is the child's peak, Node's and tsx's start-up included; the middle column, sampled every 5 ms,\n" +
      " is what the copy itself adds)",
  );
  const sizes = disks.map((d) => rss.get(d.label) ?? NaN);
  for (const [i, disk] of disks.entries()) {
    const mib = sizes[i] ?? NaN;
    summary.push({
      goal: `extract peak RSS <= ${RSS_GOAL_MIB} MiB, ${disk.label} file`,
      measured: `${mib.toFixed(1)} MiB`,
      result: mib <= RSS_GOAL_MIB ? "PASS" : "MISS",
    });
  }
  const spread = Math.max(...sizes) - Math.min(...sizes);
  summary.push({
    goal: `extract peak RSS about the same for ${disks.map((d) => d.label).join(" and ")} (within ${RSS_SAME_MIB} MiB)`,
    measured: `differ by ${spread.toFixed(1)} MiB`,
    result: spread <= RSS_SAME_MIB ? "PASS" : "MISS",
  });
}

// ---- 3. freeze windows ----

/**
 * A Freezer whose freeze and unfreeze succeed at once, recording for each VM the window the guest would
 * feel: from the moment the freeze call returns (the guest is frozen) to the moment unfreeze is called.
 */
class TimingFreezer implements Freezer {
  readonly calls: string[] = [];
  readonly windows = new Map<string, number>();
  private readonly frozenAt = new Map<string, number>();

  freeze(vm: VmRef): Promise<void> {
    this.calls.push(`freeze ${vmKey(vm)}`);
    this.frozenAt.set(vmKey(vm), performance.now());
    return Promise.resolve();
  }

  unfreeze(vm: VmRef): Promise<void> {
    const at = performance.now();
    this.calls.push(`unfreeze ${vmKey(vm)}`);
    const from = this.frozenAt.get(vmKey(vm));
    if (from !== undefined) this.windows.set(vmKey(vm), at - from);
    this.frozenAt.delete(vmKey(vm));
    return Promise.resolve();
  }

  /** VMs frozen and not unfrozen afterwards (there must be none). */
  stillFrozen(): string[] {
    return [...this.frozenAt.keys()];
  }
}

const alwaysActive = (): Promise<NodeActivity> => Promise.resolve({ active: true });

interface FreezeCase {
  method: "Reflink" | "Copy";
  disk: Disk;
  /** freezeWindowMs of the captured result (withFrozen: from the freeze request to the confirmed thaw). */
  reported: number[];
  /** What the guest feels, from the fake Freezer: freeze call returned -> unfreeze called. */
  felt: number[];
}

async function freezeWindows(
  dir: string,
  copyShared: string,
  disks: Disk[],
  reference: Map<string, string>,
): Promise<void> {
  console.log("");
  console.log(
    `== 3. Freeze window per VM: runNodeBackup, one VM per run, fake Freezer (answers at once), ` +
      `${options.freezeRuns} runs each ==`,
  );
  const cases: FreezeCase[] = [];
  const reflinkSkip = await reflinkUnavailable();
  if (reflinkSkip) {
    console.log(`Reflink: SKIPPED (${reflinkSkip})`);
  } else {
    const shared = await mountXfs(dir);
    console.log(
      `Reflink: loop-mounted XFS (mkfs.xfs -m reflink=1) on a ${XFS_IMAGE} sparse image file; ` +
        "its disks hold real data (copied in, not sparse)",
    );
    for (const disk of disks) {
      await mkdir(join(shared, disk.file, ".."), { recursive: true });
      await run("cp", ["--", join(copyShared, disk.file), join(shared, disk.file)]);
    }
    for (const disk of disks) cases.push(await freezeCase(dir, shared, "Reflink", disk, reference));
  }
  console.log(
    `Copy: the temp dir's own filesystem (${await fsType(copyShared)}); its disks hold real data (not sparse)`,
  );
  for (const disk of disks) cases.push(await freezeCase(dir, copyShared, "Copy", disk, reference));

  console.log(
    table([
      ["method", "disk", "freezeWindowMs median", "max", "all runs", "felt by the guest, median"],
      ...cases.map((c) => [
        c.method,
        c.disk.label,
        `${median(c.reported).toFixed(0)} ms`,
        `${worst(c.reported).toFixed(0)} ms`,
        c.reported.map((v) => v.toFixed(0)).join(" "),
        `${median(c.felt).toFixed(1)} ms`,
      ]),
    ]),
  );
  console.log(
    "(freezeWindowMs is the captured result's: from the freeze request to the confirmed thaw, whole ms; the felt\n" +
      " window is the fake Freezer's: from the freeze call's return to the unfreeze call)",
  );

  const reflink = cases.filter((c) => c.method === "Reflink");
  if (reflink.length === 0) {
    summary.push({
      goal: `Reflink freeze window < ${REFLINK_GOAL_MS} ms`,
      measured: reflinkSkip ?? "",
      result: "SKIP",
    });
  }
  for (const c of reflink) {
    const max = worst(c.reported);
    summary.push({
      goal: `Reflink freeze window < ${REFLINK_GOAL_MS} ms, ${c.disk.label} disk (every run)`,
      measured: `median ${median(c.reported).toFixed(0)} ms, max ${max.toFixed(0)} ms`,
      result: max < REFLINK_GOAL_MS ? "PASS" : "MISS",
    });
  }
  if (reflink.length >= 2) {
    const medians = reflink.map((c) => median(c.reported));
    const spread = Math.max(...medians) - Math.min(...medians);
    summary.push({
      goal:
        `Reflink freeze window about the same for ${reflink.map((c) => c.disk.label).join(" and ")} ` +
        `(medians within ${REFLINK_SAME_MS} ms)`,
      measured: `differ by ${spread.toFixed(0)} ms`,
      result: spread <= REFLINK_SAME_MS ? "PASS" : "MISS",
    });
  }
  for (const c of cases.filter((x) => x.method === "Copy")) {
    summary.push({
      goal: `Copy freeze window, ${c.disk.label} disk (no goal; grows with the data)`,
      measured: `median ${median(c.reported).toFixed(0)} ms`,
      result: "-",
    });
  }
}

async function freezeCase(
  dir: string,
  sharedRoot: string,
  method: "Reflink" | "Copy",
  disk: Disk,
  reference: Map<string, string>,
): Promise<FreezeCase> {
  const result: FreezeCase = { method, disk, reported: [], felt: [] };
  const vm = { namespace: "bench", name: disk.name };
  for (let attempt = 0; attempt < options.freezeRuns; attempt++) {
    checkpoint();
    const backupRoot = join(dir, `location-${method}-${disk.name}-${attempt}`);
    const freezer = new TimingFreezer();
    const log = collectingLog();
    const plan: NodeBackupPlan = {
      backup: { namespace: "bench", name: "bench", uid: "bench-uid" },
      node: "bench-node",
      round: attempt + 1,
      method,
      quiesce: "GuestAgent",
      // The CRD's defaults (30s, 2m).
      freezeTimeoutMs: 30_000,
      maxFreezeMs: 120_000,
      extractAt: "Backup",
      sharedRoot,
      locationRoot: dir,
      backupPath: basename(backupRoot),
      workloads: [{ ...vm, uid: `uid-${disk.name}`, files: [disk.file] }],
    };
    await run("sync");
    try {
      const outcome = await runNodeBackup(plan, {
        freezer,
        isActiveOnNode: alwaysActive,
        clock: { now: () => Date.now() },
        log,
        signal: interrupt.signal,
        // The benchmark handles SIGINT/SIGTERM itself (to clean up); the agent's handlers would exit.
        signals: [],
      });
      const captured = outcome.captured[0];
      if (outcome.method !== method || outcome.failed.length > 0 || !captured) {
        throw new Error(
          `${method} of ${disk.label} was not captured: ${JSON.stringify(outcome.failed)}; ` +
            `log:\n${log.lines.join("\n")}`,
        );
      }
      if (captured.sha256 !== reference.get(disk.name)) {
        throw new Error(
          `${method} of ${disk.label}: sha256 ${captured.sha256}, openssl said ${reference.get(disk.name)}`,
        );
      }
      if (freezer.stillFrozen().length > 0)
        throw new Error(`${method}: left frozen: ${freezer.stillFrozen().join(", ")}`);
      if (captured.indication !== "GuestAgent" || log.lines.length > 0) {
        console.log(
          `  ${method} ${disk.label} run ${attempt + 1}: indication ${captured.indication}; ${captured.message ?? ""}`,
        );
        for (const line of log.lines) console.log(`    ${line}`);
      }
      result.reported.push(captured.freezeWindowMs);
      result.felt.push(freezer.windows.get(vmKey(vm)) ?? NaN);
    } finally {
      await rm(backupRoot, { recursive: true, force: true });
    }
  }
  return result;
}

/** Logs warnings and errors only (info and debug are the normal course of a run). */
function collectingLog(): AgentLog & { lines: string[] } {
  const lines: string[] = [];
  const add = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${meta ? JSON.stringify(meta) : ""}`);
  };
  return { lines, debug: () => {}, info: () => {}, warn: add("warn"), error: add("error") };
}

/** Why the Reflink case cannot run here, or undefined when it can. */
async function reflinkUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "not root: cannot attach a loop device and mount it";
  try {
    await run("mkfs.xfs", ["-V"]);
  } catch {
    return "mkfs.xfs is missing (apt-get install -y xfsprogs; make bench does this as root)";
  }
  return undefined;
}

/** Makes, attaches and mounts the XFS image; returns the mount point. Recorded in `held` for cleanup. */
async function mountXfs(dir: string): Promise<string> {
  const image = join(dir, "xfs.img");
  const mountPoint = join(dir, "xfs");
  await run("truncate", ["-s", XFS_IMAGE, image]);
  held.image = image;
  await run("mkfs.xfs", ["-q", "-m", "reflink=1", image]);
  await mkdir(mountPoint);
  // Not interruptible: a device attached while its path is lost could not be detached by the cleanup.
  held.loopDevice = (await runCommand("losetup", ["--find", "--show", image], { capture: true })).trim();
  await runCommand("mount", ["-t", "xfs", held.loopDevice, mountPoint]);
  held.mountPoint = mountPoint;
  const type = statfsSync(mountPoint).type;
  if (type !== XFS_MAGIC)
    throw new Error(`${mountPoint} is not XFS after mounting (statfs type 0x${type.toString(16)})`);
  return mountPoint;
}

async function fsType(path: string): Promise<string> {
  try {
    return (await run("findmnt", ["-n", "-o", "FSTYPE", "-T", path], { capture: true })).trim();
  } catch {
    return "unknown";
  }
}

// ---- cleanup ----

/** Unmounts, detaches and removes everything this run made. Returns false (after reporting) on a failure. */
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
  if (held.mountPoint) {
    const mountPoint = held.mountPoint;
    await attempt(`umount ${mountPoint}`, async () => {
      // A file still being closed keeps the mount busy for a moment; lazy unmount as a last resort.
      for (let i = 0; ; i++) {
        try {
          await runCommand("umount", [mountPoint]);
          return;
        } catch (err) {
          if (i >= 30) {
            await runCommand("umount", ["-l", mountPoint]);
            console.error(`cleanup: umount needed -l (${err instanceof Error ? err.message : String(err)})`);
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    });
  }
  if (held.loopDevice) {
    const device = held.loopDevice;
    await attempt(`losetup -d ${device}`, () => runCommand("losetup", ["-d", device]));
  }
  if (held.image) {
    const image = held.image;
    await attempt("checking that no loop device is left", async () => {
      // A device still open (udev probing it after the umount) is detached when closed: wait for that.
      for (let i = 0; ; i++) {
        const left = (await runCommand("losetup", ["-j", image], { capture: true })).trim();
        if (!left) return;
        if (i >= 100) throw new Error(`still attached after 10 s: ${left}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
  }
  if (held.dir) {
    const dir = held.dir;
    await attempt(`removing ${dir}`, () => rm(dir, { recursive: true, force: true }));
  }
  return ok;
}

function parseArgs(args: string[]): { runs: number; freezeRuns: number } {
  const result = { runs: 5, freezeRuns: 3 };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = Number(args[i + 1]);
    if ((flag === "--runs" || flag === "--freeze-runs") && Number.isInteger(value) && value >= 1) {
      result[flag === "--runs" ? "runs" : "freezeRuns"] = value;
      i++;
      continue;
    }
    console.error("usage: tsx test/bench/agent-goals.ts [--runs N (default 5)] [--freeze-runs N (default 3)]");
    process.exit(2);
  }
  return result;
}

// Last, so that every declaration above is initialised before main runs.
try {
  await main();
} catch (err) {
  if (interruptedBy) {
    // As a shell reports a death by that signal.
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
