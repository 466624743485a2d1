// A backup's directory at its location, as the agent reads and writes it: on a mounted PersistentVolumeClaim
// (agent/fs-location-dir.ts, every path reached through safe-fs) or under an S3 prefix (s3-location-dir.ts).
// Paths are relative to the backup's directory and laid out by the manifest module; what differs between
// the two is only how a file is made to appear complete or not at all.
import type { PositionalSink, PositionalSource } from "./positional.js";

export interface LocationDir {
  /** How messages name `rel`: its path below the location, or its key. */
  relative(rel: string): string;
  /** Opens a stored file to read; one that is not there rejects with an error whose code is ENOENT. */
  openFile(rel: string): Promise<PositionalSource>;
  /**
   * Produces `rel` from what `produce` writes into the sink it is handed: `rel` appears complete under its
   * name, or not at all (a failure leaves any earlier `rel` as it was). `mode` is a file's permission bits.
   */
  commit<T>(rel: string, produce: (sink: PositionalSink) => Promise<T>, mode?: number): Promise<T>;
  /** Removes the file `rel` if it is there, durably. */
  remove(rel: string): Promise<void>;
  /** Removes `rel` and everything below it. */
  removeTree(rel: string): Promise<void>;
  /**
   * True for an object store: reading a file costs a download, so a restore verifies each file once, as it
   * copies it into a temporary file beside its target, rather than once before and once while copying.
   */
  readonly remote: boolean;
}

/** An error that says `rel` is not there, with the code the filesystem gives (ENOENT). */
export function notFound(what: string, cause?: unknown): Error {
  return Object.assign(new Error(`${what} does not exist`, cause === undefined ? {} : { cause }), { code: "ENOENT" });
}
