// How a pipelined step's agent learns that its turn to cut has come: every storage Lease of its run names
// its node as holder and its step in the step annotation. It reads each Lease once and then watches it (one
// object, by a metadata.name field selector), so the turn is seen as soon as the operator hands it on, with
// no polling. The operator hands the turn on only after the step before has made its cut, so a Lease that
// names this step keeps naming it until this step reports its own cut (or ends).
import type { KubeClient } from "./client.js";
import { ApiError, isNotFound } from "./errors.js";
import { Resources } from "./resources.js";
import { viewLease, type LeaseObject } from "./volume-lease.js";

export interface TurnLease {
  namespace: string;
  name: string;
}

/** Does the Lease give the turn to `step` on `node`? */
export function namesStep(lease: LeaseObject | undefined, node: string, step: string): boolean {
  const view = viewLease(lease);
  return view?.holderNode === node && view.step === step;
}

/** "NAMESPACE/NAME" of a --turn-lease flag. */
export function parseTurnLease(text: string): TurnLease {
  const parts = text.split("/");
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`"${text}" is not NAMESPACE/NAME`);
  return { namespace: parts[0], name: parts[1] };
}

const WATCH_SECONDS = 60;

/** Resolves once every Lease names `step` on `node`; rejects when `signal` aborts. */
export async function waitForTurn(
  client: KubeClient,
  leases: readonly TurnLease[],
  node: string,
  step: string,
  signal?: AbortSignal,
): Promise<void> {
  for (const lease of leases) await waitForLease(client, lease, node, step, signal);
}

async function waitForLease(
  client: KubeClient,
  lease: TurnLease,
  node: string,
  step: string,
  signal?: AbortSignal,
): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    let current: LeaseObject | undefined;
    try {
      current = await client.get<LeaseObject>(Resources.Lease, lease.namespace, lease.name);
    } catch (err) {
      // Not made yet: the operator creates it when it first gives a turn; the watch below sees it come.
      if (!isNotFound(err)) throw err;
    }
    if (namesStep(current, node, step)) return;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let granted = false;
    try {
      await client.watch<LeaseObject>(
        Resources.Lease,
        {
          namespace: lease.namespace,
          fieldSelector: `metadata.name=${lease.name}`,
          resourceVersion: current?.metadata.resourceVersion ?? "0",
          timeoutSeconds: WATCH_SECONDS,
          signal: stop.signal,
        },
        (event) => {
          if ((event.type === "ADDED" || event.type === "MODIFIED") && namesStep(event.object, node, step)) {
            granted = true;
            stop.abort();
          }
        },
      );
    } catch (err) {
      // A broken or expired watch is read again from the start; anything else (a denial) is the step's failure.
      if (!(err instanceof ApiError && (err.status === 0 || err.status === 410))) throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (granted) return;
  }
}
