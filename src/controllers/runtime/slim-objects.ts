// What the informer caches keep of each object: only what the operator reads (grep the readers before
// widening or narrowing one). At 1,000 nodes and 10,000 VMIs the caches are most of the operator's
// memory, and most of each object is never read: managedFields (the API server's record of who wrote
// what, often as large as the object), a VMI's domain and guest details, a Node's image list, a Job's pod
// template. Each function returns a new object and leaves its argument as it is.
import type { NodeObject, VirtualMachine, VirtualMachineInstance } from "../../api/kubevirt.js";
import type { KubeObject } from "../../k8s/types.js";

/** The object without metadata.managedFields. An update sent without them leaves them to the API server. */
export function withoutManagedFields<T extends KubeObject>(obj: T): T {
  if (!obj.metadata?.managedFields) return obj;
  const { managedFields: _managedFields, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/** Only the fields given, of those present. */
function pick<T extends object, K extends keyof T>(obj: T | undefined, keys: readonly K[]): Pick<T, K> | undefined {
  if (!obj) return undefined;
  const out = {} as Pick<T, K>;
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

/**
 * A VMI: its metadata; of its spec the volumes (its disks and claims) and node selector; of its status the
 * phase, node, migration, freeze state and conditions (runtime/observe.ts, claim-disks.ts, file-claims.ts,
 * federatedbackup/thaw.ts, workloadrestore/reconciler.ts).
 */
export function slimVmi<T extends VirtualMachineInstance & KubeObject>(vmi: T): T {
  const { spec, status, ...rest } = withoutManagedFields(vmi);
  const slimSpec = pick(spec, ["volumes", "nodeSelector"]);
  const slimStatus = pick(status, ["phase", "nodeName", "migrationState", "fsFreezeStatus", "conditions"]);
  return { ...rest, ...(slimSpec ? { spec: slimSpec } : {}), ...(slimStatus ? { status: slimStatus } : {}) } as T;
}

/**
 * A VirtualMachine: all of its metadata and spec (a restore compares the spec with the captured one and
 * replaces it as a whole, sending the cached metadata back), of its status what says whether it runs.
 */
export function slimVm<T extends VirtualMachine & KubeObject>(vm: T): T {
  const { status, ...rest } = withoutManagedFields(vm);
  const slimStatus = pick(status, ["printableStatus", "ready", "created"]);
  return { ...rest, ...(slimStatus ? { status: slimStatus } : {}) } as T;
}

/**
 * A Node: its name, labels and times (no annotations); whether it is schedulable and its taints; its
 * allocatable resources and conditions (runtime/observe.ts, node-readiness.ts, node-health-recorder.ts).
 */
export function slimNode<T extends NodeObject & KubeObject>(node: T): T {
  const { annotations: _annotations, ...metadata } = withoutManagedFields(node).metadata;
  const spec = pick(node.spec, ["unschedulable", "taints"]);
  const status = pick(node.status, ["allocatable", "conditions"]);
  return {
    ...(node.apiVersion ? { apiVersion: node.apiVersion } : {}),
    ...(node.kind ? { kind: node.kind } : {}),
    metadata,
    ...(spec ? { spec } : {}),
    ...(status ? { status } : {}),
  } as T;
}

/** A Job: its metadata and status, without its pod template (runtime/job-view.ts reads the status). */
export function slimJob<T extends KubeObject & { spec?: unknown; status?: unknown }>(job: T): T {
  const { spec: _spec, ...rest } = withoutManagedFields(job);
  return rest as T;
}
