import type { WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

/**
 * Orders strings by UTF-16 code units. Deliberately not localeCompare: the plan must come out the same on
 * every operator replica whatever its locale or ICU data, or two reconciles could disagree about the order.
 */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareWorkloads(a: WorkloadRef, b: WorkloadRef): number {
  return compareStrings(workloadKey(a), workloadKey(b));
}

/** A bare {namespace, name}, so results never carry (or alias) the caller's larger objects. */
export function toRef(w: WorkloadRef): WorkloadRef {
  return { namespace: w.namespace, name: w.name };
}

/** Keeps the first item for each key: one VM listed twice must not be captured twice by one Job. */
export function uniqueBy<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = keyOf(item);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * `{ lastNode }` when there is one, else `{}`: an explicit `lastNode: undefined` would show up in status
 * patches and make structurally equal results compare unequal.
 */
export function lastNodeField(lastNode: string | undefined): { lastNode?: string } {
  return lastNode === undefined || lastNode === "" ? {} : { lastNode };
}
