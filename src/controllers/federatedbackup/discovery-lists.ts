// What discovery asks the API server for: the VMIs of the namespaces a backup selects, with its label
// selector sent along when it can be written as one, instead of every VMI of the cluster. What comes back
// is still matched against spec.workloads (scope.ts): the server's filter only makes the answer smaller.
import type { FederatedBackup } from "../../api/v1alpha1/index.js";
import type { LabelSelector } from "./label-selector.js";

/** One LIST of VMIs: a namespace, and what the server may filter by. */
export interface DiscoveryList {
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
}

// A label key (optional DNS prefix, then a name) and a label value, as the API server accepts them; a
// selector with anything else is not sent (the server would refuse it, or parse it otherwise).
const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function validKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : "";
  return KEY.test(key) && prefix.length <= 253 && key.length - slash - 1 <= 63;
}
const validValue = (value: string) => value.length <= 63 && VALUE.test(value);

/**
 * The selector as the API server's labelSelector parameter, or undefined when there is nothing to send
 * (no selector, an empty one) or it cannot be sent as it is (a key or value the syntax does not allow, an
 * In or NotIn without values): then every VMI of the namespace is listed and matched here.
 */
export function labelSelectorParam(selector: LabelSelector | undefined): string | undefined {
  if (!selector) return undefined;
  const terms: string[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!validKey(key) || !validValue(value)) return undefined;
    terms.push(`${key}=${value}`);
  }
  for (const e of selector.matchExpressions ?? []) {
    if (!validKey(e.key)) return undefined;
    const values = e.values ?? [];
    if (!values.every(validValue)) return undefined;
    switch (e.operator) {
      case "In":
      case "NotIn":
        if (values.length === 0) return undefined;
        terms.push(`${e.key} ${e.operator === "In" ? "in" : "notin"} (${[...values].sort().join(",")})`);
        break;
      case "Exists":
        terms.push(e.key);
        break;
      case "DoesNotExist":
        terms.push(`!${e.key}`);
        break;
      default:
        return undefined;
    }
  }
  return terms.length > 0 ? terms.join(",") : undefined;
}

/**
 * The LISTs that find every VMI the backup selects: per namespace it names, with the label selector; for
 * VMs named one by one, their namespaces (one named VM: that VMI alone, by a metadata.name field selector).
 */
export function discoveryLists(backup: FederatedBackup): DiscoveryList[] {
  const own = backup.metadata.namespace ?? "";
  const w = backup.spec.workloads ?? {};
  if (w.names?.length) {
    const byNamespace = new Map<string, Set<string>>();
    for (const n of w.names) {
      const ns = n.namespace ?? own;
      byNamespace.set(ns, (byNamespace.get(ns) ?? new Set()).add(n.name));
    }
    return [...byNamespace.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([namespace, names]) => {
        const [only] = names;
        return names.size === 1 && only && NAME.test(only)
          ? { namespace, fieldSelector: `metadata.name=${only}` }
          : { namespace };
      });
  }
  const namespaces = [...new Set(w.namespaces?.length ? w.namespaces : [own])].sort();
  const labelSelector = labelSelectorParam(w.selector);
  return namespaces.map((namespace) => ({ namespace, ...(labelSelector ? { labelSelector } : {}) }));
}
