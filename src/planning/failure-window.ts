import { compareStrings } from "./compare.js";

/** Something that went wrong on a node: a NotReady transition or a failed snapshot Job. */
export interface NodeFailureEvent {
  node: string;
  /** When it happened, epoch milliseconds. */
  at: number;
}

/**
 * How many failures each node had in the last `windowMs` before `now`, i.e. with now - windowMs <= at.
 * Events stamped after `now` are counted as well: they come from other components' clocks, and a little
 * clock skew must not hide a failure that just happened. A window of 0 or less counts nothing.
 *
 * Nodes without failures are absent (read with `?? 0`); the map iterates in node-name order so anything
 * derived from it is deterministic.
 */
export function countRecentFailures(
  events: readonly NodeFailureEvent[],
  now: number,
  windowMs: number,
): Map<string, number> {
  const counts = new Map<string, number>();
  if (!(windowMs > 0)) return counts;
  const since = now - windowMs;
  for (const { node, at } of events) {
    if (at >= since) counts.set(node, (counts.get(node) ?? 0) + 1);
  }
  return new Map([...counts].sort(([a], [b]) => compareStrings(a, b)));
}
