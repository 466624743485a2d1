// An XFS filesystem with reflink support, loop-mounted where a test wants one (the Reflink snapshot method
// needs copy-on-write clones). Needs root and mkfs.xfs (make test-tools installs xfsprogs).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface XfsImage {
  /** Mounts the filesystem on `dir`; returns the unmount. */
  mount(dir: string): () => void;
  cleanup(): void;
}

/** A fresh XFS image with reflink (sparse: only what is written takes space), or why there cannot be one here. */
export function xfsImage(sizeMiB = 512): string | XfsImage {
  if (process.getuid?.() !== 0) return "not running as root, cannot mount a loop device";
  try {
    execFileSync("mkfs.xfs", ["-V"], { stdio: "pipe" });
  } catch {
    return "mkfs.xfs is missing (make test-tools installs it)";
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-xfs-"));
  const image = path.join(dir, "xfs.img");
  execFileSync("truncate", ["-s", `${sizeMiB}M`, image]);
  execFileSync("mkfs.xfs", ["-q", "-m", "reflink=1", image], { stdio: "pipe" });
  return {
    mount: (target) => {
      execFileSync("mount", ["-o", "loop", image, target], { stdio: "pipe" });
      return () => execFileSync("umount", [target], { stdio: "pipe" });
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
