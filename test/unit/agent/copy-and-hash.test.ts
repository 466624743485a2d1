import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { open, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { copyAndHash, copySparse, sha256OfFile } from "../../../src/agent/copy-and-hash.js";
import { GiB, MiB, assertSameBytes, makeTempDir, referenceHash, writeRandomFile, writeSparseFile } from "./helpers.js";

describe("agent/copy-and-hash", function () {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(() => ({ dir, cleanup } = makeTempDir("copy")));
  after(() => cleanup());

  // Compares with node:crypto (over the source, or `expected` when known without reading it) and
  // byte for byte with the source; sha256OfFile must agree on the copy.
  async function checkCopy(
    name: string,
    opts: Parameters<typeof copyAndHash>[2] = {},
    expected?: { bytes: number; sha256: string },
  ) {
    const source = join(dir, name);
    const target = join(dir, `${name}.copy`);
    const result = await copyAndHash(source, target, opts);
    const reference = expected ?? (await referenceHash(source));
    assert.deepEqual(result, reference);
    await assertSameBytes(source, target);
    if (!expected) assert.deepEqual(await sha256OfFile(target), reference);
    return { source, target, result };
  }

  it("copies and hashes an empty file", async () => {
    await writeFile(join(dir, "empty"), "");
    const { result } = await checkCopy("empty");
    assert.deepEqual(result, {
      bytes: 0,
      sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    });
  });

  it("copies and hashes a 1-byte file", async () => {
    await writeFile(join(dir, "one"), Buffer.from([0x61]));
    const { result } = await checkCopy("one");
    assert.equal(result.sha256, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"); // sha256("a")
  });

  it("copies and hashes 1 MiB + 1 bytes (one byte past a chunk boundary)", async () => {
    await writeFile(join(dir, "mib1"), randomBytes(MiB + 1));
    const { result } = await checkCopy("mib1");
    assert.equal(result.bytes, MiB + 1);
  });

  it("copies a 1 GiB sparse file correctly and keeps it sparse", async function () {
    this.timeout(30_000);
    await writeSparseFile(join(dir, "sparse"), GiB);
    const zeros = createHash("sha256");
    const block = Buffer.alloc(MiB);
    for (let i = 0; i < 1024; i++) zeros.update(block);
    const { target, result } = await checkCopy("sparse", {}, { bytes: GiB, sha256: zeros.digest("hex") });
    assert.equal(result.bytes, GiB);
    // All-zero chunks are skipped, so the copy is a hole too (a few blocks of metadata at most).
    const info = await stat(target);
    assert.equal(info.size, GiB);
    assert.ok(info.blocks * 512 < MiB, `copy allocates ${info.blocks * 512} bytes`);
  });

  it("keeps data islands in a sparse file at their offsets, with odd chunk sizes and only two buffers", async () => {
    const source = join(dir, "islands");
    await writeSparseFile(source, 40 * MiB + 3);
    const handle = await open(source, "r+");
    try {
      await handle.write(randomBytes(5000), 0, 5000, 7); // straddles nothing, at the start
      await handle.write(randomBytes(MiB), 0, MiB, 17 * MiB - 100); // straddles chunk boundaries
      await handle.write(randomBytes(2), 0, 2, 40 * MiB + 1); // the very last bytes
    } finally {
      await handle.close();
    }
    await checkCopy("islands", { chunkBytes: 64 * 1024 + 4096, buffers: 2 });
    await checkCopy("islands", { chunkBytes: 4096, buffers: 7 });
  });

  it("copies a multi-chunk random file with the default ring", async () => {
    await writeRandomFile(join(dir, "random"), 24 * MiB + 12345);
    await checkCopy("random");
  });

  it("copySparse copies the same bytes, keeps holes, and computes no hash", async () => {
    const source = join(dir, "islands");
    const target = join(dir, "islands.sparse-copy");
    assert.deepEqual(await copySparse(source, target), { bytes: 40 * MiB + 3 });
    await assertSameBytes(source, target);
    assert.ok((await stat(target)).blocks * 512 < 4 * MiB);
  });

  it("writes the target back behind itself while it copies, and fails when a write-back does", async () => {
    const source = join(dir, "behind-src");
    await writeRandomFile(source, 9 * MiB + 5);
    const target = join(dir, "behind-dst");
    const handle = await open(target, "w");
    try {
      // Where the copy had got to (bytes written) each time it started a write-back.
      const syncedAt: number[] = [];
      let written = 0;
      const sink = {
        write: async (buffer: Buffer, offset: number, length: number, position: number) => {
          const result = await handle.write(buffer, offset, length, position);
          written += result.bytesWritten;
          return result;
        },
        truncate: (length: number) => handle.truncate(length),
        datasync: () => {
          syncedAt.push(written);
          return handle.datasync();
        },
      };
      const result = await copyAndHash(source, sink, { writeBehindBytes: 2 * MiB });
      assert.deepEqual(result, await referenceHash(source));
      await assertSameBytes(source, target);
      // The first once 2 MiB were written; how many more depends on how long each takes (one at a time).
      assert.equal(syncedAt[0], 2 * MiB, `write-backs started at ${syncedAt.join(", ")}`);
      const failing = { ...sink, datasync: () => Promise.reject(new Error("EIO on write-back")) };
      await assert.rejects(copyAndHash(source, failing, { writeBehindBytes: MiB }), /EIO on write-back/);
      // A plain object has no descriptor to write directly through; a FileHandle has, and needs no write-back.
      syncedAt.length = 0;
      const direct = Object.assign(Object.create(handle) as typeof handle, { datasync: sink.datasync });
      assert.deepEqual(await copyAndHash(source, direct, { writeBehindBytes: MiB }), await referenceHash(source));
      await assertSameBytes(source, target);
      assert.deepEqual(syncedAt, []);
    } finally {
      await handle.close();
    }
  });

  it("stops on abort and removes the partial target", async () => {
    const source = join(dir, "abort-src");
    await writeRandomFile(source, 64 * MiB);
    const target = join(dir, "abort-dst");
    const controller = new AbortController();
    const copying = copyAndHash(source, target, { signal: controller.signal, chunkBytes: 64 * 1024 });
    setImmediate(() => controller.abort(new Error("stop now")));
    await assert.rejects(copying, /stop now/);
    assert.equal(existsSync(target), false);
  });

  it("fails cleanly on a missing source and on an unwritable target", async () => {
    await assert.rejects(copyAndHash(join(dir, "nope"), join(dir, "nope.copy")), { code: "ENOENT" });
    assert.equal(existsSync(join(dir, "nope.copy")), false);
    await writeFile(join(dir, "src-ok"), "x");
    await assert.rejects(copyAndHash(join(dir, "src-ok"), join(dir, "no-such-dir", "t")), { code: "ENOENT" });
  });

  it("rejects silly chunk sizes", async () => {
    await assert.rejects(copyAndHash(join(dir, "one"), join(dir, "x"), { chunkBytes: 10 }), RangeError);
    await assert.rejects(copyAndHash(join(dir, "one"), join(dir, "x"), { buffers: 1 }), RangeError);
  });
});
