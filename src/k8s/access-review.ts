// Asking the API server what a user may do (SubjectAccessReview) and reading the admission policies that
// record who created a FederatedBackup or WorkloadRestore.
import type { KubeClient } from "./client.js";
import type { ResourceType } from "./resources.js";
import type { KubeObject } from "./types.js";

const authorization = (plural: string, kind: string): ResourceType => ({
  group: "authorization.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced: false,
});
const admission = (plural: string, kind: string): ResourceType => ({
  group: "admissionregistration.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced: false,
});

export const AccessResources = {
  SubjectAccessReview: authorization("subjectaccessreviews", "SubjectAccessReview"),
  MutatingAdmissionPolicy: admission("mutatingadmissionpolicies", "MutatingAdmissionPolicy"),
  MutatingAdmissionPolicyBinding: admission("mutatingadmissionpolicybindings", "MutatingAdmissionPolicyBinding"),
  ValidatingAdmissionPolicy: admission("validatingadmissionpolicies", "ValidatingAdmissionPolicy"),
  ValidatingAdmissionPolicyBinding: admission("validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding"),
} as const;

/** A user as the API server authenticated them. */
export interface ReviewedUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** What the user would do: a request on a resource, in a namespace (absent: in every namespace). */
export interface ResourceAttributes {
  namespace?: string;
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** One object by name (absent: any object). */
  name?: string;
}

interface SubjectAccessReview extends KubeObject {
  spec: ReviewedUser & { user: string; resourceAttributes: ResourceAttributes };
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/** Whether the authorizers of the API server allow `user` the request (a SubjectAccessReview). */
export async function mayUser(
  client: KubeClient,
  user: ReviewedUser,
  attributes: ResourceAttributes,
): Promise<boolean> {
  const review = await client.create<SubjectAccessReview>(AccessResources.SubjectAccessReview, {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    metadata: {},
    spec: {
      user: user.username,
      ...(user.uid ? { uid: user.uid } : {}),
      ...(user.groups?.length ? { groups: user.groups } : {}),
      ...(user.extra && Object.keys(user.extra).length ? { extra: user.extra } : {}),
      resourceAttributes: {
        ...(attributes.namespace ? { namespace: attributes.namespace } : {}),
        verb: attributes.verb,
        group: attributes.group,
        resource: attributes.resource,
        ...(attributes.subresource ? { subresource: attributes.subresource } : {}),
        ...(attributes.name ? { name: attributes.name } : {}),
      },
    } as SubjectAccessReview["spec"],
  });
  return review.status?.allowed === true && review.status.denied !== true;
}

/**
 * The namespaces of `namespaces` in which `user` may not make the request. One review for every namespace at
 * once first (a cluster-wide grant answers for all), then one per namespace.
 */
export async function refusedNamespaces(
  client: KubeClient,
  user: ReviewedUser,
  request: Omit<ResourceAttributes, "namespace">,
  namespaces: readonly string[],
): Promise<string[]> {
  if (namespaces.length === 0 || (await mayUser(client, user, request))) return [];
  const refused: string[] = [];
  for (const namespace of namespaces) {
    if (!(await mayUser(client, user, { ...request, namespace }))) refused.push(namespace);
  }
  return refused;
}

interface SelfSubjectAccessReview extends KubeObject {
  spec: { resourceAttributes: ResourceAttributes };
  status?: { allowed?: boolean; denied?: boolean };
}

const SelfSubjectAccessReviews: ResourceType = authorization("selfsubjectaccessreviews", "SelfSubjectAccessReview");

/** Whether the authorizers allow this client's own identity the request (a SelfSubjectAccessReview). */
export async function mayI(client: KubeClient, attributes: ResourceAttributes): Promise<boolean> {
  const review = await client.create<SelfSubjectAccessReview>(SelfSubjectAccessReviews, {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectAccessReview",
    metadata: {},
    spec: { resourceAttributes: { ...attributes } },
  });
  return review.status?.allowed === true && review.status.denied !== true;
}
