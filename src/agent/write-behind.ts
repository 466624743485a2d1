// Write-behind: a copy starts writing its data back to the device while it goes on, instead of leaving it
// all dirty in the page cache for the commit's fsync.
//
// Without it, a copy of a large disk image dirties gigabytes of page cache, which the kernel writes back
// only once its dirty thresholds are crossed (on a 24 GiB node the background one is about 2 GiB), and then
// all at once: the commit's fsync waits for the whole file after the copy itself is done, and every other
// writer on the node, the VMs included, is throttled while the dirty pages pile up. With a data sync
// started every few MiB (one at a time, behind the writes already queued, never holding the next ones up),
// the write-back runs beside the reading and hashing, the page cache holds a bounded amount of the copy's
// dirty data, and the commit's fsync finds little left to do. A failed write-back fails the copy at once.
//
// Local files are written with O_DIRECT where their filesystem takes it (direct-writer.ts) and need none of
// this; it serves the copies that go through the page cache: filesystems that refuse O_DIRECT, and block
// devices. Measured on the 2-core VM of `make bench` (2 GiB through the page cache, flushed, until durable,
// medians of 5-7 interleaved runs against `openssl dgst` at 1.27-1.32 s): a write-back every 8 MiB took
// 1.22-1.57 s, every 16 MiB 1.58-1.61 s, every 4 MiB 2.08 s, none 1.64-2.53 s.
import type { PositionalSink } from "../storage/positional.js";

/** Data written between two write-backs a copy starts. */
export const WRITE_BEHIND_BYTES = 8 * 1024 * 1024;

const settled = Promise.resolve();

export class WriteBehind {
  private unsynced = 0;
  private inFlight: Promise<void> | undefined;

  /**
   * @param everyBytes start a write-back once this many bytes were queued since the last one; 0 never does.
   * @param park where a failed write-back's error goes (the copy's error slot: the copy fails with it).
   */
  constructor(
    private readonly everyBytes: number,
    private readonly park: (err: unknown) => void,
  ) {
    if (!Number.isInteger(everyBytes) || everyBytes < 0) {
      throw new RangeError(`writeBehindBytes must be a whole number of bytes, at least 0, got ${everyBytes}`);
    }
  }

  /**
   * Notes `bytes` more queued for `sink` by the write `written` (which never rejects), and starts a
   * write-back of `sink` behind it when enough have built up and none is running. A sink that cannot sync
   * (an upload) is left alone.
   */
  wrote(sink: PositionalSink, bytes: number, written: Promise<void>): void {
    this.unsynced += bytes;
    if (this.everyBytes === 0 || this.unsynced < this.everyBytes || this.inFlight || !sink.datasync) return;
    this.unsynced = 0;
    const datasync = sink.datasync.bind(sink);
    this.inFlight = written
      .then(() => datasync())
      .catch(this.park)
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  /** Settles (never rejects) once the write-back running, if any, has; the copy waits for it before closing. */
  idle(): Promise<void> {
    return this.inFlight ?? settled;
  }
}
