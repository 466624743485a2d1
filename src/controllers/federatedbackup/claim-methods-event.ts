// What the snapshot method picked for the claims of a planned run, in one Event (with Auto, what it picked
// per claim is in each step's spec and each VM's manifest; this says it where users look first).
import type { NodeSnapshot } from "../../api/v1alpha1/index.js";

const MAX_LISTED = 5;

/** "<n> claims by CSI (<why>: a, b, …); <m> by Copy (…)", grouped by method and why; undefined without claims. */
export function claimMethodsSummary(steps: readonly NodeSnapshot[]): string | undefined {
  const groups = new Map<string, { method: string; why: string; claims: string[] }>();
  for (const step of steps) {
    for (const w of step.spec.workloads ?? []) {
      for (const c of w.claims ?? []) {
        const method = c.snapshotMethod ?? "Copy";
        const key = `${method}\n${c.why ?? ""}`;
        const group = groups.get(key) ?? { method, why: c.why ?? "", claims: [] };
        group.claims.push(`${w.namespace}/${c.claimName}`);
        groups.set(key, group);
      }
    }
  }
  if (groups.size === 0) return undefined;
  return [...groups.values()]
    .sort((a, b) => (a.method < b.method ? -1 : a.method > b.method ? 1 : a.why < b.why ? -1 : 1))
    .map((g) => {
      const sorted = g.claims.sort();
      const listed = sorted.slice(0, MAX_LISTED).join(", ") + (sorted.length > MAX_LISTED ? ", …" : "");
      return `${sorted.length} claim${sorted.length === 1 ? "" : "s"} by ${g.method}${g.why ? ` (${g.why})` : ""}: ${listed}`;
    })
    .join("; ");
}
