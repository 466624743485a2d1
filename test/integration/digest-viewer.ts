// A user who may read the digest's objects in one namespace and nothing else: a ServiceAccount with a Role
// to list VMIs and fedbackup's runs and steps there (not Nodes, not claims), and a kubeconfig as it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ResourceType } from "../../src/k8s/resources.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { adminClient } from "./operator-env.js";
import { cluster } from "./setup.js";

const rbacType = (kind: string, plural: string): ResourceType => ({
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced: true,
});

/** Runs `body` with the path of the viewer's kubeconfig; the file is removed after. */
export async function asDigestViewer<T>(ns: string, body: (kubeconfig: string) => Promise<T>): Promise<T> {
  const client = adminClient();
  await client.create(Resources.ServiceAccount, {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { namespace: ns, name: "viewer" },
  });
  await client.create(rbacType("Role", "roles"), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { namespace: ns, name: "digest-viewer" },
    rules: [
      { apiGroups: ["kubevirt.io"], resources: ["virtualmachineinstances"], verbs: ["list"] },
      {
        apiGroups: ["fedbackup.io"],
        resources: ["federatedbackups", "nodesnapshots", "workloadrestores"],
        verbs: ["list"],
      },
    ],
  } as KubeObject);
  await client.create(rbacType("RoleBinding", "rolebindings"), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { namespace: ns, name: "digest-viewer" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "digest-viewer" },
    subjects: [{ kind: "ServiceAccount", name: "viewer", namespace: ns }],
  } as KubeObject);
  const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-digest-viewer-"));
  try {
    const kubeconfig = path.join(dir, "kubeconfig");
    writeFileSync(kubeconfig, await cluster().serviceAccountKubeconfigYaml(ns, "viewer"), { mode: 0o600 });
    return await body(kubeconfig);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
