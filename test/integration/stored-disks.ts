// What a backup holds of a Block-mode disk, put back together to compare with the device in full.
import assert from "node:assert/strict";
import type { WorkloadManifest } from "../../src/agent/manifest.js";

/** A Block disk's content as the backup holds it: the data file with zeros put back where the holes are. */
export function reassemble(dataFile: Buffer, disk: NonNullable<WorkloadManifest["blockDisks"]>[number]): Buffer {
  const out = Buffer.alloc(disk.bytes);
  let read = 0;
  let at = 0;
  for (const hole of [...disk.holes, { offset: disk.bytes, length: 0 }]) {
    const length = hole.offset - at;
    dataFile.copy(out, at, read, read + length);
    read += length;
    at = hole.offset + hole.length;
  }
  assert.equal(read, dataFile.length, "the data file holds exactly the bytes outside the holes");
  return out;
}
