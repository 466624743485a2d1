// A controller's own writes come back to it through its watches. The pass that wrote a step's phase or
// created a Job has acted on it already, so its echo need not wake the run again: at 1,000 nodes that is
// a whole pass over the run, several times per node step. Changes made by anyone else (an agent's report,
// the Job controller's status) still wake it, even when they reach the cache after a newer write of ours.
import type { EventKeys } from "./controller.js";

/** As `keys`, except for the watch's echo of a write this process recorded in the cache (Informer.observe). */
export function exceptOwnWrites<T>(keys: EventKeys<T>): EventKeys<T> {
  return (event, obj, old, meta) => (meta?.ownWrite ? [] : keys(event, obj, old, meta));
}
