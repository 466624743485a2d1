// Child process of agent-goals.ts: runs the agent's extraction copy (copyAndHash) of one file and reports
// the process's peak resident memory, so that the measurement holds only this copy.
//
//   node --import tsx test/bench/extract-rss-child.ts <source> <target>
//
// Prints one line of JSON: { bytes, sha256, ms, maxRssKiB, rssBeforeKiB, rssPeakDuringKiB }. maxRssKiB is
// the process's peak (process.resourceUsage().maxRSS), which includes the start-up of Node and tsx; the other
// two are the resident size right before the copy and the highest one sampled during it, so their difference
// is what the copy itself holds.
import { copyAndHash } from "../../src/agent/copy-and-hash.js";

const [source, target] = process.argv.slice(2);
if (!source || !target) {
  console.error("usage: extract-rss-child.ts <source> <target>");
  process.exit(2);
}
const rssBeforeKiB = process.memoryUsage.rss() / 1024;
let rssPeakDuringKiB = rssBeforeKiB;
const sample = () => (rssPeakDuringKiB = Math.max(rssPeakDuringKiB, process.memoryUsage.rss() / 1024));
const sampler = setInterval(sample, 5);
const start = process.hrtime.bigint();
let result: { bytes: number; sha256: string };
try {
  result = await copyAndHash(source, target);
} finally {
  clearInterval(sampler);
}
const ms = Number(process.hrtime.bigint() - start) / 1e6;
sample();
// maxRSS is in KiB on Linux.
const maxRssKiB = process.resourceUsage().maxRSS;
console.log(JSON.stringify({ ...result, ms, maxRssKiB, rssBeforeKiB, rssPeakDuringKiB }));
