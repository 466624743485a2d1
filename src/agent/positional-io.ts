// Whole reads and writes at a position: a read or write may move fewer bytes than asked (a pipe, a signal,
// a device's own limits), and the data paths must neither lose nor duplicate any.
import type { PositionalSink, PositionalSource } from "../storage/positional.js";

/**
 * Reads `length` bytes at `position` into the start of `buffer`; fewer only if the source ends first. A short
 * read is not the end (network filesystems return them): only a read of 0 bytes is.
 */
export async function readFully(
  handle: PositionalSource,
  buffer: Buffer,
  length: number,
  position: number,
): Promise<number> {
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** Writes all of `chunk` at `position`; a write that moves nothing is an error, not a loop. */
export async function writeFully(handle: PositionalSink, chunk: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, position + written);
    if (bytesWritten === 0) throw new Error(`write returned 0 bytes at offset ${position + written}`);
    written += bytesWritten;
  }
}
