// Installs the operator's RBAC from deploy/rbac.yaml, as `kubectl apply -f deploy/rbac.yaml` would.
import { readFileSync } from "node:fs";
import path from "node:path";
import * as yaml from "js-yaml";
import type { KubeClient } from "../../src/k8s/client.js";
import { Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { REPO_ROOT } from "./binaries.js";

const rbac = (plural: string, kind: string, namespaced: boolean): ResourceType => ({
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced,
});

const TYPES: Record<string, ResourceType> = {
  Namespace: Resources.Namespace,
  ServiceAccount: Resources.ServiceAccount,
  ClusterRole: rbac("clusterroles", "ClusterRole", false),
  ClusterRoleBinding: rbac("clusterrolebindings", "ClusterRoleBinding", false),
  Role: rbac("roles", "Role", true),
  RoleBinding: Resources.RoleBinding,
};

export async function applyOperatorRbac(client: KubeClient): Promise<void> {
  for (const doc of yaml.loadAll(readFileSync(path.join(REPO_ROOT, "deploy/rbac.yaml"), "utf8")) as KubeObject[]) {
    const type = TYPES[doc.kind!];
    if (!type) throw new Error(`deploy/rbac.yaml: unexpected kind ${doc.kind}`);
    await client.apply(type, doc);
  }
}
