// Grants a step's agent its access right before its Job starts and takes it back once the step is over
// (see agent-access.ts for what is granted). Both are idempotent: a restarted operator does them again.
import type { KubeClient } from "../../k8s/client.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import { buildStepAccess, type StepAccessRequest } from "./agent-access.js";
import { deleteIfExists } from "./objects.js";

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
