// Extraction and restore of block devices, on real loop devices (losetup on sparse files in a temp dir).
// Needs root and losetup; skipped with the reason otherwise. Every device attached is detached after its
// test, whatever happens.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { open, readFile, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlockDeviceErrorReason } from "../../../src/agent/block-device.js";
import {
  BlockDeviceError,
  blockDeviceSize,
  blockDeviceSizeByReads,
  extractBlockDevice,
  openBlockDevice,
  prepareBlockRestore,
  restoreBlockDevice,
} from "../../../src/agent/block-device.js";
import type { BlockLayout } from "../../../src/agent/manifest.js";
import { checkBlockLayout } from "../../../src/agent/manifest.js";
import { MiB, makeTempDir } from "./helpers.js";

/** Why loop devices cannot be used here, or undefined when they can. */
function loopUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not running as root, cannot attach loop devices";
  try {
    execFileSync("losetup", ["--version"], { stdio: "pipe" });
  } catch {
    return "losetup is missing (util-linux)";
  }
  return undefined;
}

/** A backing file's content: data written at offsets of an otherwise sparse (zero) file. */
interface Island {
  at: number;
  data: Buffer;
}

describe("agent/block-device (loop devices)", function () {
  this.timeout(60_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  let attached: string[] = [];
  let files = 0;

  before(function () {
    const why = loopUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    ({ dir, cleanup } = makeTempDir("block"));
  });
  after(async () => {
    await cleanup?.();
  });
  afterEach(() => {
    const failures: string[] = [];
    for (const device of attached) {
      try {
        execFileSync("losetup", ["-d", device], { stdio: "pipe" });
      } catch (err) {
        failures.push(`${device}: ${String(err)}`);
      }
    }
    attached = [];
    assert.deepEqual(failures, [], "every loop device is detached");
  });

  /** A loop device of `bytes` over a sparse file holding `islands`; detached after the test. */
  async function loopDevice(bytes: number, islands: Island[] = []): Promise<string> {
    const backing = join(dir, `backing-${++files}.img`);
    await writeFile(backing, "");
    await truncate(backing, bytes);
    const handle = await open(backing, "r+");
    try {
      for (const { at, data } of islands) {
        assert.ok(at + data.length <= bytes, `an island at ${at} does not fit in ${bytes} bytes`);
        await handle.write(data, 0, data.length, at);
      }
    } finally {
      await handle.close();
    }
    let device: string;
    try {
      device = execFileSync("losetup", ["--find", "--show", backing], { stdio: "pipe" }).toString().trim();
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(`losetup could not attach ${backing}: ${stderr || String(err)}`, { cause: err });
    }
    attached.push(device);
    return device;
  }

  /** A device full of random data (so that a restore must overwrite every byte, holes included). */
  async function junkDevice(bytes: number): Promise<string> {
    const block = randomBytes(MiB);
    const islands: Island[] = [];
    for (let at = 0; at < bytes; at += MiB) islands.push({ at, data: block.subarray(0, Math.min(MiB, bytes - at)) });
    return loopDevice(bytes, islands);
  }

  /** The whole content of a device (or the first `limit` bytes): the tests' devices are small. */
  async function contentOf(path: string, limit = Infinity): Promise<Buffer> {
    const handle = await open(path, "r");
    try {
      const parts: Buffer[] = [];
      let at = 0;
      for (;;) {
        const buffer = Buffer.alloc(4 * MiB);
        const want = Math.min(buffer.length, limit - at);
        if (want <= 0) break;
        const { bytesRead } = await handle.read(buffer, 0, want, at);
        if (bytesRead === 0) break;
        parts.push(buffer.subarray(0, bytesRead));
        at += bytesRead;
      }
      return Buffer.concat(parts);
    } finally {
      await handle.close();
    }
  }

  function sha256sum(device: string): string {
    return execFileSync("sha256sum", [device]).toString().split(" ")[0] ?? "";
  }

  async function rejectsWith(
    promise: Promise<unknown>,
    reason: BlockDeviceErrorReason,
    message: RegExp,
    deviceWritten = false,
  ): Promise<void> {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof BlockDeviceError, `a BlockDeviceError, not ${String(err)}`);
      assert.equal(err.reason, reason, err.message);
      assert.match(err.message, message);
      assert.equal(err.deviceWritten, deviceWritten);
      return true;
    });
  }

  // 48 MiB + 64 KiB in 1 MiB chunks (the last one 64 KiB), about half of it zeros: data in chunks 0-1, zeros
  // 2-9, data 10, a single non-zero byte at the very end of chunk 20 (a chunk with almost only zeros is
  // data), data 21-29 with a zero chunk 25 inside, zeros from 30 to the end (the short last chunk included).
  const HALF_BYTES = 48 * MiB + 64 * 1024;
  const halfIslands = (): Island[] => [
    { at: 0, data: randomBytes(2 * MiB) },
    { at: 10 * MiB, data: randomBytes(MiB) },
    { at: 21 * MiB - 1, data: Buffer.from([0x5a]) },
    { at: 21 * MiB, data: randomBytes(4 * MiB) },
    { at: 26 * MiB, data: randomBytes(4 * MiB) },
  ];
  const halfHoles = [
    { offset: 2 * MiB, length: 8 * MiB },
    { offset: 11 * MiB, length: 9 * MiB },
    { offset: 25 * MiB, length: MiB },
    { offset: 30 * MiB, length: HALF_BYTES - 30 * MiB },
  ];
  const halfDataChunks = [0, 1, 10, 20, 21, 22, 23, 24, 26, 27, 28, 29];

  it("extracts a half-zero device: the non-zero chunks packed, the zero runs as merged holes, sha256 of it all", async () => {
    const device = await loopDevice(HALF_BYTES, halfIslands());
    const target = join(dir, "half.data");
    const layout = await extractBlockDevice(device, target);

    assert.equal(layout.bytes, HALF_BYTES);
    assert.equal(layout.chunkBytes, MiB);
    assert.deepEqual(layout.holes, halfHoles);
    assert.equal(layout.sha256, sha256sum(device));
    // Stored: exactly the non-zero chunks, about half the device.
    assert.equal(layout.storedBytes, halfDataChunks.length * MiB);
    assert.equal((await stat(target)).size, layout.storedBytes);
    const content = await contentOf(device);
    const expected = Buffer.concat(halfDataChunks.map((i) => content.subarray(i * MiB, (i + 1) * MiB)));
    assert.ok((await readFile(target)).equals(expected), "the data file is the non-zero chunks in device order");
    // What is written to a manifest passes its validation.
    assert.deepEqual(checkBlockLayout(JSON.parse(JSON.stringify(layout))), layout);
  });

  it("finds the device's size from sysfs and, the same, by reads alone", async () => {
    const device = await loopDevice(HALF_BYTES + 512 * 3);
    const handle = await openBlockDevice(device, constants.O_RDONLY);
    try {
      const expected = Number(execFileSync("blockdev", ["--getsize64", device]).toString().trim());
      assert.equal(expected, HALF_BYTES + 512 * 3);
      assert.equal(await blockDeviceSize(handle), expected);
      assert.equal(await blockDeviceSizeByReads(handle), expected);
    } finally {
      await handle.close();
    }
  });

  it("restores byte-identical over a device full of other data, holes written as zeros, and reads it back", async () => {
    const source = await loopDevice(HALF_BYTES, halfIslands());
    const stored = join(dir, "roundtrip.data");
    const layout = await extractBlockDevice(source, stored);
    const target = await junkDevice(HALF_BYTES);
    const result = await restoreBlockDevice(stored, layout, target);
    assert.deepEqual(result, {
      bytes: HALF_BYTES,
      sha256: layout.sha256,
      deviceBytes: HALF_BYTES,
      tailBytes: 0,
      readBack: "direct",
      verified: true,
    });
    assert.ok((await contentOf(target)).equals(await contentOf(source)), "the target is the source, byte for byte");
    assert.equal(sha256sum(target), layout.sha256);
  });

  it("round-trips with 4 KiB chunks and two buffers, and an all-zero device as one hole", async () => {
    const bytes = 8 * MiB + 4096 * 3 + 512;
    const source = await loopDevice(bytes, [
      { at: 4096 * 5 + 17, data: randomBytes(100) },
      { at: 3 * MiB, data: randomBytes(MiB + 4096) },
      { at: bytes - 1, data: Buffer.from([1]) },
    ]);
    const stored = join(dir, "small-chunks.data");
    const layout = await extractBlockDevice(source, stored, { chunkBytes: 4096, buffers: 2 });
    assert.equal(layout.storedBytes, 4096 + (MiB + 4096) + 512);
    const target = await junkDevice(bytes);
    await restoreBlockDevice(stored, layout, target, { buffers: 2 });
    assert.ok((await contentOf(target)).equals(await contentOf(source)));

    const zeros = await loopDevice(4 * MiB);
    const empty = join(dir, "zeros.data");
    const zeroLayout = await extractBlockDevice(zeros, empty);
    assert.deepEqual(zeroLayout.holes, [{ offset: 0, length: 4 * MiB }]);
    assert.equal(zeroLayout.storedBytes, 0);
    assert.equal(
      zeroLayout.sha256,
      createHash("sha256")
        .update(Buffer.alloc(4 * MiB))
        .digest("hex"),
    );
    const cleared = await junkDevice(4 * MiB);
    await restoreBlockDevice(empty, zeroLayout, cleared);
    assert.ok((await contentOf(cleared)).equals(Buffer.alloc(4 * MiB)), "the junk is gone: all zeros");
  });

  it("keeps the tail of a larger device as it was and says how much", async () => {
    const source = await loopDevice(HALF_BYTES, halfIslands());
    const stored = join(dir, "tail.data");
    const layout = await extractBlockDevice(source, stored);
    const target = await junkDevice(HALF_BYTES + 3 * MiB);
    const tailBefore = (await contentOf(target)).subarray(HALF_BYTES);
    const result = await restoreBlockDevice(stored, layout, target);
    assert.equal(result.tailBytes, 3 * MiB);
    assert.equal(result.deviceBytes, HALF_BYTES + 3 * MiB);
    const after = await contentOf(target);
    assert.ok(after.subarray(0, HALF_BYTES).equals(await contentOf(source)));
    assert.ok(after.subarray(HALF_BYTES).equals(tailBefore), "the tail is untouched");
  });

  describe("refuses before writing anything, the device untouched", function () {
    let layout: BlockLayout;
    let stored: string;
    let target: string;
    let before: Buffer;

    beforeEach(async () => {
      const source = await loopDevice(HALF_BYTES, halfIslands());
      stored = join(dir, `refuse-${files}.data`);
      layout = await extractBlockDevice(source, stored);
      target = await junkDevice(HALF_BYTES);
      before = await contentOf(target);
    });
    afterEach(async () => {
      assert.ok((await contentOf(target)).equals(before), "the target device is as it was, byte for byte");
    });

    async function corrupt(at: number): Promise<void> {
      const handle = await open(stored, "r+");
      try {
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, at);
        byte[0] = (byte[0] ?? 0) ^ 0x01;
        await handle.write(byte, 0, 1, at);
      } finally {
        await handle.close();
      }
    }

    it("a corrupt data file (one bit flipped)", async () => {
      await corrupt(layout.storedBytes - MiB + 12345);
      await rejectsWith(restoreBlockDevice(stored, layout, target), "ChecksumMismatch", /corrupt.*nothing was written/);
    });

    it("a manifest whose sha256 is not the data's", async () => {
      await rejectsWith(
        restoreBlockDevice(stored, { ...layout, sha256: "0".repeat(64) }, target),
        "ChecksumMismatch",
        /the manifest lists 0{64}; nothing was written/,
      );
    });

    it("a manifest whose holes do not match the data (a hole moved)", async () => {
      const holes = layout.holes.map((h, i) => (i === 0 ? { offset: h.offset - MiB, length: h.length } : h));
      await rejectsWith(restoreBlockDevice(stored, { ...layout, holes }, target), "ChecksumMismatch", /corrupt/);
    });

    it("a truncated or extended data file", async () => {
      await truncate(stored, layout.storedBytes - 1);
      await rejectsWith(
        restoreBlockDevice(stored, layout, target),
        "SizeMismatch",
        /has \d+ bytes, the manifest lists/,
      );
      await truncate(stored, layout.storedBytes + 4096);
      await rejectsWith(restoreBlockDevice(stored, layout, target), "SizeMismatch", /nothing was written/);
    });

    it("an invalid layout", async () => {
      await rejectsWith(
        restoreBlockDevice(stored, { ...layout, holes: [...layout.holes].reverse() }, target),
        "InvalidLayout",
        /holes\[1\].*sorted/,
      );
    });

    it("a device smaller than the backup, before reading the data", async () => {
      const small = await junkDevice(HALF_BYTES - 512);
      const smallBefore = await contentOf(small);
      // A data file that would fail verification shows the size is checked first.
      await corrupt(0);
      await rejectsWith(
        restoreBlockDevice(stored, layout, small),
        "DeviceTooSmall",
        new RegExp(`has ${HALF_BYTES - 512} bytes, the backup has ${HALF_BYTES}: the device is too small`),
      );
      assert.ok((await contentOf(small)).equals(smallBefore));
    });

    it("a device that is held exclusively (as a mounted one is)", async () => {
      const holder = await open(target, constants.O_RDONLY | constants.O_EXCL);
      try {
        await rejectsWith(restoreBlockDevice(stored, layout, target), "DeviceBusy", /is in use/);
      } finally {
        await holder.close();
      }
    });

    it("a path that is not a block device: a regular file, a symlink to the device", async () => {
      await rejectsWith(restoreBlockDevice(stored, layout, stored), "NotBlockDevice", /is a regular file/);
      const link = join(dir, `link-${files}`);
      await symlink(target, link);
      await rejectsWith(restoreBlockDevice(stored, layout, link), "NotBlockDevice", /is a symbolic link/);
      await rejectsWith(extractBlockDevice(link, join(dir, "never.data")), "NotBlockDevice", /symbolic link/);
    });
  });

  it("prepares every disk of a VM before writing any: the second disk's corrupt data leaves both untouched", async () => {
    const [sourceA, sourceB] = [
      await loopDevice(HALF_BYTES, halfIslands()),
      await loopDevice(4 * MiB, [{ at: MiB, data: randomBytes(MiB) }]),
    ];
    const [storedA, storedB] = [join(dir, "vm-a.data"), join(dir, "vm-b.data")];
    const [layoutA, layoutB] = [await extractBlockDevice(sourceA, storedA), await extractBlockDevice(sourceB, storedB)];
    const [targetA, targetB] = [await junkDevice(HALF_BYTES), await junkDevice(4 * MiB)];
    const before = [await contentOf(targetA), await contentOf(targetB)];
    await writeFile(storedB, Buffer.alloc(layoutB.storedBytes, 7));
    const prepared = [await prepareBlockRestore(storedA, layoutA, targetA)];
    try {
      await rejectsWith(prepareBlockRestore(storedB, layoutB, targetB), "ChecksumMismatch", /nothing was written/);
    } finally {
      for (const p of prepared) await p.close();
    }
    assert.ok((await contentOf(targetA)).equals(before[0] ?? Buffer.alloc(0)), "the first disk is untouched");
    assert.ok((await contentOf(targetB)).equals(before[1] ?? Buffer.alloc(0)), "the second disk is untouched");

    // With both verified, both are written.
    await extractBlockDevice(sourceB, storedB);
    const both = [
      await prepareBlockRestore(storedA, layoutA, targetA),
      await prepareBlockRestore(storedB, layoutB, targetB),
    ];
    try {
      for (const p of both) assert.equal((await p.write()).verified, true);
      await assert.rejects(both[0]!.write(), /already written/);
    } finally {
      for (const p of both) await p.close();
    }
    assert.ok((await contentOf(targetA)).equals(await contentOf(sourceA)));
    assert.ok((await contentOf(targetB)).equals(await contentOf(sourceB)));
  });

  it("a data file that changes between the verification and the writes fails at the read-back, device written", async () => {
    const source = await loopDevice(HALF_BYTES, halfIslands());
    const stored = join(dir, "changing.data");
    const layout = await extractBlockDevice(source, stored);
    const target = await junkDevice(HALF_BYTES);
    const handle = await open(stored, "r");
    try {
      // The verification reads each data chunk once, then the last byte and one past the end; every read
      // after that (the writes') comes back with its first byte changed, as if the file had been edited.
      let reads = 0;
      const verificationReads = halfDataChunks.length + 2;
      const changing = new Proxy(handle, {
        get(real, property) {
          if (property === "read") {
            return async (buffer: Buffer, offset: number, length: number, position: number) => {
              const result = await real.read(buffer, offset, length, position);
              if (++reads > verificationReads && result.bytesRead > 0) buffer[offset] = (buffer[offset] ?? 0) ^ 0xff;
              return result;
            };
          }
          const value: unknown = Reflect.get(real, property, real);
          return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(real) : value;
        },
      });
      await rejectsWith(
        restoreBlockDevice(changing, layout, target),
        "ReadBackMismatch",
        /was written but reads back with sha256 [0-9a-f]{64}, the backup has/,
        true,
      );
    } finally {
      await handle.close();
    }
  });

  it("an aborted extraction removes its target; a handle target is truncated first", async () => {
    const device = await loopDevice(HALF_BYTES, halfIslands());
    const target = join(dir, "aborted.data");
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(extractBlockDevice(device, target, { signal: controller.signal }), /stop/);
    await assert.rejects(stat(target), { code: "ENOENT" });

    const late = new AbortController();
    const extraction = extractBlockDevice(device, target, { signal: late.signal, chunkBytes: 64 * 1024 });
    setImmediate(() => late.abort(new Error("stopped midway")));
    await assert.rejects(extraction, /stopped midway/);
    await assert.rejects(stat(target), { code: "ENOENT" });

    await writeFile(target, randomBytes(100 * MiB + 1));
    const handle: FileHandle = await open(target, "r+");
    try {
      const layout = await extractBlockDevice(device, handle);
      assert.equal((await handle.stat()).size, layout.storedBytes);
    } finally {
      await handle.close();
    }
  });
});
