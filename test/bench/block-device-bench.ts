// Extraction of a block device (src/agent/block-device.ts) against `cp` and `openssl dgst -sha256` of the
// same device, and what it stores at the location against the device's size.
//
// The device: a 2 GiB loop device over a sparse file, half of it incompressible data (from openssl) and
// half zeros, in alternating 16 MiB runs. Every contestant reads the device (/dev/loopN) with a warm page
// cache (the device read once before each run) after a `sync`; runs are interleaved (the order changes each round).
// `cp` copies all 2 GiB (a device is not a sparse file to cp: it writes the zeros too); the extraction
// writes the non-zero chunks only (the hole list goes to the manifest). Reported: median extract /
// max(median cp, median openssl), with the goal of the file extraction (<= 1.25), and the bytes stored
// (and the blocks the copies allocate) against the device size.
//
// Part of `make bench` (agent-goals.ts, section 4); alone:
//   tsx test/bench/block-device-bench.ts [--runs N (default 5)]
// Needs root (losetup) and about 5 GiB free in the temp dir; the loop device is detached and every file
// removed at the end, also after SIGINT or SIGTERM.
import type { Stats } from "node:fs";
import { mkdtempSync, statfsSync } from "node:fs";
import { open, rm, stat } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { extractBlockDevice } from "../../src/agent/block-device.js";
import type { BlockLayout } from "../../src/agent/manifest.js";
import type { RunOptions } from "./common.js";
import {
  GiB,
  MiB,
  best,
  median,
  roundOrder,
  run as runCommand,
  size,
  table,
  timed,
  writeIncompressible,
} from "./common.js";

const DEVICE_BYTES = 2 * GiB;
const RUN_BYTES = 16 * MiB;
const GOAL = 1.25;
const NEEDED_FREE_BYTES = 5 * GiB;

/** One row of agent-goals.ts's summary. */
export interface BlockSummary {
  goal: string;
  measured: string;
  result: string;
}

/** Measures the block device case in a new directory below `parent`, removed afterwards. */
export async function blockDeviceBench(opts: {
  parent: string;
  runs: number;
  signal: AbortSignal;
}): Promise<BlockSummary[]> {
  const { runs, signal } = opts;
  const run = (command: string, args: readonly string[] = [], more: RunOptions = {}) =>
    runCommand(command, args, { signal, ...more });
  console.log("");
  console.log(
    `== 4. Block device: extraction of a ${size(DEVICE_BYTES)} loop device (half zeros, ${size(RUN_BYTES)} runs) ` +
      `vs cp and openssl dgst -sha256, ${runs} interleaved runs ==`,
  );
  if (process.getuid?.() !== 0) {
    console.log("SKIPPED (not root: cannot attach a loop device)");
    return [{ goal: "block device extraction", measured: "not root: no loop device", result: "SKIP" }];
  }
  const dir = mkdtempSync(join(opts.parent, "block-"));
  const backing = join(dir, "device.img");
  let device: string | undefined;
  try {
    const free = statfsSync(dir);
    if (free.bavail * free.bsize < NEEDED_FREE_BYTES) {
      throw new Error(`the block device case needs ${size(NEEDED_FREE_BYTES)} free in ${dir}`);
    }
    await makeHalfZeroImage(backing, join(dir, "data.tmp"), signal);
    // Not interruptible: a device attached while its name is lost could not be detached.
    device = (await runCommand("losetup", ["--find", "--show", backing], { capture: true })).trim();
    const dev = device;
    console.log(`device ${dev} over a sparse file: ${size(DEVICE_BYTES)}, ${size(DEVICE_BYTES / 2)} of it data`);
    console.log(`load average: ${loadLine()}`);

    const reference = await opensslSha256(dev, run);
    const stored = join(dir, "extract.data");
    const copied = join(dir, "cp.img");
    let layout: BlockLayout | undefined;
    let storedInfo: Stats | undefined;
    let copiedInfo: Stats | undefined;
    const contestants: { label: string; times: number[]; body: () => Promise<unknown> }[] = [
      {
        label: "extract (extractBlockDevice)",
        times: [],
        body: async () => {
          layout = await extractBlockDevice(dev, stored, { signal });
          // What it costs at the location (a stat: nothing next to the copy).
          storedInfo = await stat(stored);
          if (layout.sha256 !== reference) {
            throw new Error(`extractBlockDevice gave sha256 ${layout.sha256}, openssl ${reference}`);
          }
        },
      },
      {
        label: "cp",
        times: [],
        body: async () => {
          await run("cp", ["--", dev, copied]);
          copiedInfo = await stat(copied);
        },
      },
      {
        label: "openssl dgst -sha256",
        times: [],
        body: async () => {
          const sha = await opensslSha256(dev, run);
          if (sha !== reference) throw new Error(`openssl gave ${sha}, then ${reference}`);
        },
      },
    ];
    for (let i = 0; i < runs; i++) {
      for (const c of roundOrder(contestants, i)) {
        signal.throwIfAborted();
        await rm(stored, { force: true });
        await rm(copied, { force: true });
        // A warm page cache for the device, as the file benchmarks have for their sources.
        await run("dd", [`if=${dev}`, "of=/dev/null", "bs=4M", "status=none"]);
        c.times.push(await timed(c.body));
      }
      console.log(
        `  run ${i + 1}/${runs}: ${contestants.map((c) => `${c.label} ${c.times[i]?.toFixed(0)} ms`).join(", ")}`,
      );
    }
    if (!layout || !storedInfo || !copiedInfo) throw new Error("internal: a contestant did not run");
    const mibPerS = (ms: number) => `${(DEVICE_BYTES / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
    console.log(
      table([
        ["", "median", "best", "all runs (ms)"],
        ...contestants.map((c) => [
          c.label,
          `${median(c.times).toFixed(0)} ms (${mibPerS(median(c.times))} of device)`,
          `${best(c.times).toFixed(0)} ms`,
          c.times.map((t) => t.toFixed(0)).join(" "),
        ]),
      ]),
    );
    console.log("(every sha256 computed above matched openssl's of the device)");
    console.log(`load average: ${loadLine()}`);
    const [extract, cp, openssl] = contestants.map((c) => c.times);
    if (!extract || !cp || !openssl) throw new Error("internal: a contestant is missing");
    const ratio = median(extract) / Math.max(median(cp), median(openssl));
    const ratioBest = best(extract) / Math.max(best(cp), best(openssl));
    const verdict = ratio <= GOAL ? "PASS" : "MISS";
    console.log(
      `extract / max(cp, openssl): median ${ratio.toFixed(2)}, best ${ratioBest.toFixed(2)} ` +
        `(goal <= ${GOAL} on the median: ${verdict})`,
    );
    console.log(
      table([
        ["", "bytes", "allocated (du)", "of the device size"],
        [
          "extract: data file",
          size(layout.storedBytes),
          size(storedInfo.blocks * 512),
          `${((100 * layout.storedBytes) / DEVICE_BYTES).toFixed(1)} %`,
        ],
        [
          "cp: copy of the device",
          size(copiedInfo.size),
          size(copiedInfo.blocks * 512),
          `${((100 * copiedInfo.size) / DEVICE_BYTES).toFixed(1)} %`,
        ],
      ]),
    );
    console.log(
      `(the extraction's hole list: ${layout.holes.length} holes, ${size(DEVICE_BYTES - layout.storedBytes)})`,
    );
    return [
      {
        goal: `block device extract / max(cp, openssl) <= ${GOAL} (${size(DEVICE_BYTES)}, half zeros, median of ${runs})`,
        measured: `${ratio.toFixed(2)} (best ${ratioBest.toFixed(2)})`,
        result: verdict,
      },
      {
        goal: `block device: bytes stored / device size (${size(DEVICE_BYTES)}, half zeros)`,
        measured: `${size(layout.storedBytes)} / ${size(DEVICE_BYTES)} = ${(layout.storedBytes / DEVICE_BYTES).toFixed(2)} (cp: ${size(copiedInfo.blocks * 512)})`,
        result: "-",
      },
    ];
  } finally {
    if (device) await detach(device, backing);
    await rm(dir, { recursive: true, force: true });
  }
}

// A sparse file of DEVICE_BYTES, incompressible data in every other RUN_BYTES run, zeros (holes) elsewhere.
async function makeHalfZeroImage(path: string, scratch: string, signal: AbortSignal): Promise<void> {
  await writeIncompressible(scratch, DEVICE_BYTES / 2, "bench-block-device", signal);
  const [from, to] = [await open(scratch, "r"), await open(path, "w")];
  try {
    await to.truncate(DEVICE_BYTES);
    const buffer = Buffer.alloc(RUN_BYTES);
    for (let k = 0; k * RUN_BYTES < DEVICE_BYTES / 2; k++) {
      signal.throwIfAborted();
      const { bytesRead } = await from.read(buffer, 0, RUN_BYTES, k * RUN_BYTES);
      if (bytesRead !== RUN_BYTES) throw new Error(`short read of ${scratch}`);
      await to.write(buffer, 0, RUN_BYTES, 2 * k * RUN_BYTES);
    }
  } finally {
    await Promise.all([from.close(), to.close()]);
    await rm(scratch, { force: true });
  }
}

/** The load average: other work on the machine makes every figure noisier. */
function loadLine(): string {
  return `${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} on ${availableParallelism()} CPUs`;
}

async function opensslSha256(device: string, run: typeof runCommand): Promise<string> {
  const out = await run("openssl", ["dgst", "-sha256", device], { capture: true });
  const match = /= ([0-9a-f]{64})$/.exec(out.trim());
  if (!match?.[1]) throw new Error(`unexpected openssl dgst output: ${out}`);
  return match[1];
}

// Detaches the loop device and waits until nothing is attached to `backing` any more (a device still open,
// by udev probing it for instance, is only marked by losetup -d and goes when closed).
async function detach(device: string, backing: string): Promise<void> {
  try {
    await runCommand("losetup", ["-d", device]);
    for (let i = 0; ; i++) {
      const left = (await runCommand("losetup", ["-j", backing], { capture: true })).trim();
      if (!left) return;
      if (i >= 100) throw new Error(`still attached after 10 s: ${left}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (err) {
    console.error(`cleanup: detaching ${device} failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode ||= 1;
  }
}

// Run alone.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const runs = args[0] === "--runs" ? Number(args[1]) : 5;
  if (!Number.isInteger(runs) || runs < 1 || (args.length > 0 && args.length !== 2)) {
    console.error("usage: tsx test/bench/block-device-bench.ts [--runs N (default 5)]");
    process.exit(2);
  }
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => interrupt.abort(new Error(`interrupted by ${signal}`));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const parent = mkdtempSync(join(tmpdir(), "fedbackup-bench-"));
  try {
    const rows = await blockDeviceBench({ parent, runs, signal: interrupt.signal });
    console.log("");
    console.log(table([["goal", "measured", "result"], ...rows.map((r) => [r.goal, r.measured, r.result])]));
  } catch (err) {
    console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    await rm(parent, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
