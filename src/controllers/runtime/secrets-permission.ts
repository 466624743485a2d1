// A backup with includeSecrets needs two permissions it would otherwise only discover as a Forbidden on the
// step's agent Role (retried for ever): the operator must hold `get` on Secrets to grant it (RBAC's
// escalation check; the chart grants it only with backup.includeSecrets), and a creator reaching into other
// namespaces must be allowed to read their Secrets (else the location would hand them Secrets they cannot
// read). Both are checked when the run is New, before anything is touched, and fail it with a reason.
import type { KubeClient } from "../../k8s/client.js";
import { mayI } from "../../k8s/access-review.js";
import type { AccessCheck } from "./creator-access.js";

export const SECRETS_NOT_PERMITTED = "SecretsNotPermitted";

/** What the creator of a run with includeSecrets must be allowed in every other namespace it selects. */
export const SECRETS_ACCESS: AccessCheck = {
  verb: "get",
  group: "",
  resource: "secrets",
  what: "read Secrets (get secrets), which includeSecrets stores at the backup location,",
};

/** The Failed reason when the operator may not read Secrets in every namespace (a cluster-wide grant first). */
export async function operatorSecretsRefusal(
  client: KubeClient,
  namespaces: readonly string[],
): Promise<{ reason: string; message: string } | undefined> {
  const request = { verb: "get", group: "", resource: "secrets" };
  if (await mayI(client, request)) return undefined;
  const refused: string[] = [];
  for (const namespace of [...new Set(namespaces)].sort()) {
    if (!(await mayI(client, { ...request, namespace }))) refused.push(namespace);
  }
  if (refused.length === 0) return undefined;
  return {
    reason: SECRETS_NOT_PERMITTED,
    message:
      `spec.includeSecrets is true, but the operator may not read Secrets (get secrets) in ${refused.join(", ")}, ` +
      "so it cannot grant that to the backup's agents. Install the chart with backup.includeSecrets=true (or grant " +
      "the operator get on secrets), or back up without includeSecrets. Nothing was touched.",
  };
}
