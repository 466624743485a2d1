// What a process asked of the API server, in RBAC's terms: (verb, API group, resource[/subresource]), how
// often, and how often it was refused. The operator and the agent log it when they stop, so that an
// administrator (and the end-to-end test) can hold the permissions granted against the permissions used.

/** A request's authorization attributes, as the API server derives them (its RequestInfo). */
export interface RequestAttributes {
  /** RBAC verb: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** API group; "" for the core group. */
  group: string;
  /** Resource plural, with "/subresource" when there is one (e.g. "federatedbackups/status"). */
  resource: string;
}

/**
 * The authorization attributes of a request to a resource path (/api/v1/..., /apis/<group>/<version>/...),
 * or undefined for a path that names no resource (/version, /apis discovery).
 */
export function requestAttributes(method: string, path: string, watch: boolean): RequestAttributes | undefined {
  const parts = path.split("?")[0]!.split("/").filter(Boolean);
  let i: number;
  let group: string;
  if (parts[0] === "api" && parts.length >= 3) [i, group] = [2, ""];
  else if (parts[0] === "apis" && parts.length >= 4) [i, group] = [3, parts[1]!];
  else return undefined;
  // namespaces/<ns>/<plural>/... is a namespaced resource; namespaces/<name>[/status|/finalize] the namespace.
  if (parts[i] === "namespaces" && parts.length > i + 2 && !NAMESPACE_SUBRESOURCES.has(parts[i + 2]!)) i += 2;
  const plural = parts[i]!;
  const named = parts.length > i + 1;
  const sub = parts[i + 2];
  const resource = sub ? `${plural}/${sub}` : plural;
  const verb = watch ? "watch" : rbacVerb(method.toUpperCase(), named);
  return { verb, group, resource };
}

const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

function rbacVerb(method: string, named: boolean): string {
  switch (method) {
    case "GET":
    case "HEAD":
      return named ? "get" : "list";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return named ? "delete" : "deletecollection";
    default:
      return method.toLowerCase();
  }
}

export interface UsageEntry extends RequestAttributes {
  count: number;
  /** Answers 403 Forbidden: the request was not authorized (or refused by admission with 403). */
  denied: number;
}

/** Counts requests by their attributes and outcome. */
export class ApiUsage {
  private readonly entries = new Map<string, UsageEntry>();

  record(attributes: RequestAttributes, status: number): void {
    const key = `${attributes.verb} ${attributes.group} ${attributes.resource}`;
    let entry = this.entries.get(key);
    if (!entry) this.entries.set(key, (entry = { ...attributes, count: 0, denied: 0 }));
    entry.count++;
    if (status === 403) entry.denied++;
  }

  /** Every (verb, group, resource) seen, sorted by group, resource, verb. */
  summary(): UsageEntry[] {
    return [...this.entries.values()]
      .map((e) => ({ ...e }))
      .sort(
        (a, b) =>
          a.group.localeCompare(b.group) || a.resource.localeCompare(b.resource) || a.verb.localeCompare(b.verb),
      );
  }
}

/**
 * The attributes a write is also authorized for beyond its own: an owner reference that blocks its owner's
 * deletion needs update on the owner's finalizers (the admission plugin OwnerReferencesPermissionEnforcement).
 * `resourceOf` maps an owner's apiVersion and kind to its group and plural (undefined: unknown kind).
 */
export function impliedAttributes(
  body: unknown,
  resourceOf: (apiVersion: string, kind: string) => { group: string; plural: string } | undefined,
): RequestAttributes[] {
  const refs = (body as { metadata?: { ownerReferences?: unknown } } | undefined)?.metadata?.ownerReferences;
  if (!Array.isArray(refs)) return [];
  const out: RequestAttributes[] = [];
  for (const ref of refs as Array<{ apiVersion?: string; kind?: string; blockOwnerDeletion?: boolean }>) {
    if (ref.blockOwnerDeletion !== true || !ref.apiVersion || !ref.kind) continue;
    const owner = resourceOf(ref.apiVersion, ref.kind);
    if (owner) out.push({ verb: "update", group: owner.group, resource: `${owner.plural}/finalizers` });
  }
  return out;
}

/** The message the operator and the agent log their ApiUsage summary under, when they stop. */
export const API_USAGE_MESSAGE = "API requests made";
