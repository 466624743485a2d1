// A backup's directory on a mounted PersistentVolumeClaim, as a LocationDir: every path reached through
// safe-fs.ts (never through a symlink; others can write to the location), every file committed atomically
// and durably (atomic-files.ts).
import { posix } from "node:path";
import type { LocationDir } from "../storage/location-dir.js";
import type { PositionalSink, PositionalSource } from "../storage/positional.js";
import { commitAtomic, removeDurably } from "./atomic-files.js";
import { withDir, type SafeDir } from "./safe-fs.js";

export class FsLocationDir implements LocationDir {
  readonly remote = false;

  /** `dir`: the backup's directory, open; the caller closes it. */
  constructor(readonly dir: SafeDir) {}

  relative(rel: string): string {
    return this.dir.relative(rel);
  }

  openFile(rel: string): Promise<PositionalSource> {
    return this.dir.openFile(rel);
  }

  commit<T>(rel: string, produce: (sink: PositionalSink) => Promise<T>, mode?: number): Promise<T> {
    const parent = posix.dirname(rel);
    return withDir(this.dir, parent === "." ? "" : parent, { create: true }, (dir) =>
      commitAtomic(dir, posix.basename(rel), produce, mode),
    );
  }

  remove(rel: string): Promise<void> {
    return removeDurably(this.dir, rel);
  }

  async removeTree(rel: string): Promise<void> {
    await this.dir.removeTree(rel);
  }
}
