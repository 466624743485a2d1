// How the claims of one VM are cut, decided once when its step is planned and recorded in the step's spec
// (the decision recorded there is the one the agent executes). Each claim is resolved on its own
// (claim-snapshot-method.ts); then the VM as a whole:
//
// - A VM's disks are cut together, in one freeze window, so with Auto a VM is cut with CSI only when every
//   one of its disks is a claim Auto would cut with CSI. A VM that also has disk files on the shared volume,
//   or a claim without a VolumeSnapshotClass, has all its claims copied (Copy) in its freeze window, and
//   `why` says which disk decided it.
// - Reflink clones a Filesystem-mode claim's disk.img inside the claim (mounted read-write for it). Auto picks
//   it only for a claim whose bound PersistentVolume says its filesystem clones (annotation
//   fedbackup.io/reflink: "true", see controllers/runtime/claim-methods.ts); explicit Reflink takes it for
//   every Filesystem-mode claim not annotated "false", and the agent reports a clone that fails.
// - When Auto falls back from CSI for a VM (a disk that cannot be cut with CSI), each claim is cut with
//   Reflink when its filesystem is known to clone, else copied.
// - A CSI claim whose driver also has a VolumeGroupSnapshotClass is marked groupSnapshot, with that class:
//   the agent then cuts a VM whose CSI claims are all so marked in one VolumeGroupSnapshot, its disks at one
//   instant (agent/csi.ts); the method is still CSI, and the extraction is the same.
// - An explicit method that cannot cut a claim leaves the VM out with the claim's reason
//   (VolumeSnapshotClassNotFound, ReflinkNotSupported) and a message naming the claim.
import {
  resolveClaimSnapshotMethod,
  type ClaimMethodResolution,
  type RequestedSnapshotMethod,
  type SnapshotCapabilities,
} from "./claim-snapshot-method.js";
import type { PlannedClaim } from "./types.js";

/** A VolumeSnapshotClass as the choice of a class needs it. */
export interface SnapshotClassInfo {
  name: string;
  driver: string;
  /** Annotated snapshot.storage.kubernetes.io/is-default-class: "true". */
  isDefault: boolean;
}

/**
 * The class used for each driver: spec.snapshot.volumeSnapshotClassName for its own driver when the user
 * named one, else the driver's default class, else its first class by name.
 */
export function snapshotClassByDriver(classes: readonly SnapshotClassInfo[], named?: string): Map<string, string> {
  const out = new Map<string, string>();
  const sorted = [...classes].sort(
    (a, b) =>
      Number(b.name === named) - Number(a.name === named) ||
      Number(b.isDefault) - Number(a.isDefault) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  for (const c of sorted) if (c.driver && !out.has(c.driver)) out.set(c.driver, c.name);
  return out;
}

export type WorkloadClaimMethods =
  | { ok: true; claims: PlannedClaim[] }
  | { ok: false; reason: "VolumeSnapshotClassNotFound" | "ReflinkNotSupported"; detail: string };

export interface WorkloadClaimInput {
  /** Whether the VM also has disk files on the shared volume. */
  hasFiles: boolean;
  claims: readonly PlannedClaim[];
  /** The CSI driver of each claim's bound volume, by claim name; absent when not a CSI volume. */
  drivers: ReadonlyMap<string, string>;
  /** Whether each claim's filesystem clones files, by claim name; absent when unknown. */
  reflink?: ReadonlyMap<string, boolean>;
}

/** The method of each claim of a VM, or why the method asked for cannot capture it (see the top). */
export function planWorkloadClaimMethods(
  input: WorkloadClaimInput,
  requested: RequestedSnapshotMethod,
  classes: ReadonlyMap<string, string>,
  namedClassDriver?: string,
  /** The VolumeGroupSnapshotClass used for each driver that has one (snapshotClassByDriver). */
  groupClasses: ReadonlyMap<string, string> = new Map(),
): WorkloadClaimMethods {
  const capabilities: SnapshotCapabilities = {
    driversWithClass: new Set(classes.keys()),
    groupSnapshotDrivers: new Set(groupClasses.keys()),
    ...(namedClassDriver !== undefined ? { namedClassDriver } : {}),
  };
  const resolved: Array<{ claim: PlannedClaim; r: ClaimMethodResolution }> = input.claims.map((claim) => {
    const driver = input.drivers.get(claim.claimName);
    const reflink = input.reflink?.get(claim.claimName);
    return {
      claim,
      r: resolveClaimSnapshotMethod(
        {
          claimName: claim.claimName,
          volumeMode: claim.volumeMode,
          ...(driver ? { driver } : {}),
          ...(reflink !== undefined ? { reflink } : {}),
        },
        requested,
        capabilities,
      ),
    };
  });
  for (const { r } of resolved) {
    if (!r.ok) return { ok: false, reason: r.reason, detail: r.message };
  }
  if (requested === "Auto") {
    const notCsi = resolved.find(({ r }) => r.ok && r.method !== "CSI");
    const anyCsi = resolved.some(({ r }) => r.ok && r.method === "CSI");
    if (anyCsi && (input.hasFiles || notCsi)) {
      const because = input.hasFiles
        ? "the VM also has disk files on the shared volume, and one VM's disks are cut in one freeze window"
        : `claim ${notCsi!.claim.claimName} of the same VM cannot be cut with CSI (${
            notCsi!.r.ok ? notCsi!.r.why : ""
          }), and one VM's disks are cut in one freeze window`;
      return {
        ok: true,
        claims: resolved.map(({ claim }) => {
          const method =
            claim.volumeMode === "Filesystem" && input.reflink?.get(claim.claimName) === true ? "Reflink" : "Copy";
          return { ...strip(claim), snapshotMethod: method, why: `Auto picked ${method}: ${because}` };
        }),
      };
    }
  }
  return {
    ok: true,
    claims: resolved.map(({ claim, r }) => {
      if (!r.ok || r.method !== "CSI")
        return { ...strip(claim), snapshotMethod: r.ok ? r.method : "Copy", why: r.ok ? r.why : "" };
      return {
        ...strip(claim),
        snapshotMethod: "CSI",
        why: r.why,
        volumeSnapshotClassName: classes.get(r.driver!)!,
        ...(r.groupSnapshot ? { groupSnapshot: true, volumeGroupSnapshotClassName: groupClasses.get(r.driver!)! } : {}),
      };
    }),
  };
}

// A claim without an earlier decision's method, keeping its shape (what a restore creates it again from).
const strip = ({
  snapshotMethod: _method,
  why: _why,
  volumeSnapshotClassName: _class,
  groupSnapshot: _group,
  volumeGroupSnapshotClassName: _groupClass,
  ...claim
}: PlannedClaim): PlannedClaim => claim;
