// Grants a step's agent its access right before its Job starts and takes it back once the step is over,
// or a run's agents theirs before its first Job and back once it is over (see agent-access.ts for what is
// granted). All are idempotent: a restarted operator does them again.
import type { KubeClient } from "../../k8s/client.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import { buildStepAccess, type AccessObject, type StepAccess, type StepAccessRequest } from "./agent-access.js";
import { deleteIfExists } from "./objects.js";
import { mapBounded } from "./bounded.js";

/** Creates (or corrects) the step's ServiceAccount, Roles and RoleBindings; returns the ServiceAccount's name. */
export async function grantStepAccess(client: KubeClient, req: StepAccessRequest): Promise<string> {
  const access = buildStepAccess(req);
  await client.apply(Resources.ServiceAccount, access.serviceAccount as unknown as KubeObject);
  // Roles before their bindings: a binding to a Role that does not exist yet grants nothing, but a binding
  // created first would let a racing agent see a half-made grant as a denial.
  for (const role of access.roles) await client.apply(Resources.Role, role as unknown as KubeObject);
  for (const binding of access.bindings) await client.apply(Resources.RoleBinding, binding as unknown as KubeObject);
  return access.serviceAccount.metadata.name;
}

/**
 * Deletes everything grantStepAccess made for the step, the ServiceAccount first: its tokens stop
 * authenticating (once the API server's cache sees it), whatever becomes of the rest.
 */
export async function revokeStepAccess(client: KubeClient, req: StepAccessRequest): Promise<void> {
  const access = buildStepAccess(req);
  const sa = access.serviceAccount.metadata;
  await deleteIfExists(client, Resources.ServiceAccount, sa.namespace, sa.name);
  for (const binding of access.bindings) {
    await deleteIfExists(client, Resources.RoleBinding, binding.metadata.namespace, binding.metadata.name);
  }
  for (const role of access.roles) {
    await deleteIfExists(client, Resources.Role, role.metadata.namespace, role.metadata.name);
  }
}

/** What one object is as applied, to tell whether it changed since. */
const objectKey = (o: AccessObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;

/**
 * The objects of `access` to apply, in the order to apply them (the ServiceAccount, Roles, RoleBindings),
 * leaving out each one applied before exactly as it is now (`applied`: object key → its JSON).
 */
export function accessChanges(access: StepAccess, applied: ReadonlyMap<string, string>): AccessObject[] {
  return [access.serviceAccount, ...access.roles, ...access.bindings].filter(
    (o) => applied.get(objectKey(o)) !== JSON.stringify(o),
  );
}

/** Access objects of one kind applied at once, at most. */
const ACCESS_APPLIES_IN_FLIGHT = 8;

const resourceOf = (o: AccessObject) =>
  o.kind === "ServiceAccount" ? Resources.ServiceAccount : o.kind === "Role" ? Resources.Role : Resources.RoleBinding;

/**
 * The agent access of runs granted as one (agent-access.ts buildRunAccess), applied by this process: a run's
 * later steps apply nothing, or only the Role a new round grew. A restarted process applies each run's
 * objects once again (server-side apply: nothing changes on the server when they did not).
 */
export class RunAccessGrants {
  /** Run UID → object key → the object's JSON as last applied. */
  private readonly applied = new Map<string, Map<string, string>>();
  /** Run UID → the access object last granted whole: granted again as is, nothing needs comparing. */
  private readonly granted = new Map<string, StepAccess>();

  /** Run UID → the grant being applied: a pass that starts several Jobs at once applies it once. */
  private readonly inFlight = new Map<string, Promise<number>>();

  constructor(private readonly client: KubeClient) {}

  /** Applies what changed of the run's access; returns how many objects were applied. */
  async grant(runUid: string, access: StepAccess): Promise<number> {
    const pending = this.inFlight.get(runUid);
    if (pending) {
      await pending.catch(() => {});
      return this.grant(runUid, access);
    }
    const applying = this.apply(runUid, access).finally(() => this.inFlight.delete(runUid));
    this.inFlight.set(runUid, applying);
    return applying;
  }

  private async apply(runUid: string, access: StepAccess): Promise<number> {
    if (this.granted.get(runUid) === access) return 0;
    let applied = this.applied.get(runUid);
    if (!applied) this.applied.set(runUid, (applied = new Map<string, string>()));
    const changes = accessChanges(access, applied);
    // The ServiceAccount, then the Roles, then their bindings, as for a step (grantStepAccess); the objects
    // of one kind side by side: a run over many namespaces has a Role and a binding in each.
    for (const kind of ["ServiceAccount", "Role", "RoleBinding"] as const) {
      await mapBounded(
        changes.filter((o) => o.kind === kind),
        ACCESS_APPLIES_IN_FLIGHT,
        async (o) => {
          await this.client.apply(resourceOf(o), o as unknown as KubeObject);
          applied.set(objectKey(o), JSON.stringify(o));
        },
      );
    }
    this.granted.set(runUid, access);
    return changes.length;
  }

  /** Deletes the run's access, the ServiceAccount first (revokeStepAccess), and forgets it. */
  async revoke(runUid: string, access: StepAccess): Promise<void> {
    this.applied.delete(runUid);
    this.granted.delete(runUid);
    const sa = access.serviceAccount.metadata;
    await deleteIfExists(this.client, Resources.ServiceAccount, sa.namespace, sa.name);
    for (const o of [...access.bindings, ...access.roles])
      await deleteIfExists(this.client, resourceOf(o), o.metadata.namespace, o.metadata.name);
  }
}
