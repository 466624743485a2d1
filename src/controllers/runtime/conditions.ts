// Status conditions keyed by type. A condition keeps its lastTransitionTime while its status stays
// the same, so rebuilding status on every pass does not churn it.
import type { Condition, ConditionStatus } from "../../api/v1alpha1/index.js";

export interface DesiredCondition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function mergeConditions(
  previous: readonly Condition[] | undefined,
  desired: readonly DesiredCondition[],
  generation: number | undefined,
  nowIso: string,
): Condition[] {
  return desired.map((d) => {
    const old = previous?.find((c) => c.type === d.type);
    return {
      type: d.type,
      status: d.status,
      reason: d.reason,
      message: d.message,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: old && old.status === d.status ? old.lastTransitionTime : nowIso,
    };
  });
}

/** Deep equality of JSON values, for "write status only when it changed". */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
