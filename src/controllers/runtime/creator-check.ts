// The operator's re-check of the user who created a run, before the run touches anything: the decisions of
// creator-access.ts with the reads and SubjectAccessReviews they need.
import type { KubeClient } from "../../k8s/client.js";
import { AccessResources, refusedNamespaces } from "../../k8s/access-review.js";
import { tryGet } from "./objects.js";
import type { KubeObject } from "../../k8s/types.js";
import {
  accessVerdict,
  ANNOTATION_CREATED_BY,
  CREATOR_POLICY_NAME,
  creatorTrust,
  creatorUnknown,
  foreignNamespaces,
  parseCreator,
  type AccessCheck,
  type CreatorPolicies,
  type PolicyObject,
  type Refusal,
} from "./creator-access.js";

/**
 * Undefined when the run may go ahead: it selects nothing outside its resource's namespace, or the recorded
 * creator (trusted, see creatorTrust) may `check` in every namespace it selects. Otherwise why not, for the
 * run's Failed condition.
 */
export async function checkCreatorAccess(
  client: KubeClient,
  object: KubeObject,
  kind: string,
  namespaces: readonly string[],
  check: AccessCheck,
): Promise<Refusal | undefined> {
  const own = object.metadata.namespace;
  const foreign = foreignNamespaces(own, namespaces);
  if (foreign.length === 0) return undefined;
  const creator = parseCreator(object.metadata.annotations?.[ANNOTATION_CREATED_BY]);
  if ("error" in creator) return creatorUnknown(kind, own, foreign, creator.error);
  const trust = creatorTrust(object.metadata.creationTimestamp, await readCreatorPolicies(client));
  if (!trust.trusted) return creatorUnknown(kind, own, foreign, trust.why);
  const request = { verb: check.verb, group: check.group, resource: check.resource, subresource: check.subresource };
  const refused = await refusedNamespaces(client, creator, request, foreign);
  return accessVerdict(kind, own, creator, check, refused);
}

/** The four admission objects that make the creator annotation trustworthy (see creatorTrust). */
export async function readCreatorPolicies(client: KubeClient): Promise<CreatorPolicies> {
  const get = (type: (typeof AccessResources)[keyof typeof AccessResources]) =>
    tryGet<KubeObject & PolicyObject>(client, type, undefined, CREATOR_POLICY_NAME);
  const [mutatingPolicy, mutatingBinding, validatingPolicy, validatingBinding] = await Promise.all([
    get(AccessResources.MutatingAdmissionPolicy),
    get(AccessResources.MutatingAdmissionPolicyBinding),
    get(AccessResources.ValidatingAdmissionPolicy),
    get(AccessResources.ValidatingAdmissionPolicyBinding),
  ]);
  return { mutatingPolicy, mutatingBinding, validatingPolicy, validatingBinding };
}
