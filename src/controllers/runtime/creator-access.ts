// Who may back up or restore what: the operator's own check, after admission (crds/fedbackup.io_admission-
// policies.yaml), of the user who created a FederatedBackup or WorkloadRestore. Pure: which namespaces need a
// check and which one, the recorded creator, whether that record can be trusted, and the verdict. The
// SubjectAccessReviews themselves are made by the Kubernetes adapter (src/k8s/access-review.ts).
//
// A run may touch VMs outside its resource's namespace only if the user who created the resource may, in each
// of those namespaces, freeze VMs (backups) or update VirtualMachines (restores). That user is the one the
// mutating admission policy wrote into the annotation fedbackup.io/created-by. The annotation is trusted only
// if that policy, its binding and the validating policy that keeps the annotation from changing (and its
// binding) all existed, unchanged, since CREATOR_POLICY_GRACE_MS before the resource was created: a resource
// created while they were absent (or just installed, or just edited) may carry an annotation its creator
// wrote, and its run fails with CreatorUnknown.
import type { FederatedBackup, WorkloadRestore } from "../../api/v1alpha1/index.js";

/** Written by the mutating admission policy at creation; JSON of the creating user (see Creator). */
export const ANNOTATION_CREATED_BY = "fedbackup.io/created-by";
/** The name of the admission policies and bindings that record and protect ANNOTATION_CREATED_BY. */
export const CREATOR_POLICY_NAME = "fedbackup.io-created-by";
/**
 * How long before a resource's creation the creator policies must have existed unchanged. Covers the
 * API servers' policy caches catching up with a new or changed policy (normally well under a second) and
 * the one-second resolution of the timestamps.
 */
export const CREATOR_POLICY_GRACE_MS = 10_000;

export const NAMESPACE_NOT_PERMITTED = "NamespaceNotPermitted";
export const CREATOR_UNKNOWN = "CreatorUnknown";

/** The user who created the resource, as Kubernetes authenticated them. */
export interface Creator {
  username: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

/** The permission a run needs in each namespace it reaches into (a SubjectAccessReview's resourceAttributes). */
export interface AccessCheck {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** In words, for messages: "freeze VMs (update virtualmachineinstances/freeze in subresources.kubevirt.io)". */
  what: string;
}

export const BACKUP_ACCESS: AccessCheck = {
  verb: "update",
  group: "subresources.kubevirt.io",
  resource: "virtualmachineinstances",
  subresource: "freeze",
  what: "freeze VMs (update virtualmachineinstances/freeze in subresources.kubevirt.io)",
};

export const RESTORE_ACCESS: AccessCheck = {
  verb: "update",
  group: "kubevirt.io",
  resource: "virtualmachines",
  what: "update VirtualMachines (update virtualmachines in kubevirt.io)",
};

/** Every namespace a FederatedBackup selects VMs in (its own when none is named). */
export function backupNamespaces(backup: FederatedBackup): string[] {
  const own = backup.metadata.namespace ?? "";
  const w = backup.spec.workloads ?? {};
  const named = [...(w.namespaces ?? []), ...(w.names ?? []).map((n) => n.namespace ?? own)];
  return named.length > 0 ? named : [own];
}

/**
 * Every namespace a WorkloadRestore reaches: the ones its spec names (workloads and groups) and the ones of
 * the VMs it resolved to (an empty spec.workloads restores every VM of the backup, wherever they are).
 */
export function restoreNamespaces(
  restore: WorkloadRestore,
  resolved: ReadonlyArray<{ namespace: string }> = [],
): string[] {
  const spec = restore.spec;
  return [
    ...(spec.workloads ?? []).flatMap((w) => [w.namespace, ...(w.targetNamespace ? [w.targetNamespace] : [])]),
    ...(spec.groups ?? []).flatMap((g) => g.workloads.map((w) => w.namespace)),
    ...Object.values(spec.namespaceMapping ?? {}),
    // The VMs resolved from the backup, by the namespace they are restored into (a copy's, or their own).
    ...resolved.map((w) => w.namespace),
  ];
}

/** The namespaces other than `own`, sorted, each once. */
export function foreignNamespaces(own: string | undefined, namespaces: readonly string[]): string[] {
  return [...new Set(namespaces.filter((ns) => ns !== own))].sort();
}

/** The creator recorded in the annotation, or why there is none that can be used. */
export function parseCreator(value: string | undefined): Creator | { error: string } {
  if (value === undefined) return { error: `the annotation ${ANNOTATION_CREATED_BY} is missing` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { error: `the annotation ${ANNOTATION_CREATED_BY} is not JSON` };
  }
  if (!isRecord(parsed)) return { error: `the annotation ${ANNOTATION_CREATED_BY} is not a JSON object` };
  const { username, uid, groups, extra } = parsed;
  if (typeof username !== "string" || username === "") {
    const why = typeof parsed.error === "string" ? `: ${parsed.error}` : "";
    return { error: `the annotation ${ANNOTATION_CREATED_BY} names no user${why}` };
  }
  if (uid !== undefined && typeof uid !== "string") return malformed("uid");
  if (groups !== undefined && !isStringArray(groups)) return malformed("groups");
  if (extra !== undefined && !(isRecord(extra) && Object.values(extra).every(isStringArray))) return malformed("extra");
  return {
    username,
    ...(uid ? { uid } : {}),
    groups: groups ?? [],
    extra: (extra as Record<string, string[]> | undefined) ?? {},
  };

  function malformed(field: string): { error: string } {
    return { error: `the annotation ${ANNOTATION_CREATED_BY} has a malformed ${field}` };
  }
}

/** An admission policy or binding as read from the API server (undefined: it does not exist). */
export interface PolicyObject {
  kind: string;
  metadata: {
    name?: string;
    creationTimestamp?: string;
    managedFields?: Array<{ time?: string; subresource?: string }>;
  };
  spec?: { policyName?: string; validationActions?: string[] };
}

/** The four objects that make ANNOTATION_CREATED_BY trustworthy, by kind. */
export interface CreatorPolicies {
  mutatingPolicy?: PolicyObject;
  mutatingBinding?: PolicyObject;
  validatingPolicy?: PolicyObject;
  validatingBinding?: PolicyObject;
}

export const CREATOR_POLICY_KINDS = {
  mutatingPolicy: "MutatingAdmissionPolicy",
  mutatingBinding: "MutatingAdmissionPolicyBinding",
  validatingPolicy: "ValidatingAdmissionPolicy",
  validatingBinding: "ValidatingAdmissionPolicyBinding",
} as const;

/**
 * Whether the annotation of a resource created at `createdAt` was written by the mutating policy and kept since.
 * Each of the four objects must exist, bind the policy of that name (Deny, for the validating binding), and have
 * been last written (created, or changed: the latest time in its managedFields, status aside) at least
 * `graceMs` before the resource was created. Deleting and re-creating one, or editing it, moves that time
 * past every resource created before, so a window in which the policies were absent or different is never
 * taken for one in which they were in force.
 */
export function creatorTrust(
  createdAt: string | undefined,
  policies: CreatorPolicies,
  graceMs = CREATOR_POLICY_GRACE_MS,
): { trusted: true } | { trusted: false; why: string } {
  const created = createdAt ? Date.parse(createdAt) : NaN;
  if (Number.isNaN(created)) return { trusted: false, why: "the resource has no creationTimestamp" };
  for (const key of Object.keys(CREATOR_POLICY_KINDS) as Array<keyof CreatorPolicies>) {
    const what = `${CREATOR_POLICY_KINDS[key]} ${CREATOR_POLICY_NAME}`;
    const object = policies[key];
    if (!object) return { trusted: false, why: `the ${what} does not exist` };
    if (key.endsWith("Binding") && object.spec?.policyName !== CREATOR_POLICY_NAME) {
      return { trusted: false, why: `the ${what} does not bind the policy ${CREATOR_POLICY_NAME}` };
    }
    if (key === "validatingBinding" && !object.spec?.validationActions?.includes("Deny")) {
      return { trusted: false, why: `the ${what} does not deny` };
    }
    const written = lastWritten(object);
    if (written === undefined) return { trusted: false, why: `the ${what} has no creationTimestamp` };
    if (written + graceMs > created) {
      return {
        trusted: false,
        why:
          `the ${what} was created or changed at ${new Date(written).toISOString()}, less than ` +
          `${graceMs / 1000} s before the resource was created, so the annotation may not be the policy's`,
      };
    }
  }
  return { trusted: true };
}

/** The latest of the object's creation and every write recorded in its managedFields, status writes aside. */
export function lastWritten(object: PolicyObject): number | undefined {
  const times = [
    object.metadata.creationTimestamp,
    ...(object.metadata.managedFields ?? []).filter((f) => !f.subresource).map((f) => f.time),
  ]
    .map((t) => (t ? Date.parse(t) : NaN))
    .filter((t) => !Number.isNaN(t));
  return object.metadata.creationTimestamp && times.length > 0 ? Math.max(...times) : undefined;
}

export interface Refusal {
  reason: typeof NAMESPACE_NOT_PERMITTED | typeof CREATOR_UNKNOWN;
  message: string;
}

const kindPhrase = (kind: string, namespace: string | undefined): string =>
  `this ${kind} selects VMs in namespaces other than its own (${namespace ?? ""})`;

const list = (namespaces: readonly string[]): string =>
  `namespace${namespaces.length === 1 ? "" : "s"} ${namespaces.join(", ")}`;

/** The creator cannot be known: nothing outside the resource's namespace is touched. */
export function creatorUnknown(
  kind: string,
  namespace: string | undefined,
  foreign: readonly string[],
  why: string,
): Refusal {
  return {
    reason: CREATOR_UNKNOWN,
    message:
      `${kindPhrase(kind, namespace)}, ${list(foreign)}, and the user who created it cannot be known: ${why}. ` +
      `Nothing was touched; create it again while the admission policies of crds/ are installed.`,
  };
}

/** The verdict once the SubjectAccessReviews are back: undefined when every foreign namespace is allowed. */
export function accessVerdict(
  kind: string,
  namespace: string | undefined,
  creator: Creator,
  check: AccessCheck,
  refused: readonly string[],
): Refusal | undefined {
  if (refused.length === 0) return undefined;
  return {
    reason: NAMESPACE_NOT_PERMITTED,
    message:
      `${kindPhrase(kind, namespace)}, and ${creator.username}, who created it, may not ${check.what} in ` +
      `${list([...refused].sort())}. Nothing was touched.`,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}
