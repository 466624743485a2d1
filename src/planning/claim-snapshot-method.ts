// How each claim of a VM is cut: spec.snapshot.method resolved per claim, with the reason in words, since
// Auto must say what it picked for each claim.
//
// Auto picks, in order:
// 1. CSI when a VolumeSnapshotClass exists for the claim's CSI driver: the cut is a VolumeSnapshot taken
//    while the guest is frozen, so the freeze does not grow with the disk's size;
// 2. Reflink for a Filesystem-mode claim whose filesystem is known to support it (a clone of disk.img);
//    unknown counts as not, since a failed clone would cost the freeze window for nothing;
// 3. Copy otherwise: a full copy under freeze, bounded by spec.snapshot.maxFreeze.
// Block-mode claims have no filesystem to clone in: never Reflink.
//
// An explicit method is taken as asked when it can work: CSI on a claim whose driver has no class (or is
// not CSI at all) is VolumeSnapshotClassNotFound, the reason the backup uses today for a missing class;
// Reflink on a Block-mode claim, or on a filesystem known not to clone, is ReflinkNotSupported. A
// filesystem whose support is unknown is tried, as today for the shared volume: the agent reports a
// failed clone. Copy always works.

export type RequestedSnapshotMethod = "Auto" | "CSI" | "Reflink" | "Copy";
export type ClaimSnapshotMethod = "CSI" | "Reflink" | "Copy";

/** What the method of one claim depends on. */
export interface ClaimForSnapshot {
  claimName: string;
  volumeMode: "Filesystem" | "Block";
  /** The bound PersistentVolume's CSI driver; absent when it is not a CSI volume. */
  driver?: string;
  /** Whether the claim's filesystem clones files (reflink); undefined when unknown. Filesystem mode only. */
  reflink?: boolean;
}

export interface SnapshotCapabilities {
  /** The CSI drivers some VolumeSnapshotClass is for. */
  driversWithClass: ReadonlySet<string>;
  /** The CSI drivers some VolumeGroupSnapshotClass is for: their claims of one VM are cut together. */
  groupSnapshotDrivers?: ReadonlySet<string>;
  /**
   * The driver of spec.snapshot.volumeSnapshotClassName, when the user named a class: explicit CSI then
   * uses that class, so only claims of its driver can be cut with it.
   */
  namedClassDriver?: string;
}

export type ClaimMethodResolution =
  | {
      ok: true;
      claimName: string;
      method: ClaimSnapshotMethod;
      /** CSI only: the driver cuts a VM's claims in one VolumeGroupSnapshot. */
      groupSnapshot: boolean;
      /** CSI only: the driver whose class is used. */
      driver?: string;
      /** Why this method, one short line (what Auto picked and why, or "as spec.snapshot.method asks"). */
      why: string;
    }
  | { ok: false; claimName: string; reason: "VolumeSnapshotClassNotFound" | "ReflinkNotSupported"; message: string };

/** The method one claim is cut with, or why the one asked for cannot be used (see the top of this file). */
export function resolveClaimSnapshotMethod(
  claim: ClaimForSnapshot,
  requested: RequestedSnapshotMethod,
  capabilities: SnapshotCapabilities,
): ClaimMethodResolution {
  const name = claim.claimName;
  const driver = claim.driver;
  const csiDriverOk =
    driver !== undefined &&
    driver !== "" &&
    (requested === "CSI" && capabilities.namedClassDriver !== undefined
      ? driver === capabilities.namedClassDriver
      : capabilities.driversWithClass.has(driver));
  const csi = (why: string): ClaimMethodResolution => ({
    ok: true,
    claimName: name,
    method: "CSI",
    groupSnapshot: capabilities.groupSnapshotDrivers?.has(driver!) ?? false,
    driver: driver!,
    why,
  });
  const other = (method: "Reflink" | "Copy", why: string): ClaimMethodResolution => ({
    ok: true,
    claimName: name,
    method,
    groupSnapshot: false,
    why,
  });

  switch (requested) {
    case "CSI":
      if (csiDriverOk) return csi("CSI, as spec.snapshot.method asks");
      return {
        ok: false,
        claimName: name,
        reason: "VolumeSnapshotClassNotFound",
        message: !driver
          ? `claim ${name} is not on a CSI volume, so it cannot be cut with a VolumeSnapshot (spec.snapshot.method CSI)`
          : capabilities.namedClassDriver !== undefined
            ? `claim ${name} is on CSI driver ${driver}, but VolumeSnapshotClass spec.snapshot.volumeSnapshotClassName is for ${capabilities.namedClassDriver}`
            : `claim ${name} is on CSI driver ${driver}, for which no VolumeSnapshotClass exists (spec.snapshot.method CSI)`,
      };
    case "Reflink":
      if (claim.volumeMode === "Block")
        return {
          ok: false,
          claimName: name,
          reason: "ReflinkNotSupported",
          message: `claim ${name} is a Block-mode claim, which has no file to clone (spec.snapshot.method Reflink)`,
        };
      if (claim.reflink === false)
        return {
          ok: false,
          claimName: name,
          reason: "ReflinkNotSupported",
          message: `the filesystem of claim ${name} does not support reflink clones (spec.snapshot.method Reflink)`,
        };
      return other("Reflink", "Reflink, as spec.snapshot.method asks");
    case "Copy":
      return other("Copy", "Copy, as spec.snapshot.method asks");
    case "Auto":
      if (csiDriverOk)
        return csi(
          `Auto picked CSI: a VolumeSnapshotClass exists for driver ${driver}` +
            (capabilities.groupSnapshotDrivers?.has(driver) ? ", which supports VolumeGroupSnapshot" : ""),
        );
      if (claim.volumeMode === "Filesystem" && claim.reflink === true)
        return other("Reflink", `Auto picked Reflink: ${noClass(driver)}, and its filesystem supports reflink`);
      return other(
        "Copy",
        `Auto picked Copy: ${noClass(driver)}, and ${
          claim.volumeMode === "Block"
            ? "a Block-mode claim cannot be cloned"
            : claim.reflink === false
              ? "its filesystem does not support reflink"
              : "its filesystem's reflink support is unknown"
        }`,
      );
  }
}

const noClass = (driver: string | undefined): string =>
  driver ? `no VolumeSnapshotClass exists for driver ${driver}` : "it is not on a CSI volume";
