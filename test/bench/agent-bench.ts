// Measures copyAndHash against `cp` alone and `openssl dgst -sha256` alone on one large file.
//
//   tsx test/bench/agent-bench.ts [sizeGiB=2] [runs=5] [chunkKiB:buffers ...]
//
// The file (incompressible data from openssl) is created in a fresh temp dir, deleted afterwards. Every
// contestant gets a warm page cache for the source (read once before timing) and `sync` before it runs,
// so that the write-back of the previous copy does not land on the next one. Runs are interleaved; best
// and median are reported. The goal: copyAndHash <= 1.25 x max(cp, openssl).
//
// `make bench` runs agent-goals.ts, which measures a set of files, peak memory and freeze windows; this one is
// for trying chunk sizes and ring sizes on one file.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyAndHash } from "../../src/agent/copy-and-hash.js";
import { GiB, fmt, median, roundOrder, timed, warm, writeIncompressible } from "./common.js";

const sizeGiB = Number(process.argv[2] ?? "2");
const runs = Number(process.argv[3] ?? "5");
const variants = (process.argv.length > 4 ? process.argv.slice(4) : ["default"]).map((spec) => {
  if (spec === "default") return { label: "default", opts: {} };
  const [kib, buffers] = spec.split(":").map(Number);
  return { label: spec, opts: { chunkBytes: (kib ?? 1024) * 1024, buffers: buffers ?? 4 } };
});

const dir = mkdtempSync(join(tmpdir(), "fedbackup-bench-"));
try {
  const source = join(dir, "source.img");
  const target = join(dir, "target.img");
  await writeIncompressible(source, Math.round(sizeGiB * GiB));
  await warm([source]);
  const cp: number[] = [];
  const sha: number[] = [];
  // Reference only: a copy through 1 MiB user-space buffers, as copyAndHash must do (cp uses
  // copy_file_range and never brings the data to user space). Its spread shows the machine's write path.
  const dd: number[] = [];
  const ours = new Map<string, number[]>(variants.map((v) => [v.label, []]));
  for (let i = 0; i < runs; i++) {
    rmSync(target, { force: true });
    cp.push(await timed(() => execFileSync("cp", [source, target])));
    sha.push(await timed(() => execFileSync("openssl", ["dgst", "-sha256", source])));
    rmSync(target, { force: true });
    dd.push(await timed(() => execFileSync("dd", [`if=${source}`, `of=${target}`, "bs=1M", "status=none"])));
    // A new order each round, so that no variant always runs in the wake of the same predecessor.
    for (const variant of roundOrder(variants, i)) {
      rmSync(target, { force: true });
      ours.get(variant.label)?.push(await timed(() => copyAndHash(source, target, variant.opts)));
    }
  }
  rmSync(target, { force: true });
  const limit = Math.max(median(cp), median(sha));
  console.log(`${sizeGiB} GiB file, ${runs} interleaved runs`);
  console.log(`cp                   ${fmt(cp)}`);
  console.log(`openssl dgst -sha256 ${fmt(sha)}`);
  console.log(`(dd bs=1M, no hash  ${fmt(dd)})`);
  for (const [label, values] of ours) {
    const ratio = median(values) / limit;
    console.log(
      `copyAndHash ${label.padEnd(8)} ${fmt(values)}  median = ${ratio.toFixed(2)} x max(median cp, median openssl)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
