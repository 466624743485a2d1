// What a run needs to know of the Leases of the storage back ends it works on: whether it holds them, or
// may take them. A run holds every one of its back ends' Leases for its whole duration (not per step), and
// takes them all or none: see claimStorageLeases.
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
  /** The step named as its holder: the one whose agent may cut (pipelined backups wait for it). */
  holderStep?: string;
}

/** The Leases of every back end of a run, seen as one (what the decisions read). */
export interface LeaseSetState extends LeaseState {
  /** The run's storage keys, sorted (storage-group.ts), whose Leases this is. */
  keys?: string[];
  /** The run holds some of them but not all: it gives them back while it waits (no deadlock). */
  heldSome?: boolean;
  /** The first key someone else holds, for messages. */
  blockedKey?: string;
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
    ...(view.step ? { holderStep: view.step } : {}),
  };
  if (view.owner === me) return { ours: true, free: false, owner: me, ...held };
  const expired = (view.renewTime ?? 0) + view.durationSeconds * 1000 < now;
  // A Lease is taken over when its owner is gone or finished, or when it expired and no run we know
  // holds it (a dead holder outside this operator's view).
  const free = !ownerActive(view.owner) && (expired || isOwnedByKnownKind(view.owner));
  return { ours: false, free, owner: view.owner.split("/").slice(0, 3).join("/"), ...held };
}

/**
 * The Leases of `keys` as one: ours when every one is ours, free when not all are ours but each is ours or
 * nobody's (all can be taken now), renewed when the least recently renewed was, held on a node only when all name that node. A run
 * without keys (nothing to serialize on) holds an empty set: ours, with nothing to claim or release.
 */
export function leaseSetStateOf(
  keys: readonly string[],
  leaseOf: (key: string) => LeaseObject | undefined,
  me: string,
  now: number,
  ownerActive: OwnerActive,
): LeaseSetState {
  const states = keys.map((key) => ({ key, state: leaseStateOf(leaseOf(key), me, now, ownerActive) }));
  const blocked = states.find((s) => !s.state.ours && !s.state.free);
  const ours = states.every((s) => s.state.ours);
  const renewed = states.map((s) => s.state.renewedAt ?? 0);
  const nodes = new Set(states.map((s) => s.state.holderNode));
  const holderNode = nodes.size === 1 ? [...nodes][0] : undefined;
  const stepNames = new Set(states.map((s) => s.state.holderStep));
  const holderStep = stepNames.size === 1 ? [...stepNames][0] : undefined;
  return {
    keys: [...keys],
    ours,
    free: !blocked && !ours,
    heldSome: !ours && states.some((s) => s.state.ours),
    ...(blocked ? { blockedKey: blocked.key, ...(blocked.state.owner ? { owner: blocked.state.owner } : {}) } : {}),
    ...(ours && states.length > 0 ? { renewedAt: Math.min(...renewed) } : {}),
    ...(holderNode ? { holderNode } : {}),
    ...(holderStep ? { holderStep } : {}),
  };
}

/** "the storage back end X is in use by Y": what a run waiting for its Leases says. */
export function waitingForLeaseMessage(lease: LeaseSetState): string {
  const what = lease.blockedKey ? `the storage back end ${lease.blockedKey}` : "a storage back end";
  return `${what} is in use by ${lease.owner ?? "another run"}; waiting for it to finish`;
}

/**
 * Takes (or renews) the Leases of every key, in the order given (sorted: two runs wanting the same two keys
 * never each hold one), all or none: when one cannot be had, the ones this call took that the run did not
 * hold before are given back, and the error is rethrown (the work queue retries). `cached` is what the
 * decision rested on; each claim checks the Lease again (claimVolumeLease). Returns the Leases as written.
 */
export async function claimStorageLeases(
  leases: VolumeLeases,
  keys: readonly string[],
  cached: (key: string) => LeaseObject | undefined,
  claim: { owner: string; node: string; step: string; now: number },
  ownerActive: OwnerActive,
): Promise<LeaseObject[]> {
  const taken: string[] = [];
  const claimed: LeaseObject[] = [];
  try {
    for (const key of keys) {
      const before = cached(key);
      claimed.push(await claimVolumeLease(leases, key, before, claim, ownerActive));
      if (!leaseStateOf(before, claim.owner, claim.now, ownerActive).ours) taken.push(key);
    }
    return claimed;
  } catch (err) {
    for (const key of taken) await leases.release(key, claim.owner);
    throw err;
  }
}

/** Gives back every Lease of `keys` that `owner` holds. */
export async function releaseStorageLeases(
  leases: VolumeLeases,
  keys: readonly string[],
  owner: string,
): Promise<void> {
  for (const key of keys) await leases.release(key, owner);
}

/**
 * Takes (or renews) the Lease of one storage key for `owner` with `node` as holder. The decision to claim may
 * rest on a cache that has not seen another run's claim yet: the copy about to be replaced is checked
 * again (its resourceVersion guards against changes after this read), and a Lease someone else holds is
 * refused with a 409, retried by the work queue.
 */
export async function claimVolumeLease(
  leases: VolumeLeases,
  key: string,
  cached: LeaseObject | undefined,
  claim: { owner: string; node: string; step: string; now: number },
  ownerActive: OwnerActive,
): Promise<LeaseObject> {
  const current = cached ?? (await leases.read(key));
  const state = leaseStateOf(current, claim.owner, claim.now, ownerActive);
  if (!state.ours && !state.free) {
    throw new ApiError(409, "Conflict", `the Lease of ${key} was just taken by ${state.owner ?? "another run"}`);
  }
  return leases.claim(key, current, claim.owner, claim.node, claim.step, claim.now);
}
