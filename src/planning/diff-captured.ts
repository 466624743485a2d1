import { compareWorkloads, toRef } from "./compare.js";
import type { WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

export interface CaptureDiff {
  /** Expected but never captured. */
  missing: WorkloadRef[];
  /** Captured but not expected (e.g. a VM that started after discovery and was picked up by a node Job). */
  unexpected: WorkloadRef[];
  /** Captured more than once, each listed once: a sign of overlapping steps, worth reporting. */
  duplicates: WorkloadRef[];
}

/** Compares what verification expected with what the node steps report as captured. All lists sorted by key. */
export function diffCaptured(expected: readonly WorkloadRef[], captured: readonly WorkloadRef[]): CaptureDiff {
  const expectedKeys = new Set(expected.map(workloadKey));
  const timesCaptured = new Map<string, { ref: WorkloadRef; count: number }>();
  for (const ref of captured) {
    const key = workloadKey(ref);
    const entry = timesCaptured.get(key);
    if (entry) entry.count++;
    else timesCaptured.set(key, { ref, count: 1 });
  }

  const missing = new Map<string, WorkloadRef>();
  for (const ref of expected) {
    const key = workloadKey(ref);
    if (!timesCaptured.has(key)) missing.set(key, ref);
  }
  const unexpected: WorkloadRef[] = [];
  const duplicates: WorkloadRef[] = [];
  for (const [key, { ref, count }] of timesCaptured) {
    if (!expectedKeys.has(key)) unexpected.push(ref);
    if (count > 1) duplicates.push(ref);
  }
  return { missing: sorted([...missing.values()]), unexpected: sorted(unexpected), duplicates: sorted(duplicates) };
}

function sorted(refs: WorkloadRef[]): WorkloadRef[] {
  return refs.map(toRef).sort(compareWorkloads);
}
