// What the data paths (copy-and-hash, block devices) read from and write to: a local file's descriptor, or
// an object at an S3 location. The agent's verified copies only ever read at positions and write at
// positions, so these two small interfaces are all they need, and a FileHandle is both.

/** Reads at positions; `bytesRead` 0 is the end. */
export interface PositionalSource {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/** Writes at positions; `truncate` sets the final size (bytes never written read back as zeros). */
export interface PositionalSink {
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  truncate(length: number): Promise<void>;
  /**
   * Writes what was written so far back to the device (fdatasync), where there is one: copies use it to
   * write behind themselves (agent/write-behind.ts). An upload has none.
   */
  datasync?(): Promise<void>;
}
