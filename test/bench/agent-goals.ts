// The node agent's data path against its goals (`make bench`):
//
// 1. Throughput, on a set of 4 VM disk files of 512 MiB of incompressible data (2 GiB in all): the agent's
//    extraction copy (copyAndHash, the files one after the other as the agent does) against `cp` alone,
//    `openssl dgst -sha256` alone, and `cp` then `sha256sum` of the copies; for reference, a raw read of the
//    sources (`dd of=/dev/null`), a copy through user-space buffers without a hash (`dd bs=1M`), and two backup
//    tools backing the same files up into a new local repository each run: restic (Debian's package) and Kopia
//    (hack/kopia/build.sh), as ratios to the extract, with what each does that the agent does not. A missing
//    tool's row says SKIPPED. Runs are interleaved (the order changes each round), each run's output is
//    deleted before the next, and the runs are separated three ways (see CONDITIONS): flushed (`sync` before
//    each run, sources in the page cache: the goal's), back to back (no sync: one run's write-back lands on
//    the next), and cold (sync and drop_caches; only with --cold, as root). restic and Kopia run in a flushed
//    pass of their own, beside the same contestants, so that their memory does not weigh on the goal's pass.
//    Each run is timed until what it wrote is durable (its work, then an fsync of each file it wrote, as the
//    agent commits each file); the work alone and its CPU time are reported too (CPU time shows what a run
//    cost when other work on the machine stretched its wall time). Goal: median extract <= 1.25 x
//    max(median cp, median openssl), flushed, until durable.
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
//   tsx test/bench/agent-goals.ts [--runs N (default 5)] [--freeze-runs N (default 3)] [--sections 1,2,3,4]
//                                 [--cold]
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
import type { BackupTool } from "./backup-tools.js";
import { kopia, restic } from "./backup-tools.js";
import type { Measurement, RunOptions, Separation } from "./common.js";
import {
  GiB,
  MiB,
  REPO_ROOT,
  best,
  measured,
  median,
  writeBack,
  prepareRun,
  roundOrder,
  run as runCommand,
  separationUnavailable,
  size,
  table,
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

  const sections = options.sections;
  if (sections.has(1)) await throughput(dir, sources, reference);
  if (sections.has(2)) await memory(dir, copyShared, disks, reference);
  if (sections.has(3)) await freezeWindows(dir, copyShared, disks, reference);
  if (sections.has(4)) {
    summary.push(...(await blockDeviceBench({ parent: dir, runs: options.runs, signal: interrupt.signal })));
  }

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

/**
 * A way of separating the runs of section 1 (see Separation in common.ts) and what its figures are for.
 *
 * What is timed: each contestant's work and then an fsync of every file it wrote ("until durable"), as the
 * agent commits each file it extracts with an fsync. Without it, whether a writer's 2 GiB are written back
 * during its run, after it, or during the next contestant's run depends on where the kernel's dirty
 * thresholds fall (on this 24 GiB machine the background threshold is 2.1 GiB: one 512 MiB file copies at
 * 2.4 GB/s, the set of four at 0.6-0.9 GB/s), not on the contestant. The work alone is reported beside it.
 *
 * The goal is judged with `sync` between runs (the write-back of the previous run's deleted output, and the
 * discard of its blocks on a filesystem mounted with `discard`, done before the timer starts) and the sources
 * in the page cache: the goal asks whether the extraction's pipeline costs more than the slower of its parts
 * (copy, hash) on the same bytes. Reading from the device (drop_caches) adds the same device time to all
 * three, which pulls the ratio towards 1 whatever the pipeline does and makes it a figure of the disk; it is
 * reported, as is the figure without the sync (back to back: how the runs were separated before), but
 * neither is the goal's. And drop_caches empties the page cache of everything else on the machine: on a
 * shared machine the other work then re-reads its files from the device, and this run's figures with it
 * (openssl measured 5 s, then 42 s in the next run), so the cold condition runs only when asked for (--cold,
 * as root).
 *
 * restic and Kopia run in a pass of their own (flushed too, with the other contestants, the ratios to the
 * extract taken from it), not in the goal's: each run of them allocates and frees gigabytes, and on a VM
 * whose hypervisor takes back the memory its guest frees (virtio-balloon free page reporting, on here), the
 * user-space copies that follow pay to touch memory afresh. Measured on this 2-core VM: with restic in the
 * rotation, `dd bs=1M` 1.9 -> 4.0 s median and the extract through the page cache 1.23 -> 1.52 s, `cp`
 * (a copy in the kernel) about the same; and `dd` of 2 GiB cost 0.5 s of system time right after a `sync`,
 * 3.6-3.9 s ten seconds later. The goal asks what the extraction's pipeline costs, not what a neighbour's
 * memory churn does.
 */
interface Condition extends Separation {
  label: string;
  /** The label in the summary. */
  short: string;
  /** The goal is judged on this condition's medians. */
  goal: boolean;
  /** restic and Kopia run in this condition (10-40 s a run each, so in one condition only). */
  tools: boolean;
}

const CONDITIONS: readonly Condition[] = [
  {
    label: "flushed (sync between runs, sources in the page cache)",
    short: "flushed",
    sync: true,
    dropCaches: false,
    goal: true,
    tools: false,
  },
  {
    label: "flushed, with restic and Kopia in the rotation",
    short: "flushed, with restic and Kopia",
    sync: true,
    dropCaches: false,
    goal: false,
    tools: true,
  },
  {
    label: "back to back (no sync between runs)",
    short: "back to back (no sync)",
    sync: false,
    dropCaches: false,
    goal: false,
    tools: false,
  },
  {
    label: "flushed, cold (sync and drop_caches between runs: sources read from the device)",
    short: "cold (sync, drop_caches)",
    sync: true,
    dropCaches: true,
    goal: false,
    tools: false,
  },
];

interface Contestant {
  label: string;
  /** Untimed work before each run, before the caches are prepared (a backup tool's new repository). */
  prepare?: () => Promise<void>;
  run: () => Promise<void>;
  times: Measurement[];
  /** Why it has no (more) figures: a tool missing or failing. Its row says so; the benchmark goes on. */
  skipped?: string;
}

/** A backup tool ready to run, or why it is not. */
type ToolStatus = { tool: BackupTool; version: string } | { label: string; skipped: string };

async function throughput(dir: string, sources: string[], reference: Map<string, string>): Promise<void> {
  const total = SET_FILES * SET_FILE_BYTES;
  console.log("");
  console.log(`== 1. Throughput: ${SET_FILES} files x ${size(SET_FILE_BYTES)} = ${size(total)} ==`);
  const tools = await backupTools();
  for (const status of tools) {
    console.log("skipped" in status ? `${status.label}: SKIPPED (${status.skipped})` : status.version);
  }
  for (const condition of CONDITIONS) {
    checkpoint();
    console.log("");
    console.log(`-- ${condition.label}, ${options.runs} interleaved runs --`);
    const unavailable =
      condition.dropCaches && !options.cold
        ? "not asked for: --cold (as root) drops the page cache between runs"
        : separationUnavailable(condition, process.getuid?.());
    if (unavailable) {
      console.log(`SKIPPED (${unavailable})`);
      summary.push({ goal: `extract / max(cp, openssl), ${condition.short}`, measured: unavailable, result: "SKIP" });
      continue;
    }
    printLoad("before");
    await throughputCondition(dir, sources, reference, condition, condition.tools ? tools : []);
    printLoad("after");
  }
}

async function throughputCondition(
  dir: string,
  sources: string[],
  reference: Map<string, string>,
  condition: Condition,
  tools: readonly ToolStatus[],
): Promise<void> {
  const total = SET_FILES * SET_FILE_BYTES;
  const outDir = join(dir, "out");
  const setDir = join(sources[0] ?? "", "..");
  const copies = sources.map((source) => join(outDir, basename(source)));
  const seen: { who: string; path: string; sha256: string }[] = [];
  const contestants: Contestant[] = [
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
      label: "openssl dgst -sha256",
      times: [],
      run: async () => {
        for (const [path, sha256] of await opensslSha256(sources)) seen.push({ who: "openssl", path, sha256 });
      },
    },
    {
      // Reference: reading the sources and nothing else, the floor of every contestant.
      label: "(ref.) raw read, dd bs=1M of=/dev/null",
      times: [],
      run: async () => {
        for (const source of sources) await run("dd", [`if=${source}`, "of=/dev/null", "bs=1M", "status=none"]);
      },
    },
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
    {
      // The agent's extract as it was before it wrote with O_DIRECT: what direct writes changed.
      label: "(ref.) extract through the page cache",
      times: [],
      run: async () => {
        for (const [i, source] of sources.entries()) {
          const r = await copyAndHash(source, copies[i] ?? "", { signal: interrupt.signal, directWrites: false });
          seen.push({ who: "copyAndHash through the page cache", path: source, sha256: r.sha256 });
        }
      },
    },
    ...tools.map((status): Contestant => {
      if ("skipped" in status) return { ...status, times: [], run: () => Promise.resolve() };
      const { tool } = status;
      const env = tool.env(process.env);
      return {
        label: tool.label,
        times: [],
        prepare: async () => {
          for (const step of tool.setup(outDir)) await run(step.command, step.args, { env });
        },
        run: async () => {
          const step = tool.backup(outDir, setDir);
          await run(step.command, step.args, { env });
        },
      };
    }),
  ];
  for (let i = 0; i < options.runs; i++) {
    // A new order each round, so that no contestant always runs in the wake of the same predecessor.
    for (const c of roundOrder(contestants, i)) {
      if (c.skipped) continue;
      checkpoint();
      await rm(outDir, { recursive: true, force: true });
      await mkdir(outDir);
      try {
        await c.prepare?.();
        await prepareRun(condition, sources, interrupt.signal);
        c.times.push(await measured(c.run, () => writeBack(outDir, interrupt.signal)));
      } catch (err) {
        // A reference tool that fails is reported, not fatal; the agent's and the system tools' failures are.
        if (!c.prepare || interrupt.signal.aborted) throw err;
        c.skipped = `failed: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
        console.log(`  ${c.label}: ${c.skipped}`);
      }
    }
    const times = contestants
      .filter((c) => c.times[i])
      .map((c) => `${c.label} ${(c.times[i]?.durableMs ?? NaN).toFixed(0)} ms`);
    console.log(`  run ${i + 1}/${options.runs}, until durable: ${times.join(", ")}`);
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
  const work = (c: Contestant) => c.times.map((t) => t.ms);
  const durable = (c: Contestant) => c.times.map((t) => t.durableMs);
  const cpu = (c: Contestant) => c.times.map((t) => t.cpuMs);
  const mibPerS = (ms: number) => `${(total / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
  console.log(
    table([
      ["", "until durable, median", "best", "work alone, median", "CPU, median", "all runs until durable (ms)"],
      ...contestants.map((c) =>
        c.times.length === 0
          ? [c.label, "SKIPPED", "", "", "", c.skipped ?? ""]
          : [
              c.label,
              `${median(durable(c)).toFixed(0)} ms (${mibPerS(median(durable(c)))})`,
              `${best(durable(c)).toFixed(0)} ms`,
              `${median(work(c)).toFixed(0)} ms`,
              `${median(cpu(c)).toFixed(0)} ms`,
              durable(c)
                .map((t) => t.toFixed(0))
                .join(" ") + (c.skipped ? ` (then ${c.skipped})` : ""),
            ],
      ),
    ]),
  );
  console.log(
    "(until durable: the work, then an fsync of every file it wrote; work alone: without that write-back, which\n" +
      " the kernel may or may not do during the run depending on how close 2 GiB of dirty pages come to its\n" +
      " thresholds; CPU: this process's and its commands' user + system time during the work, all threads and\n" +
      " cores. Every sha256 computed above matched openssl's reference)",
  );
  const [extract, cpTimes, openssl, rawRead, dd, cpSha, buffered] = contestants.map(durable);
  if (!extract || !cpTimes || !openssl || !rawRead || !dd || !cpSha || !buffered) {
    throw new Error("internal: a contestant is missing");
  }
  const [extractWork, cpWork, opensslWork] = contestants.map(work);
  const ratio = median(extract) / Math.max(median(cpTimes), median(openssl));
  const ratioBest = best(extract) / Math.max(best(cpTimes), best(openssl));
  const workRatio = median(extractWork ?? []) / Math.max(median(cpWork ?? []), median(opensslWork ?? []));
  const verdict = !condition.goal ? "-" : ratio <= EXTRACT_GOAL ? "PASS" : "MISS";
  console.log(
    `extract / max(cp, openssl):     median ${ratio.toFixed(2)}, best ${ratioBest.toFixed(2)}` +
      (condition.goal ? `  (goal <= ${EXTRACT_GOAL} on the median: ${verdict})` : "  (the goal is judged flushed)"),
  );
  console.log(`  the same, work alone:         median ${workRatio.toFixed(2)}`);
  const versus = (label: string, other: number[]) => {
    const line = `median ${(median(extract) / median(other)).toFixed(2)}, best ${(best(extract) / best(other)).toFixed(2)}`;
    console.log(`extract / ${label}`.padEnd(32) + line);
    return line;
  };
  const versusRawRead = versus("(ref.) raw read:", rawRead);
  versus("(ref.) dd bs=1M:", dd);
  versus("(cp, then sha256sum):", cpSha);
  const versusBuffered = versus("(ref.) through the page cache:", buffered);
  summary.push({
    goal:
      `extract / max(cp, openssl)${condition.goal ? ` <= ${EXTRACT_GOAL}` : ""} ` +
      `(${size(total)} until durable, median of ${options.runs}), ${condition.short}`,
    measured: `${ratio.toFixed(2)} (best ${ratioBest.toFixed(2)})`,
    result: verdict,
  });
  summary.push({
    goal: `  the same, work alone (without its write-back), ${condition.short}`,
    measured: workRatio.toFixed(2),
    result: "-",
  });
  // What the extract costs against doing its two parts apart, in CPU time: unlike the wall-time ratio, it
  // does not change when other work on the machine takes the second core the pipeline counts on.
  const [extractCpu, cpCpu, opensslCpu] = contestants.map(cpu);
  const cpuRatio = median(extractCpu ?? []) / (median(cpCpu ?? []) + median(opensslCpu ?? []));
  console.log(`extract CPU / (cp CPU + openssl CPU): median ${cpuRatio.toFixed(2)}`);
  if (condition.goal) {
    summary.push({
      goal: `extract CPU time / (cp's + openssl's), ${condition.short}`,
      measured: cpuRatio.toFixed(2),
      result: "-",
    });
    summary.push({ goal: `extract / (ref.) raw read, ${condition.short}`, measured: versusRawRead, result: "-" });
    summary.push({
      goal: "extract / (ref.) dd bs=1M (a user-space copy without hash)",
      measured: `${(median(extract) / median(dd)).toFixed(2)} (best ${(best(extract) / best(dd)).toFixed(2)})`,
      result: "-",
    });
    summary.push({
      goal: `extract / (ref.) extract through the page cache, ${condition.short}`,
      measured: versusBuffered,
      result: "-",
    });
    summary.push({
      goal: "(cp, then sha256sum) / cp",
      measured:
        `${(median(cpSha) / median(cpTimes)).toFixed(2)} ` + `(best ${(best(cpSha) / best(cpTimes)).toFixed(2)})`,
      result: "-",
    });
  }
  for (const [i, status] of tools.entries()) {
    const c = contestants[7 + i];
    const label = "skipped" in status ? status.label : status.tool.label;
    if (!c || c.times.length === 0) {
      summary.push({ goal: `${label} / extract`, measured: c?.skipped ?? "skipped", result: "SKIP" });
      continue;
    }
    const toolRatio = median(durable(c)) / median(extract);
    const note = c.skipped ? `, ${c.times.length} runs before it ${c.skipped}` : "";
    summary.push({
      goal: `${label} / extract (the same files into a new local repository), ${condition.short}`,
      measured: `${toolRatio.toFixed(2)} (the agent ${toolRatio.toFixed(1)}x faster${note})`,
      result: "-",
    });
    if (!("skipped" in status)) console.log(`${label}: ${status.tool.does}; the agent does none of this.`);
  }
}

/** restic (Debian's package) and Kopia (built by hack/kopia/build.sh), or why each is skipped. */
async function backupTools(): Promise<ToolStatus[]> {
  const result: ToolStatus[] = [];
  const versionOf = async (tool: BackupTool, binary: string) =>
    (await run(binary, tool.versionArgs, { capture: true, env: tool.env(process.env) })).trim().split("\n")[0] ?? "";
  const resticTool = restic();
  try {
    result.push({ tool: resticTool, version: await versionOf(resticTool, "restic") });
  } catch {
    result.push({
      label: resticTool.label,
      skipped: "restic is missing (Debian's package restic; make test-tools installs it as root)",
    });
  }
  const label = "kopia snapshot create";
  let binary = process.env.FEDBACKUP_KOPIA;
  if (!binary) {
    try {
      // Builds Kopia once per machine (a few minutes), then finds it in the cache.
      const built = await run("bash", [join(REPO_ROOT, "hack", "kopia", "build.sh")], { capture: true });
      binary = join(built.trim(), "bin", "kopia");
    } catch (err) {
      const why = err instanceof Error ? (err.message.split("\n").pop() ?? err.message) : String(err);
      result.push({ label, skipped: `hack/kopia/build.sh failed (Kopia is built with go): ${why}` });
      return result;
    }
  }
  const kopiaTool = kopia(binary);
  try {
    result.push({ tool: kopiaTool, version: `kopia ${await versionOf(kopiaTool, binary)}` });
  } catch (err) {
    result.push({ label, skipped: `${binary} does not run: ${err instanceof Error ? err.message : String(err)}` });
  }
  return result;
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

interface Options {
  runs: number;
  freezeRuns: number;
  /** The sections to run (1-4), all by default. */
  sections: Set<number>;
  /** Also measure section 1 with the page cache dropped between runs (root; empties the machine's cache). */
  cold: boolean;
}

const USAGE =
  "usage: tsx test/bench/agent-goals.ts [--runs N (default 5)] [--freeze-runs N (default 3)] " +
  "[--sections 1,2,3,4 (default all)] [--cold]";

function parseArgs(args: string[]): Options {
  const result: Options = { runs: 5, freezeRuns: 3, sections: new Set([1, 2, 3, 4]), cold: false };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    if (flag === "--cold") {
      result.cold = true;
      continue;
    }
    const value = Number(args[i + 1]);
    if ((flag === "--runs" || flag === "--freeze-runs") && Number.isInteger(value) && value >= 1) {
      result[flag === "--runs" ? "runs" : "freezeRuns"] = value;
      i++;
      continue;
    }
    const sections = (args[i + 1] ?? "").split(",").map(Number);
    if (flag === "--sections" && sections.every((n) => [1, 2, 3, 4].includes(n))) {
      result.sections = new Set(sections);
      i++;
      continue;
    }
    console.error(USAGE);
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
