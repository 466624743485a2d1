// What a run needs to know of the shared volume's Lease: whether it holds it, or may take it.
import { ApiError } from "../../k8s/errors.js";
import { viewLease, type LeaseObject, type VolumeLeases } from "../../k8s/volume-lease.js";

export interface LeaseState {
  /** This run holds the shared volume's Lease. */
  ours: boolean;
  /** Nobody holds it (released, or expired with its owner gone). */
  free: boolean;
  /** Who holds it, for messages. */
  owner?: string;
  /** When it was last renewed (epoch ms). */
  renewedAt?: number;
  /** The node named as its holder. */
  holderNode?: string;
}

/** Is the run that owns a Lease ("Kind/namespace/name/uid") still going? */
export type OwnerActive = (owner: string) => boolean;

const isOwnedByKnownKind = (owner: string): boolean =>
  owner.startsWith("FederatedBackup/") || owner.startsWith("WorkloadRestore/");

export function leaseStateOf(
  lease: LeaseObject | undefined,
  me: string,
  now: number,
  ownerActive: OwnerActive,
): LeaseState {
  const view = viewLease(lease);
  if (!view?.owner) return { ours: false, free: true };
  const held = {
    ...(view.renewTime ? { renewedAt: view.renewTime } : {}),
    ...(view.holderNode ? { holderNode: view.holderNode } : {}),
  };
  if (view.owner === me) return { ours: true, free: false, owner: me, ...held };
  const expired = (view.renewTime ?? 0) + view.durationSeconds * 1000 < now;
  // A Lease is taken over when its owner is gone or finished, or when it expired and no run we know
  // holds it (a dead holder outside this operator's view).
  const free = !ownerActive(view.owner) && (expired || isOwnedByKnownKind(view.owner));
  return { ours: false, free, owner: view.owner.split("/").slice(0, 3).join("/"), ...held };
}

/**
 * Takes (or renews) the shared volume's Lease for `owner` with `node` as holder. The decision to claim may
 * rest on a cache that has not seen another run's claim yet: the copy about to be replaced is checked
 * again (its resourceVersion guards against changes after this read), and a Lease someone else holds is
 * refused with a 409, retried by the work queue.
 */
export async function claimVolumeLease(
  leases: VolumeLeases,
  volumeId: string,
  cached: LeaseObject | undefined,
  claim: { owner: string; node: string; step: string; now: number },
  ownerActive: OwnerActive,
): Promise<LeaseObject> {
  const current = cached ?? (await leases.read(volumeId));
  const state = leaseStateOf(current, claim.owner, claim.now, ownerActive);
  if (!state.ours && !state.free) {
    throw new ApiError(409, "Conflict", `the shared volume's Lease was just taken by ${state.owner ?? "another run"}`);
  }
  return leases.claim(volumeId, current, claim.owner, claim.node, claim.step, claim.now);
}
