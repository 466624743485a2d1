// Holds what RBAC grants against what a process was seen to do (its ApiUsage summary): every grant must
// have been used (or be needed to grant it on), no use may have been denied. Pure: the end-to-end test
// feeds it the rules it read from the cluster and the summaries the operator and agents logged.
import type { UsageEntry } from "../../src/k8s/api-usage.js";

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** One (verb, group, resource) a rule grants; `names` set when the rule names its objects. */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  names?: string[];
}

export const permissionKey = (p: { verb: string; group: string; resource: string }): string =>
  `${p.verb} ${p.group === "" ? "core" : p.group}/${p.resource}`;

/** Each (verb, group, resource) of the rules, merged across rules (names of named rules joined). */
export function expandRules(rules: readonly PolicyRule[]): Permission[] {
  const out = new Map<string, Permission>();
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) {
          const key = permissionKey({ verb, group, resource });
          const seen = out.get(key);
          if (!seen)
            out.set(key, { verb, group, resource, ...(rule.resourceNames ? { names: [...rule.resourceNames] } : {}) });
          else if (seen.names && rule.resourceNames) seen.names.push(...rule.resourceNames);
          else delete seen.names; // one rule without names grants them all
        }
      }
    }
  }
  return [...out.values()];
}

/** Rules with a "*" anywhere: a grant nobody can reason about. */
export function wildcardRules(rules: readonly PolicyRule[]): PolicyRule[] {
  return rules.filter((r) =>
    [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs, ...(r.nonResourceURLs ?? [])].some((x) =>
      x.includes("*"),
    ),
  );
}

export interface UsageReport {
  /** Granted and used: the key and how many requests. */
  used: Array<{ key: string; count: number }>;
  /** Granted, never requested, but held because the process grants it on (RBAC's escalation check). */
  delegated: string[];
  /** Granted, not used here, needed on a path the run did not take (the key and that path). */
  notTaken: Array<{ key: string; why: string }>;
  /** Granted and neither used, delegated nor explained: to be removed. */
  unused: string[];
  /** Explained as needed on a path not taken, but not granted: the explanation is stale. */
  staleExplanations: string[];
  /** Requests the API server refused. */
  denied: Array<{ key: string; denied: number }>;
  /** Requests that succeeded without a grant here (the cluster's default roles, e.g. discovery). */
  outside: string[];
}

export function compareUsage(
  granted: readonly Permission[],
  usage: readonly UsageEntry[],
  delegatedTo: readonly Permission[] = [],
  pathsNotTaken: Readonly<Record<string, string>> = {},
): UsageReport {
  const usedCount = new Map<string, number>();
  for (const u of usage) usedCount.set(permissionKey(u), (usedCount.get(permissionKey(u)) ?? 0) + u.count);
  const grantedKeys = new Set(granted.map(permissionKey));
  const delegatedKeys = new Set(delegatedTo.map(permissionKey));
  const report: UsageReport = {
    used: [],
    delegated: [],
    notTaken: [],
    unused: [],
    staleExplanations: Object.keys(pathsNotTaken).filter((k) => !grantedKeys.has(k)),
    denied: [],
    outside: [],
  };
  for (const key of [...grantedKeys].sort()) {
    const count = usedCount.get(key);
    if (count) report.used.push({ key, count });
    else if (delegatedKeys.has(key)) report.delegated.push(key);
    else if (pathsNotTaken[key]) report.notTaken.push({ key, why: pathsNotTaken[key] });
    else report.unused.push(key);
  }
  for (const u of usage) {
    const key = permissionKey(u);
    if (u.denied > 0) report.denied.push({ key, denied: u.denied });
    else if (!grantedKeys.has(key)) report.outside.push(key);
  }
  return report;
}

/** The report as a table people read in the test's output. */
export function formatUsageReport(title: string, report: UsageReport): string {
  const lines = [`${title}:`];
  for (const u of report.used) lines.push(`  granted, used ${String(u.count).padStart(5)}x  ${u.key}`);
  for (const k of report.delegated) lines.push(`  granted, delegated       ${k}  (held to grant it to agents)`);
  for (const n of report.notTaken) lines.push(`  granted, path not taken  ${n.key}  (${n.why})`);
  for (const k of report.unused) lines.push(`  granted, NEVER USED      ${k}`);
  for (const d of report.denied) lines.push(`  DENIED ${String(d.denied).padStart(5)}x          ${d.key}`);
  for (const k of report.outside) lines.push(`  used, granted elsewhere  ${k}`);
  return lines.join("\n");
}
