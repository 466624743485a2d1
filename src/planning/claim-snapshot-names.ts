// The names of what the CSI method makes for a claim of a step: the VolumeSnapshot the step's Job takes
// and the claim the operator restores from it. Both derive from the step's name and the claim's, so the
// operator grants the agent access to them before its Job starts and finds them again after a restart.
// They end with a hash of both names: `<step>-<claim>` alone could be the same for two pairs
// ("b-r1-n" + "a-x", "b-r1-n-a" + "x"), and it is cut to stay within 63 characters.
import { fnv1a32Hex } from "./fnv1a.js";

const MAX_PREFIX = 63 - "-restore".length - 9;

/** The VolumeSnapshot of claim `claimName` that the step `step` takes (at most 55 characters). */
export function claimSnapshotName(step: string, claimName: string): string {
  const prefix = `${step}-${claimName}`.slice(0, MAX_PREFIX).replace(/[-.]+$/, "");
  return `${prefix}-${fnv1a32Hex(`${step}\n${claimName}`)}`;
}

/** The claim restored from the VolumeSnapshot `snapshotName` for the extraction (at most 63 characters). */
export const restoredClaimSnapshotName = (snapshotName: string): string => `${snapshotName}-restore`;
