// Child process of s3-bench.ts: uploads one file to an S3 location as the agent extracts a file there
// (objectStoreDir(...).commit(key, sink => copyAndHash(handle, sink))) and reports the process's peak
// resident memory, so that the measurement holds only this upload.
//
//   node --import tsx test/bench/s3-upload-rss-child.ts <source> <bucket> <key>
//
// The endpoint and the key pair come from the environment (S3_BENCH_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY), never from the command line, which `ps` shows.
// Prints one line of JSON: { bytes, sha256, ms, maxRssKiB, rssBeforeKiB, rssPeakDuringKiB }, as
// extract-rss-child.ts does: maxRssKiB is the process's peak (Node, tsx and the S3 client's modules
// included); the other two are the resident size right before the upload and the highest one sampled during it.
import { open } from "node:fs/promises";
import { objectStoreDir } from "../../src/agent/backup-dir.js";
import { copyAndHash } from "../../src/agent/copy-and-hash.js";
import { s3ClientFor } from "../../src/storage/s3-client.js";

const [source, bucket, key] = process.argv.slice(2);
const endpoint = process.env.S3_BENCH_ENDPOINT;
const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
if (!source || !bucket || !key || !endpoint || !accessKeyId || !secretAccessKey) {
  console.error(
    "usage: S3_BENCH_ENDPOINT=... AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... " +
      "s3-upload-rss-child.ts <source> <bucket> <key>",
  );
  process.exit(2);
}
const location = { endpoint, bucket, forcePathStyle: true, credentialsSecretRef: { name: "unused" } };
const client = s3ClientFor(location, { accessKeyId, secretAccessKey });
const dir = objectStoreDir({ client, location }, "");
const handle = await open(source, "r");

const rssBeforeKiB = process.memoryUsage.rss() / 1024;
let rssPeakDuringKiB = rssBeforeKiB;
const sample = () => (rssPeakDuringKiB = Math.max(rssPeakDuringKiB, process.memoryUsage.rss() / 1024));
const sampler = setInterval(sample, 5);
const start = process.hrtime.bigint();
let result: { bytes: number; sha256: string };
try {
  result = await dir.commit(key, (sink) => copyAndHash(handle, sink));
} finally {
  clearInterval(sampler);
  await handle.close();
}
const ms = Number(process.hrtime.bigint() - start) / 1e6;
sample();
client.destroy();
// maxRSS is in KiB on Linux.
const maxRssKiB = process.resourceUsage().maxRSS;
console.log(JSON.stringify({ ...result, ms, maxRssKiB, rssBeforeKiB, rssPeakDuringKiB }));
