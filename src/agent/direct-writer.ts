// Direct writes: a copy into a local file writes its chunks with O_DIRECT, from its buffers to the device,
// not through the page cache.
//
// Why: a backup's copy of a disk image is read once, at restore time if ever, so caching it only evicts
// what the node's VMs use; written through the page cache it also piles up gigabytes of dirty pages that
// the commit's fsync then waits for, and the copy of each byte from the buffer into the page cache costs
// CPU the hashing needs (on the 2-core VM of `make bench`, after a few idle seconds, far more: `dd bs=1M`
// of 2 GiB took 5.5-5.7 s buffered and 0.9-1.0 s with oflag=direct, both until durable; `cp` 1.2-1.4 s).
// With O_DIRECT each chunk is on the device when its write returns; the commit's fsync is left with the
// metadata.
//
// How: a second descriptor on the very file the copy was given, reopened through /proc/self/fd (the same
// inode, checked; no path is walked, so no symlink can be followed), with O_DIRECT. Every chunk is a whole
// number of 4 KiB blocks at a multiple of 4 KiB from a page-aligned buffer (aligned-ring.ts); the last,
// shorter one is padded with zeros to the next block, and the copy's final truncate cuts the padding off.
// Where the filesystem refuses O_DIRECT (at the reopen, or EINVAL at a write: alignment it does not take),
// the copy goes on through the page cache: write() says so, and the caller writes that chunk itself.
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import type { PositionalSink } from "../storage/positional.js";
import { writeFully } from "./positional-io.js";
import { descriptorPath, isCode } from "./safe-fs.js";

const { O_WRONLY, O_DIRECT } = constants;

/** The block size direct writes are made of, and aligned to (in memory and in the file). */
export const DIRECT_BLOCK_BYTES = 4096;

export class DirectWriter {
  private refused = false;

  private constructor(private readonly handle: FileHandle) {}

  /**
   * A direct writer on the regular file `sink` is open on, or undefined where there is none: `sink` is not
   * a local file (an upload), or its filesystem refuses O_DIRECT, or it cannot be reopened.
   */
  static async open(sink: PositionalSink): Promise<DirectWriter | undefined> {
    const file = sink as Partial<FileHandle>;
    if (typeof file.fd !== "number" || typeof file.stat !== "function") return undefined;
    const given = await (sink as FileHandle).stat({ bigint: true });
    if (!given.isFile()) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(descriptorPath(file.fd), O_WRONLY | O_DIRECT);
    } catch {
      // EINVAL (no O_DIRECT here), EACCES (a file whose mode no longer allows writing), no /proc: the
      // copy goes through the page cache, as it would without this.
      return undefined;
    }
    const reopened = await handle.stat({ bigint: true });
    if (reopened.dev !== given.dev || reopened.ino !== given.ino) {
      await handle.close();
      throw new Error(`the copy's target could not be reopened for direct writes: it is another file now`);
    }
    return new DirectWriter(handle);
  }

  /**
   * Writes the first `length` bytes of `slot` at `position` (a multiple of DIRECT_BLOCK_BYTES), padding a
   * length that is not a whole number of blocks with zeros within `slot`. Resolves false, having written
   * nothing for good, once the filesystem has refused a direct write: the caller writes the chunk itself.
   */
  async write(slot: Buffer, length: number, position: number): Promise<boolean> {
    if (this.refused) return false;
    const padded = Math.ceil(length / DIRECT_BLOCK_BYTES) * DIRECT_BLOCK_BYTES;
    if (padded > slot.length || position % DIRECT_BLOCK_BYTES !== 0) {
      throw new RangeError(`internal: a direct write of ${length} bytes at ${position} is not block-aligned`);
    }
    slot.fill(0, length, padded);
    try {
      await writeFully(this.handle, slot.subarray(0, padded), position);
      return true;
    } catch (err) {
      if (!isCode(err, "EINVAL")) throw err;
      this.refused = true;
      return false;
    }
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
