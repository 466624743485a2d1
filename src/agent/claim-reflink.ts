// Reflink for a Filesystem-mode claim: a copy-on-write clone of its disk.img, made inside the claim itself
// (a clone cannot cross filesystems), next to the image, while the VM is frozen. The extraction reads the
// clone after the thaw, as Copy reads disk.img, and the clone is removed after it.
//
// The clone is a hidden file of the claim's root named after the backup (`.fedbackup-snapshot-<uid>.img`):
// one name per backup, so an attempt that was interrupted (the Job killed between the clone and its
// removal) leaves a file the next attempt of the same backup, in any round, finds and removes before its
// freeze. The claim's root is the tenant's: the directory is opened without following symlinks (safe-fs.ts)
// and the clone is created O_EXCL through it (snapshot.ts cloneInto), so nothing planted there is followed.
import { posix } from "node:path";
import { checkName } from "./manifest.js";
import { withDir, withRoot } from "./safe-fs.js";
import { cloneInto, describeFsError, isReflinkUnsupported } from "./snapshot.js";

/** The name of a backup's clone in a claim's root. */
export function claimCloneName(backupUid: string): string {
  // A uid is a UUID; anything else could make the name something other than one hidden file.
  if (!/^[A-Za-z0-9-]{1,64}$/.test(backupUid)) throw new Error(`invalid backup uid ${JSON.stringify(backupUid)}`);
  return `.fedbackup-snapshot-${backupUid}.img`;
}

/** The clone of `claimDir`'s disk.img (relative to the claims root), for reading it as Copy reads disk.img. */
export const claimClonePath = (claimDir: string, backupUid: string): string =>
  posix.join(checkName("claim name", claimDir), claimCloneName(backupUid));

/** What the clone's source was, for the manifest (as Copy records disk.img's). */
export interface ClaimCloneSource {
  mode: number;
  uid: number;
  gid: number;
}

/** A clone that failed; `unsupported` when the claim's filesystem cannot clone (ReflinkNotSupported). */
export class ClaimCloneError extends Error {
  override readonly name = "ClaimCloneError";
  constructor(
    readonly unsupported: boolean,
    message: string,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/**
 * Clones `<claimsRoot>/<claimDir>/disk.img` into the claim's root under the backup's clone name. Call inside
 * the freeze window, after discardClaimClone. A failure of the clone itself is a ClaimCloneError; an unsafe
 * or missing disk.img throws as opening it does.
 */
export async function cloneClaimDisk(
  claimsRoot: string,
  claimDir: string,
  backupUid: string,
): Promise<ClaimCloneSource> {
  const name = claimCloneName(backupUid);
  return withRoot(claimsRoot, (root) =>
    withDir(root, checkName("claim name", claimDir), {}, async (dir) => {
      const image = await dir.openFile("disk.img");
      try {
        const info = await image.stat();
        try {
          await cloneInto(image, dir, name);
        } catch (err) {
          throw new ClaimCloneError(
            isReflinkUnsupported(err),
            `cloning disk.img failed: ${describeFsError(err, "disk.img")}`,
            err,
          );
        }
        return { mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
      } finally {
        await image.close();
      }
    }),
  );
}

/** Removes the backup's clone from the claim, if there is one (never following a symlink). */
export async function discardClaimClone(claimsRoot: string, claimDir: string, backupUid: string): Promise<boolean> {
  return withRoot(claimsRoot, (root) => root.unlink(claimClonePath(claimDir, backupUid)));
}
