import assert from "node:assert/strict";
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { allocAlignedRing } from "../../../src/agent/aligned-ring.js";
import { DIRECT_BLOCK_BYTES, DirectWriter } from "../../../src/agent/direct-writer.js";
import { makeTempDir } from "./helpers.js";

describe("agent/direct-writer", function () {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(() => ({ dir, cleanup } = makeTempDir("direct")));
  after(() => cleanup());

  it("writes whole blocks to the file the handle is open on, the last one padded with zeros", async () => {
    const target = join(dir, "padded");
    const handle = await open(target, "w");
    try {
      const writer = await DirectWriter.open(handle);
      assert.ok(writer, "the test filesystem takes O_DIRECT");
      const [slot] = allocAlignedRing(1, 2 * DIRECT_BLOCK_BYTES);
      assert.ok(slot);
      slot.fill(0xab);
      assert.equal(await writer.write(slot, DIRECT_BLOCK_BYTES + 10, DIRECT_BLOCK_BYTES), true);
      await writer.close();
      const written = await readFile(target);
      assert.equal(written.length, 3 * DIRECT_BLOCK_BYTES, "the padding is the caller's to truncate");
      assert.ok(
        written.subarray(0, DIRECT_BLOCK_BYTES).every((b) => b === 0),
        "the hole before it",
      );
      assert.ok(written.subarray(DIRECT_BLOCK_BYTES, 2 * DIRECT_BLOCK_BYTES + 10).every((b) => b === 0xab));
      assert.ok(
        written.subarray(2 * DIRECT_BLOCK_BYTES + 10).every((b) => b === 0),
        "zeros, not stale bytes",
      );
    } finally {
      await handle.close();
    }
  });

  it("refuses unaligned positions, and has no writer for what is not a local regular file", async () => {
    const handle = await open(join(dir, "aligned"), "w");
    try {
      const writer = await DirectWriter.open(handle);
      const [slot] = allocAlignedRing(1, DIRECT_BLOCK_BYTES);
      assert.ok(writer && slot);
      await assert.rejects(writer.write(slot, 10, 512), RangeError);
      await writer.close();
      assert.equal((await stat(join(dir, "aligned"))).size, 0);
    } finally {
      await handle.close();
    }
    const upload = { write: () => Promise.resolve({ bytesWritten: 0 }), truncate: () => Promise.resolve() };
    assert.equal(await DirectWriter.open(upload), undefined);
    const device = await open("/dev/null", "w");
    try {
      assert.equal(await DirectWriter.open(device), undefined);
    } finally {
      await device.close();
    }
  });
});
