// Copies a file and computes its sha256 in one pass over the source.
//
// Disk images are large (tens to hundreds of GiB), so the copy is built around three constraints:
// - every source byte is read once: hashing re-reading the file would double the I/O;
// - memory stays constant: a small ring of fixed buffers, whatever the file size;
// - hashing overlaps I/O. Reads and writes run on libuv's thread pool; sha256 runs synchronously on the
//   main thread. While chunk i is being hashed, chunks i+1 and i+2 are being read and the chunks before i
//   written, so the wall time approaches max(hash time, I/O time) instead of their sum.
//
// Chunks that are entirely zero are not written: the target is opened truncated, so skipping them leaves
// holes that read back as zeros. Sparse disk images (the usual case for raw images) stay sparse, and the
// copy of a mostly empty 1 TiB image costs reads and hashing but almost no writes or space.
//
// Source and target are paths or open FileHandles. The agent passes handles it opened itself through
// safe-fs.ts (no symlink followed, regular files only), so that what is copied is exactly what was checked;
// reads and writes are positional, so a handle's file position does not matter.
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { open, rm } from "node:fs/promises";
import { readFully, writeFully } from "./positional-io.js";
import { WRITE_BEHIND_BYTES, WriteBehind } from "./write-behind.js";
import { allocAlignedRing } from "./aligned-ring.js";
import { DIRECT_BLOCK_BYTES, DirectWriter } from "./direct-writer.js";
import type { PositionalSink, PositionalSource } from "../storage/positional.js";

export interface HashResult {
  /** Bytes read from the source (and so the size of the target). */
  bytes: number;
  /** Lowercase hex sha256 of those bytes. */
  sha256: string;
}

/** A path, or a FileHandle the caller opened (and closes). */
export type FileRef = string | FileHandle;

/** What a copy reads: a path, or a source the caller opened (a FileHandle, an object at the location). */
export type SourceRef = string | PositionalSource;

/** Where a copy writes: a path, or a sink the caller opened (a FileHandle, an upload to the location). */
export type TargetRef = string | PositionalSink;

export interface CopyOptions {
  /** Stops the copy between chunks; the promise rejects with signal.reason and the target is removed. */
  signal?: AbortSignal;
  /** Size of each buffer of the ring (default 1 MiB). */
  chunkBytes?: number;
  /** Buffers in the ring, at least 2 (default 6); memory used is buffers × chunkBytes. */
  buffers?: number;
  /**
   * Write a local file target with O_DIRECT where its filesystem takes it (see direct-writer.ts; default
   * true); false writes through the page cache.
   */
  directWrites?: boolean;
  /**
   * Bytes written through the page cache between two write-backs of the target (see write-behind.ts;
   * default WRITE_BEHIND_BYTES, 0 for none). Direct writes need none.
   */
  writeBehindBytes?: number;
}

/**
 * 1 MiB: large enough that per-chunk overhead (promise, syscall, thread-pool hop) is negligible, small
 * enough that one synchronous hash update blocks the event loop for only about half a millisecond.
 */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

/**
 * Buffers in flight: two being read ahead, one being hashed, three queued for writing. The queue absorbs
 * a slow write (page reclaim, writeback throttling) without stalling the reads and the hashing; with only
 * four buffers a 2 GiB copy measured 1.5-2x slower. 6 × 1 MiB = 6 MiB per copy, whatever the file size.
 */
export const DEFAULT_BUFFERS = 6;

// The write "in flight" for a slot that needs none (never used, or an all-zero chunk).
const done = Promise.resolve();

// Chunks read ahead of the one being hashed (see pump).
const READ_AHEAD = 2;

const MIN_CHUNK_BYTES = 4096;
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Copies `source` to `target` (created or truncated; a target handle is truncated) and returns the size
 * and sha256 of what was read. On any failure, including an abort, a target given as a path is removed
 * and the error rethrown: a partial file is never useful, and callers write to temporary names anyway
 * (see atomic-files.ts); a target given as a handle is left to its caller to remove. Handles are not
 * closed. The target is not fsynced; callers that need durability commit it with commitAtomic.
 */
export async function copyAndHash(source: SourceRef, target: TargetRef, opts: CopyOptions = {}): Promise<HashResult> {
  const result = await copy(source, target, opts, true);
  return { bytes: result.bytes, sha256: result.sha256 ?? "" };
}

/**
 * The same copy without the sha256, for copies that sit inside a freeze window (Copy snapshots): there the
 * hash, the slowest stage, would only lengthen the freeze, and the data is hashed later anyway when it is
 * extracted. Unlike fs.copyFile, all-zero chunks become holes, so a sparse image does not fill the volume.
 */
export async function copySparse(
  source: SourceRef,
  target: TargetRef,
  opts: CopyOptions = {},
): Promise<{ bytes: number }> {
  const { bytes } = await copy(source, target, opts, false);
  return { bytes };
}

async function copy(
  source: SourceRef,
  target: TargetRef,
  opts: CopyOptions,
  withHash: boolean,
): Promise<{ bytes: number; sha256?: string }> {
  const chunkBytes = checkChunkBytes(opts.chunkBytes);
  const buffers = checkBuffers(opts.buffers);
  opts.signal?.throwIfAborted();
  // Only what is opened here is closed (and, for the target, removed on failure) here.
  const src = typeof source === "string" ? await open(source, "r") : source;
  const closeSrc = () => (typeof source === "string" ? src.close() : Promise.resolve());
  let dst: PositionalSink;
  let opened: FileHandle | undefined;
  try {
    if (typeof target === "string") {
      dst = opened = await open(target, "w");
    } else {
      dst = target;
      // Skipped zero chunks must read back as holes, not as whatever the file held before.
      await dst.truncate(0);
    }
  } catch (err) {
    await closeSrc();
    throw err;
  }
  let direct: DirectWriter | undefined;
  try {
    if ((opts.directWrites ?? true) && chunkBytes % DIRECT_BLOCK_BYTES === 0) direct = await DirectWriter.open(dst);
    const result = await pump(src, dst, chunkBytes, buffers, withHash, opts.signal, {
      direct,
      writeBehindBytes: opts.writeBehindBytes ?? WRITE_BEHIND_BYTES,
    });
    await direct?.close();
    await closeSrc();
    // close() can report a deferred write error (NFS does this), so it is part of the copy; a caller that
    // passed a handle syncs and closes it itself (commitAtomic does).
    if (opened) await opened.close();
    return result;
  } catch (err) {
    await Promise.allSettled([closeSrc(), opened ? opened.close() : Promise.resolve(), direct?.close()]);
    if (typeof target === "string") await rm(target, { force: true });
    throw err;
  }
}

/**
 * The size and sha256 of a file, streamed: the next chunks are read while one is hashed.
 */
export async function sha256OfFile(source: SourceRef, opts: CopyOptions = {}): Promise<HashResult> {
  const chunkBytes = checkChunkBytes(opts.chunkBytes);
  opts.signal?.throwIfAborted();
  const src = typeof source === "string" ? await open(source, "r") : source;
  try {
    const { bytes, sha256 } = await pump(src, undefined, chunkBytes, checkBuffers(opts.buffers), true, opts.signal, {
      writeBehindBytes: 0,
    });
    return { bytes, sha256: sha256 ?? "" };
  } finally {
    if (typeof source === "string") await src.close();
  }
}

// The shared loop. With `dst` undefined it only hashes.
//
// Chunk i lives at offset i × chunkBytes and goes through the slot i mod ringSize: read (up to readAhead
// chunks ahead, on the thread pool), hashed (main thread), written (thread pool, one write at a time): with
// O_DIRECT where it can be (direct-writer.ts), otherwise through the page cache and written back behind
// the writes every writeBehindBytes (write-behind.ts). A slot is refilled only after its previous chunk has
// been written.
async function pump(
  src: PositionalSource,
  dst: PositionalSink | undefined,
  chunkBytes: number,
  ringSize: number,
  withHash: boolean,
  signal: AbortSignal | undefined,
  writes: { direct?: DirectWriter; writeBehindBytes: number },
): Promise<{ bytes: number; sha256?: string }> {
  const { direct } = writes;
  // Page-aligned, as direct writes need (and harmless otherwise).
  const ring =
    chunkBytes % DIRECT_BLOCK_BYTES === 0
      ? allocAlignedRing(ringSize, chunkBytes)
      : Array.from({ length: ringSize }, () => Buffer.allocUnsafe(chunkBytes));
  const zeros = zeroBuffer(chunkBytes);
  // Two reads ahead keep the hashing fed when a read waits behind a write for the second core; one chunk
  // is being hashed; the rest of the ring queues writes.
  const readAhead = Math.max(1, Math.min(READ_AHEAD, ringSize - (dst ? 2 : 1)));
  // Reads and writes never reject: errors are parked in ioError, so that an outstanding operation
  // abandoned on the way out cannot become an unhandled rejection.
  let ioError: Error | undefined;
  const park = (err: unknown) => {
    ioError ??= err instanceof Error ? err : new Error(String(err));
  };
  // (A function, because the compiler cannot see the callbacks above assign ioError.)
  const throwIfFailed = () => {
    if (ioError) throw ioError;
  };
  const writeBehind = new WriteBehind(direct ? 0 : writes.writeBehindBytes, park);
  const reads: Promise<number>[] = ring.map(() => Promise.resolve(0));
  // Writes are chained, one at a time: concurrent writes to one file only contend for its inode lock
  // (measured 2-3x slower on ext4). written[slot] is the write of the chunk last held by that slot.
  const written: Promise<void>[] = ring.map(() => done);
  let lastWrite = done;
  let issued = 0;
  const issueReadsUpTo = async (limit: number) => {
    for (; issued < limit; issued++) {
      const index = issued % ringSize;
      await slotOf(written, index);
      reads[index] = readFully(src, slotOf(ring, index), slotOf(ring, index).length, issued * chunkBytes).catch(
        (err: unknown) => {
          park(err);
          return 0;
        },
      );
    }
  };
  const hash = withHash ? createHash("sha256") : undefined;
  let position = 0;
  try {
    await issueReadsUpTo(readAhead);
    for (let i = 0; ; i++) {
      const index = i % ringSize;
      const n = await slotOf(reads, index);
      throwIfFailed();
      signal?.throwIfAborted();
      // Queue the next reads before hashing, so that they run while this chunk is hashed.
      if (n === chunkBytes) await issueReadsUpTo(i + 1 + readAhead);
      const chunk = slotOf(ring, index).subarray(0, n);
      hash?.update(chunk);
      if (dst && n > 0 && !chunk.equals(zeros.subarray(0, n))) {
        const at = position;
        const slot = slotOf(ring, index);
        lastWrite = lastWrite
          .then(async () => {
            if (ioError) return;
            // A chunk the filesystem refused to take directly goes through the page cache.
            if (direct && (await direct.write(slot, n, at))) return;
            await writeFully(dst, chunk, at);
          })
          .catch(park);
        written[index] = lastWrite;
        writeBehind.wrote(dst, n, lastWrite);
      } else {
        written[index] = done;
      }
      position += n;
      // readChunk fills its buffer unless the file ends inside it.
      if (n < chunkBytes) break;
    }
    await lastWrite;
    await writeBehind.idle();
    throwIfFailed();
    // Trailing holes were skipped, so the size is set explicitly.
    if (dst) await dst.truncate(position);
    return hash ? { bytes: position, sha256: hash.digest("hex") } : { bytes: position };
  } finally {
    // Reads issued past the end, or abandoned on an error, must finish before the handles are closed.
    await Promise.all([...reads, lastWrite, writeBehind.idle()]);
  }
}

/** The ring's slot `index`, which always exists (the ring is made full-size up front). */
export function slotOf<T>(ring: T[], index: number): T {
  const value = ring[index];
  if (value === undefined) throw new Error(`internal: no ring slot ${index}`);
  return value;
}

// One zero buffer per chunk size, shared by all copies (compared against, and written from over a block
// device's holes; never written to).
const zeroBuffers = new Map<number, Buffer>();
export function zeroBuffer(size: number): Buffer {
  let zeros = zeroBuffers.get(size);
  if (!zeros) {
    zeros = Buffer.alloc(size);
    zeroBuffers.set(size, zeros);
  }
  return zeros;
}

function checkChunkBytes(chunkBytes: number | undefined): number {
  const value = chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(value) || value < MIN_CHUNK_BYTES || value > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes must be an integer from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES}, got ${value}`);
  }
  return value;
}

export function checkBuffers(buffers: number | undefined): number {
  const value = buffers ?? DEFAULT_BUFFERS;
  if (!Number.isInteger(value) || value < 2 || value > 64) {
    throw new RangeError(`buffers must be an integer from 2 to 64, got ${value}`);
  }
  return value;
}
