// Block devices (claims in Block mode, read and written as raw devices): extraction to a packed data file
// with a list of holes, and restore of that onto a device.
//
// The data path is copy-and-hash.ts's: one sequential read of the device, its sha256 in the same pass,
// constant memory (a ring of fixed buffers), reads ahead on libuv's thread pool while the main thread
// hashes, one write at a time. What differs is what is stored:
//
// Stored format (BlockLayout in manifest.ts). The device is cut in chunks of chunkBytes (1 MiB by
// default; the last one may be shorter). A chunk that is entirely zero is a hole: it is not stored. The
// other chunks are appended, in device order, to one data file, `packed`: the data file is the device with
// its holes cut out, and the manifest lists the holes as merged runs {offset, length} (chunk-aligned,
// sorted, never touching). The device offset of every stored byte follows from the hole list, so nothing
// else is recorded. The sha256 is of the device as it is, zeros included: `sha256sum /dev/...` gives the
// same. Packed rather than a sparse file of the device's size because
// - it does not depend on the location: a sparse file needs a filesystem that keeps holes (and a copy tool
//   that keeps them too), an S3 object (issue #14) has no holes at all; a packed file is the same bytes
//   everywhere and costs only the non-zero data on any of them;
// - the manifest must name the holes anyway, and with the hole list the manifest alone describes the
//   device's layout; a sparse file's holes would be a second, implicit copy of it that could disagree.
// Zero runs shorter than a chunk are stored as data (a chunk is a hole only if all of it is zero): a
// smaller chunk finds more holes and makes a longer list (a few dozen bytes per hole in the manifest).
//
// Size of a device. fstat gives 0 for a block device and Node has no ioctl(BLKGETSIZE64) nor lseek(SEEK_END).
// The size is read from sysfs: /sys/dev/block/<major>:<minor>/size, the device's capacity in 512-byte
// sectors whatever its logical block size, from the device number fstat gives for the very descriptor that
// was opened (so it is the device that is read, not whatever a path names now). sysfs is there in every
// container (Kubernetes mounts it read-only) and costs no I/O. Two reads confirm it: the last byte reads
// back and a read at the size returns nothing. Without sysfs, or when the reads disagree with it, the end
// is found by reads alone (doubling, then bisecting, on sector boundaries: about 2 × log2(sectors) one-byte
// reads), since where reads end is what an extraction reads. The extraction then reads exactly that many
// bytes, and fails if the device ends sooner or turns out to go on (it was resized meanwhile).
//
// Restore. The target is the VM's only copy of the disk and a device cannot be swapped atomically like a
// file, so: (1) the device is opened for writing exclusively (O_EXCL: the kernel refuses a device that is
// mounted or claimed exclusively by another opener), checked to be a block device at least as large as the
// backup (a smaller one fails before anything is read or written); (2) the whole data file is read with
// the hole list and hashed as the device will be, without writing: a data file that does not give the
// manifest's sha256 fails with the device untouched; (3) the device is written: data chunks at their
// offsets, zeros (one shared zero buffer) over the holes, since a device has no holes and its old content
// there must go; fsync; (4) the device is read back in full, with O_DIRECT so that what is compared comes
// from the device and not from the page cache just written, and hashed: a different sha256 fails the
// restore (the device is then known to be wrong). Steps (1) and (2) are prepareBlockRestore, (3) and (4) its
// write(), so that a VM with several disks has all of them checked and verified before the first is written. A device larger than the backup keeps its tail beyond the
// backup's size untouched (storage often rounds a claim's size up; zeroing a tail the guest never had costs
// writes for nothing, and the guest sees a larger disk just as after a volume expansion); the result says
// how many bytes that is. Once (3) has begun, a failure (I/O error, abort, read-back mismatch) leaves the
// device partly written: the error says so (deviceWritten), and the VM must not be started on it. The data
// file is on a location others can write to: if it is changed between (2) and (3), (4) catches it, but only
// after the device was written.
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { lstat, open, readFile, rm } from "node:fs/promises";
import type { SourceRef, TargetRef } from "./copy-and-hash.js";
import type { PositionalSink, PositionalSource } from "../storage/positional.js";
import { checkBuffers, DEFAULT_CHUNK_BYTES, slotOf, zeroBuffer } from "./copy-and-hash.js";
import type { BlockHole, BlockLayout } from "./manifest.js";
import {
  BLOCK_CHUNK_ALIGN,
  MAX_BLOCK_CHUNK_BYTES,
  MIN_BLOCK_CHUNK_BYTES,
  ManifestError,
  SECTOR_BYTES,
  checkBlockLayout,
} from "./manifest.js";
import { descriptorPath, isCode } from "./safe-fs.js";
import { errorMessage } from "./types.js";
import { WRITE_BEHIND_BYTES, WriteBehind } from "./write-behind.js";
import { allocAlignedRing } from "./aligned-ring.js";
import { readFully, writeFully } from "./positional-io.js";

const { O_RDONLY, O_RDWR, O_EXCL, O_NOFOLLOW, O_DIRECT } = constants;

export type BlockDeviceErrorReason =
  /** The path is not a block device (a symlink, a regular file, a character device...). */
  | "NotBlockDevice"
  /** The device is mounted or held exclusively by another opener (open with O_EXCL gave EBUSY). */
  | "DeviceBusy"
  /** The device is smaller than the backup. */
  | "DeviceTooSmall"
  /** The device changed size while it was read, or what was opened is not what the path showed. */
  | "DeviceChanged"
  /** The layout (from a manifest) is not valid: see checkBlockLayout. */
  | "InvalidLayout"
  /** The data file does not have the layout's storedBytes. */
  | "SizeMismatch"
  /** The data file, with the holes, does not give the layout's sha256. */
  | "ChecksumMismatch"
  /** Writing the device failed or was aborted after it had begun. */
  | "WriteFailed"
  /** The device, written and synced, does not read back as the backup. */
  | "ReadBackMismatch";

/** A refused or failed extraction or restore of a block device. */
export class BlockDeviceError extends Error {
  override readonly name = "BlockDeviceError";
  constructor(
    readonly reason: BlockDeviceErrorReason,
    message: string,
    /** The device path concerned. */
    readonly device: string,
    /** Whether any byte of the device had been written (restore only): it no longer holds what it did. */
    readonly deviceWritten = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface BlockOptions {
  /** Stops between chunks; the promise rejects with signal.reason (a restore: wrapped, see WriteFailed). */
  signal?: AbortSignal;
  /** The chunk, and so the hole, granularity: a multiple of 4 KiB from 4 KiB to 64 MiB (default 1 MiB). */
  chunkBytes?: number;
  /** Buffers in the ring, at least 2 (default 6); memory used is buffers × chunkBytes. */
  buffers?: number;
}

/**
 * Reads the block device at `device` once and stores its non-zero chunks, packed, in `target` (a path:
 * created or truncated, removed on failure; a handle: truncated, left to the caller on failure, not
 * synced). Returns the layout for the manifest: size, sha256 of the whole device, holes, stored bytes.
 * Memory: the ring of buffers, plus the hole list (one entry per zero run).
 */
export async function extractBlockDevice(
  device: string,
  target: TargetRef,
  opts: BlockOptions = {},
): Promise<BlockLayout> {
  const chunkBytes = checkChunkBytes(opts.chunkBytes);
  const ringSize = checkBuffers(opts.buffers);
  opts.signal?.throwIfAborted();
  const src = await openBlockDevice(device, O_RDONLY);
  let dst: PositionalSink | undefined;
  let opened: FileHandle | undefined;
  try {
    if (typeof target === "string") {
      dst = opened = await open(target, "w");
    } else {
      dst = target;
      await dst.truncate(0);
    }
    const out = dst;
    const bytes = await blockDeviceSize(src);
    const holes: BlockHole[] = [];
    let stored = 0;
    const zeros = zeroBuffer(chunkBytes);
    const { sha256 } = await pump({
      source: src,
      steps: contiguousSteps(bytes, chunkBytes),
      ring: allocRing(ringSize, chunkBytes),
      chunkBytes,
      hash: true,
      signal: opts.signal,
      shortRead: (step, got) =>
        new BlockDeviceError(
          "DeviceChanged",
          `${device} ended at ${step.offset + got} bytes while it was read, before its size of ${bytes}: it shrank`,
          device,
        ),
      sink: (chunk, step) => {
        if (chunk.equals(zeros.subarray(0, chunk.length))) {
          const last = holes[holes.length - 1];
          if (last && last.offset + last.length === step.offset) last.length += chunk.length;
          else holes.push({ offset: step.offset, length: chunk.length });
          return undefined;
        }
        const position = stored;
        stored += chunk.length;
        return { handle: out, position };
      },
    });
    if (!(await endsAt(src, bytes))) {
      throw new BlockDeviceError("DeviceChanged", `${device} grew while it was read (it had ${bytes} bytes)`, device);
    }
    if (opened) await opened.close();
    return { bytes, sha256, chunkBytes, holes, storedBytes: stored };
  } catch (err) {
    if (typeof target === "string" && opened) {
      await opened.close().catch(() => {});
      await rm(target, { force: true });
    }
    throw err;
  } finally {
    await src.close();
  }
}

export interface BlockRestoreResult {
  /** Bytes of the device written from the backup (the backup's device size). */
  bytes: number;
  /** The sha256 the device read back with: the backup's. */
  sha256: string;
  /** The target device's size. */
  deviceBytes: number;
  /** Bytes of the device past the backup's size, left as they were. */
  tailBytes: number;
  /** How the device was read back: from the device (O_DIRECT), or through the page cache where O_DIRECT is refused. */
  readBack: "direct" | "cached";
  verified: true;
}

/**
 * Writes the backup (the packed data file `source` and its `layout`, from a manifest) onto the block
 * device `device`, in the order described at the top of this file: device checks, full verification of
 * the data file, writes, fsync, full read-back. Any failure before the writes leaves the device untouched
 * (deviceWritten false); after, the error has deviceWritten true. For a VM with several disks, use
 * prepareBlockRestore for each of them first, then write them: nothing is written before all are verified.
 */
export async function restoreBlockDevice(
  source: SourceRef,
  layout: BlockLayout,
  device: string,
  opts: BlockOptions = {},
): Promise<BlockRestoreResult> {
  const prepared = await prepareBlockRestore(source, layout, device, opts);
  try {
    return await prepared.write();
  } finally {
    await prepared.close();
  }
}

/** A block restore checked and verified, holding its device (exclusively) and its data file open. */
export interface PreparedBlockRestore {
  readonly device: string;
  /** The target device's size. */
  readonly deviceBytes: number;
  /** Writes the device, fsyncs it and reads it back (steps 3 and 4); once. */
  write(): Promise<BlockRestoreResult>;
  /** Releases the device, and the data file if it was given as a path. Always call it. */
  close(): Promise<void>;
}

/**
 * Steps 1 and 2 of a restore, nothing written: checks the layout and the device (a block device, not in
 * use, large enough), then reads the whole data file with the holes and compares the sha256. Rejects with a
 * BlockDeviceError (deviceWritten false) on any of it, having released what it opened.
 */
export async function prepareBlockRestore(
  source: SourceRef,
  layout: BlockLayout,
  device: string,
  opts: BlockOptions = {},
): Promise<PreparedBlockRestore> {
  const ringSize = checkBuffers(opts.buffers);
  opts.signal?.throwIfAborted();
  try {
    checkBlockLayout(layout);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    throw new BlockDeviceError("InvalidLayout", `cannot restore ${device}: ${err.message}`, device, false, {
      cause: err,
    });
  }
  const { chunkBytes } = layout;
  const src = typeof source === "string" ? await open(source, "r") : source;
  let dev: FileHandle | undefined;
  const close = async () => {
    await Promise.allSettled([dev?.close(), typeof source === "string" ? src.close() : undefined]);
  };
  try {
    dev = await openBlockDevice(device, O_RDWR | O_EXCL);
    const deviceBytes = await blockDeviceSize(dev);
    if (deviceBytes < layout.bytes) {
      throw new BlockDeviceError(
        "DeviceTooSmall",
        `${device} has ${deviceBytes} bytes, the backup has ${layout.bytes}: the device is too small; nothing was written`,
        device,
      );
    }
    // One ring for the three passes: page-aligned, as the read-back with O_DIRECT needs.
    const ring = allocAlignedRing(ringSize, chunkBytes);
    const dataSize = (await src.stat()).size;
    const dataError = (message: string) =>
      new BlockDeviceError("SizeMismatch", `the backup of ${device}: ${message}; nothing was written`, device);
    if (dataSize !== layout.storedBytes) {
      throw dataError(`the data file has ${dataSize} bytes, the manifest lists ${layout.storedBytes}`);
    }
    const shortData = (step: Step, got: number) =>
      dataError(`the data file ended at ${(step.at ?? 0) + got} bytes while it was read, before ${layout.storedBytes}`);

    // (2) Verify: hash the device-to-be, nothing written.
    const verified = await pump({
      source: src,
      steps: layoutSteps(layout),
      ring,
      chunkBytes,
      hash: true,
      signal: opts.signal,
      shortRead: shortData,
    });
    if (!(await endsAt(src, layout.storedBytes))) {
      throw dataError(`the data file has more than the ${layout.storedBytes} bytes the manifest lists`);
    }
    if (verified.sha256 !== layout.sha256) {
      throw new BlockDeviceError(
        "ChecksumMismatch",
        `the backup of ${device} is corrupt: its data and holes give sha256 ${verified.sha256}, the manifest lists ` +
          `${layout.sha256}; nothing was written`,
        device,
      );
    }
    const out = dev;
    let started = false;
    return {
      device,
      deviceBytes,
      close,
      write: async () => {
        if (started) throw new Error(`internal: the restore of ${device} was already written`);
        started = true;
        return writeAndReadBack({ src, out, layout, device, deviceBytes, ring, shortData, signal: opts.signal });
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

// Steps 3 and 4 of a restore: from the first write on, the device no longer holds what it did.
async function writeAndReadBack(w: {
  src: PositionalSource;
  out: FileHandle;
  layout: BlockLayout;
  device: string;
  deviceBytes: number;
  ring: Buffer[];
  shortData: (step: Step, got: number) => Error;
  signal: AbortSignal | undefined;
}): Promise<BlockRestoreResult> {
  const { out, layout, device } = w;
  // (3) Write, then fsync.
  try {
    await pump({
      source: w.src,
      steps: layoutSteps(layout),
      ring: w.ring,
      chunkBytes: layout.chunkBytes,
      hash: false,
      signal: w.signal,
      shortRead: w.shortData,
      sink: (_chunk, step) => ({ handle: out, position: step.offset }),
    });
    await out.sync();
  } catch (err) {
    throw new BlockDeviceError(
      "WriteFailed",
      `writing ${device} failed after it had begun, the device is partly written: ${errorMessage(err)}`,
      device,
      true,
      { cause: err },
    );
  }

  // (4) Read back from the device.
  let readBack: { sha256: string; via: "direct" | "cached" };
  try {
    readBack = await readBackDevice(device, out, layout.bytes, w.ring, layout.chunkBytes, w.signal);
  } catch (err) {
    throw new BlockDeviceError(
      "WriteFailed",
      `reading ${device} back after writing it failed; it may not hold the backup: ${errorMessage(err)}`,
      device,
      true,
      { cause: err },
    );
  }
  if (readBack.sha256 !== layout.sha256) {
    throw new BlockDeviceError(
      "ReadBackMismatch",
      `${device} was written but reads back with sha256 ${readBack.sha256}, the backup has ${layout.sha256} ` +
        `(the data file changed during the restore, or the device did not keep what was written)`,
      device,
      true,
    );
  }
  return {
    bytes: layout.bytes,
    sha256: readBack.sha256,
    deviceBytes: w.deviceBytes,
    tailBytes: w.deviceBytes - layout.bytes,
    readBack: readBack.via,
    verified: true,
  };
}

// Reads the first `bytes` of the device open as `fallback` and hashes them: through a second descriptor
// opened with O_DIRECT (page-aligned buffers), so that the data comes from the device; through `fallback`
// (the page cache) only where the device refuses O_DIRECT (EINVAL).
async function readBackDevice(
  device: string,
  fallback: FileHandle,
  bytes: number,
  ring: Buffer[],
  chunkBytes: number,
  signal: AbortSignal | undefined,
): Promise<{ sha256: string; via: "direct" | "cached" }> {
  const shortRead = (step: Step, got: number) =>
    new BlockDeviceError(
      "DeviceChanged",
      `${device} ended at ${step.offset + got} bytes while it was read back`,
      device,
    );
  let direct: FileHandle | undefined;
  try {
    // The very device that was written, whatever its path names now: reopened through its descriptor.
    direct = await open(descriptorPath(fallback.fd), O_RDONLY | O_DIRECT);
  } catch (err) {
    if (!isCode(err, "EINVAL")) throw err;
  }
  if (direct) {
    try {
      const [opened, written] = await Promise.all([direct.stat({ bigint: true }), fallback.stat({ bigint: true })]);
      if (!opened.isBlockDevice() || opened.rdev !== written.rdev) {
        throw new BlockDeviceError("DeviceChanged", `${device} could not be reopened to be read back`, device);
      }
      const { sha256 } = await pump({
        source: direct,
        steps: contiguousSteps(bytes, chunkBytes),
        ring,
        chunkBytes,
        hash: true,
        signal,
        shortRead,
      });
      return { sha256, via: "direct" };
    } catch (err) {
      // O_DIRECT accepted at open but refused at the first read (alignment the device does not take).
      if (!isCode(err, "EINVAL")) throw err;
    } finally {
      await direct.close();
    }
  }
  const { sha256 } = await pump({
    source: fallback,
    steps: contiguousSteps(bytes, chunkBytes),
    ring,
    chunkBytes,
    hash: true,
    signal,
    shortRead,
  });
  return { sha256, via: "cached" };
}

/**
 * Opens the block device at `path` with `flags` (plus O_NOFOLLOW): refused unless lstat shows a block
 * device (a symlink, a file or a FIFO is never opened), and unless what was opened is that same device.
 */
export async function openBlockDevice(path: string, flags: number): Promise<FileHandle> {
  const checked = await lstat(path, { bigint: true });
  if (!checked.isBlockDevice()) {
    throw new BlockDeviceError("NotBlockDevice", `${path} is ${kindOf(checked)}, not a block device`, path);
  }
  let handle: FileHandle;
  try {
    handle = await open(path, flags | O_NOFOLLOW);
  } catch (err) {
    if (isCode(err, "EBUSY") && flags & O_EXCL) {
      throw new BlockDeviceError(
        "DeviceBusy",
        `${path} is in use (mounted, or held exclusively by another opener): it is not written while it is`,
        path,
        false,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    const opened = await handle.stat({ bigint: true });
    if (!opened.isBlockDevice() || opened.rdev !== checked.rdev || opened.ino !== checked.ino) {
      throw new BlockDeviceError("DeviceChanged", `${path} was replaced while it was being opened`, path);
    }
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * The size in bytes of the block device open as `handle`: from sysfs for its device number, confirmed by
 * reads; by reads alone where sysfs is missing or disagrees (see the top of this file).
 */
export async function blockDeviceSize(handle: FileHandle): Promise<number> {
  const { rdev } = await handle.stat({ bigint: true });
  const fromSysfs = await sysfsSize(rdev);
  if (fromSysfs !== undefined && (await endsAt(handle, fromSysfs))) return fromSysfs;
  return blockDeviceSizeByReads(handle);
}

/** The capacity sysfs reports for device number `rdev`, or undefined when it cannot be read. */
export async function sysfsSize(rdev: bigint): Promise<number | undefined> {
  // Linux's dev_t: minor in bits 0-7 and 20-39, major in bits 8-19 and 40-63 (glibc's gnu_dev_major/minor).
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  try {
    const text = await readFile(`/sys/dev/block/${major}:${minor}/size`, "utf8");
    if (!/^\d+\n?$/.test(text)) return undefined;
    const bytes = Number(text.trim()) * SECTOR_BYTES;
    return Number.isSafeInteger(bytes) ? bytes : undefined;
  } catch {
    return undefined;
  }
}

// Whether the device's readable content ends exactly at `bytes`: its last byte reads, the next does not.
async function endsAt(handle: PositionalSource, bytes: number): Promise<boolean> {
  return (bytes === 0 || (await hasByteAt(handle, bytes - 1))) && !(await hasByteAt(handle, bytes));
}

async function hasByteAt(handle: PositionalSource, position: number): Promise<boolean> {
  const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, position);
  return bytesRead === 1;
}

/** The size of the device open as `handle` by reads alone: the largest n × 512 whose last byte reads. */
export async function blockDeviceSizeByReads(handle: FileHandle): Promise<number> {
  const has = (sectors: number) => hasByteAt(handle, sectors * SECTOR_BYTES - 1);
  if (!(await has(1))) return 0;
  let low = 1;
  let high = 2;
  while (await has(high)) {
    low = high;
    high *= 2;
    if (!Number.isSafeInteger(high * SECTOR_BYTES)) throw new Error("the device has no end that reads can find");
  }
  // has(low), !has(high)
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await has(middle)) low = middle;
    else high = middle;
  }
  return low * SECTOR_BYTES;
}

// ---- the shared loop ----

/** One chunk of the device's content: `length` bytes at `offset` on the device. */
interface Step {
  offset: number;
  length: number;
  /** Where the chunk is read from in the source; undefined for a hole (the chunk is zeros, nothing is read). */
  at?: number;
}

/** Chunks of a device (or of anything read as it is laid out): source offset = device offset. */
function* contiguousSteps(bytes: number, chunkBytes: number): Generator<Step> {
  for (let offset = 0; offset < bytes; offset += chunkBytes) {
    yield { offset, length: Math.min(chunkBytes, bytes - offset), at: offset };
  }
}

/** Chunks of a device as stored: holes are zeros, every other chunk the next one of the packed data file. */
function* layoutSteps(layout: BlockLayout): Generator<Step> {
  const { bytes, chunkBytes, holes } = layout;
  let hole = 0;
  let stored = 0;
  for (let offset = 0; offset < bytes; offset += chunkBytes) {
    const length = Math.min(chunkBytes, bytes - offset);
    let current = holes[hole];
    while (current && current.offset + current.length <= offset) current = holes[++hole];
    // Holes are chunk-aligned (checkBlockLayout): a chunk is entirely in one or entirely out of all.
    if (current && current.offset <= offset) {
      yield { offset, length };
    } else {
      yield { offset, length, at: stored };
      stored += length;
    }
  }
}

interface PumpSpec {
  source: PositionalSource;
  steps: Iterator<Step>;
  ring: Buffer[];
  chunkBytes: number;
  hash: boolean;
  signal: AbortSignal | undefined;
  /** The error for a source that ends before a step's `length` bytes could be read (`got` of them were). */
  shortRead: (step: Step, got: number) => Error;
  /** Where a chunk goes, once hashed, or undefined to write it nowhere. Called in order. */
  sink?: (chunk: Buffer, step: Step) => { handle: PositionalSink; position: number } | undefined;
}

// Chunk i goes through ring slot i mod ringSize: read (up to READ_AHEAD chunks ahead, on the thread pool),
// hashed (main thread), written (thread pool, one write at a time, in order) and written back behind the
// writes (write-behind.ts). A slot is refilled only once its previous chunk is written. Holes are read from
// nowhere: they are the shared zero buffer.
async function pump(spec: PumpSpec): Promise<{ bytes: number; sha256: string }> {
  const { source, steps, ring, chunkBytes, signal, sink } = spec;
  const ringSize = ring.length;
  const zeros = zeroBuffer(chunkBytes);
  const readAhead = Math.max(1, Math.min(READ_AHEAD, ringSize - (sink ? 2 : 1)));
  // Reads and writes never reject: errors are parked, so that an operation abandoned on the way out cannot
  // become an unhandled rejection.
  let ioError: Error | undefined;
  const park = (err: unknown) => {
    ioError ??= err instanceof Error ? err : new Error(String(err));
  };
  const throwIfFailed = () => {
    if (ioError) throw ioError;
  };
  const writeBehind = new WriteBehind(WRITE_BEHIND_BYTES, park);
  const slots: { step: Step; read: Promise<number> }[] = [];
  const writes: Promise<void>[] = ring.map(() => done);
  let lastWrite = done;
  let issued = 0;
  let exhausted = false;
  const issueUpTo = async (limit: number) => {
    while (issued < limit && !exhausted) {
      const next = steps.next();
      if (next.done) {
        exhausted = true;
        return;
      }
      const step = next.value;
      const index = issued % ringSize;
      await slotOf(writes, index);
      const read =
        step.at === undefined
          ? Promise.resolve(step.length)
          : readFully(source, slotOf(ring, index), step.length, step.at).catch((err: unknown) => {
              park(err);
              return 0;
            });
      slots[index] = { step, read };
      issued++;
    }
  };
  const hash = spec.hash ? createHash("sha256") : undefined;
  let bytes = 0;
  try {
    await issueUpTo(readAhead);
    for (let i = 0; i < issued; i++) {
      const index = i % ringSize;
      const { step, read } = slotOf(slots, index);
      const n = await read;
      throwIfFailed();
      signal?.throwIfAborted();
      if (n !== step.length) throw spec.shortRead(step, n);
      // Queue the next reads before hashing, so that they run while this chunk is hashed.
      await issueUpTo(i + 1 + readAhead);
      const chunk = (step.at === undefined ? zeros : slotOf(ring, index)).subarray(0, n);
      hash?.update(chunk);
      const destination = sink?.(chunk, step);
      if (destination) {
        const { handle, position } = destination;
        lastWrite = lastWrite.then(() => (ioError ? undefined : writeFully(handle, chunk, position))).catch(park);
        writes[index] = lastWrite;
        writeBehind.wrote(handle, n, lastWrite);
      } else {
        writes[index] = done;
      }
      bytes += n;
    }
    await lastWrite;
    await writeBehind.idle();
    throwIfFailed();
    return { bytes, sha256: hash ? hash.digest("hex") : "" };
  } finally {
    // Reads issued ahead, or abandoned on an error, must finish before the handles are closed.
    await Promise.all([...slots.map((s) => s.read), lastWrite, writeBehind.idle()]);
  }
}

const done = Promise.resolve();
const READ_AHEAD = 2;

function allocRing(ringSize: number, chunkBytes: number): Buffer[] {
  return Array.from({ length: ringSize }, () => Buffer.allocUnsafe(chunkBytes));
}

function checkChunkBytes(chunkBytes: number | undefined): number {
  const value = chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (
    !Number.isInteger(value) ||
    value < MIN_BLOCK_CHUNK_BYTES ||
    value > MAX_BLOCK_CHUNK_BYTES ||
    value % BLOCK_CHUNK_ALIGN !== 0
  ) {
    throw new RangeError(
      `chunkBytes must be a multiple of ${BLOCK_CHUNK_ALIGN} from ${MIN_BLOCK_CHUNK_BYTES} to ${MAX_BLOCK_CHUNK_BYTES}, got ${value}`,
    );
  }
  return value;
}

function kindOf(info: BigIntStats): string {
  if (info.isSymbolicLink()) return "a symbolic link";
  if (info.isDirectory()) return "a directory";
  if (info.isFile()) return "a regular file";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isFIFO()) return "a FIFO";
  if (info.isSocket()) return "a socket";
  return "of an unknown type";
}
