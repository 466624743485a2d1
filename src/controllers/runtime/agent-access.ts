// What a node agent may do, granted per step and taken back when the step ends.
//
// Each step (NodeSnapshot or NodeRestore) gets a ServiceAccount of its own, and Roles that name exactly
// the objects its agent touches: its own step object (read it, report into its status), the step's
// VolumeSnapshot (CSI method), and in each namespace whose VMs it handles, those VMs' instances (read; and
// for a backup, freeze and thaw). A backup's agent also reads, by name, what each VM's definition needs:
// its VirtualMachine, the standalone DataVolumes the step names for it, and only when the backup has
// includeSecrets the Secrets the step names for it. Nothing is granted on a ClusterRole or without resourceNames, except the
// creation of the step's VolumeSnapshot (and VolumeGroupSnapshots), which RBAC cannot narrow by name (the
// name does not exist yet), and the list of the step namespace's VolumeSnapshots for a step that takes a
// VolumeGroupSnapshot: its members are named by the snapshot controller, and found by their owner.
// An agent token therefore cannot reach another step, another run's snapshot or another VM, and once the
// step is over the ServiceAccount, Roles and RoleBindings are deleted (tokens of a deleted ServiceAccount
// stop authenticating as soon as the API server's cache sees the deletion).
//
// The operator may create these Roles only because it holds every permission they grant (RBAC's
// escalation check); it has no `bind` or `escalate` right.
import { LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_NAME } from "../../api/labels.js";
import { fnv1a32Hex } from "../../planning/index.js";

export type StepKind = "NodeSnapshot" | "NodeRestore";

export interface StepAccessRequest {
  kind: StepKind;
  step: { namespace: string; name: string; uid: string };
  /**
   * The VMs the agent reads (and, for a backup, freezes and thaws), with, for a backup, the DataVolumes and
   * Secrets it reads for each VM's definition (Secrets only with includeSecrets).
   */
  workloads: readonly {
    namespace: string;
    name: string;
    dataVolumes?: readonly string[];
    secrets?: readonly string[];
  }[];
  /** The VolumeSnapshot the agent creates and reads (CSI method); named after the step. */
  volumeSnapshot?: string;
  /** The VolumeSnapshots of the step's claims cut with CSI, which the agent creates and reads. */
  claimSnapshots?: readonly string[];
  /**
   * The VolumeGroupSnapshots of the step's VMs cut in one group, with the claims the agent labels for each
   * (all in the step's namespace).
   */
  groupSnapshots?: readonly { name: string; claims: readonly string[] }[];
}

const RBAC = "rbac.authorization.k8s.io/v1";
export const COMPONENT_AGENT_ACCESS = "agent-access";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface AccessObject {
  apiVersion: string;
  kind: "ServiceAccount" | "Role" | "RoleBinding";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Record<string, unknown>[];
  };
  [field: string]: unknown;
}

/** Where each granted object lives: everything needed to delete them all again. */
export interface StepAccess {
  serviceAccount: AccessObject;
  roles: AccessObject[];
  bindings: AccessObject[];
}

// Names are DNS subdomains (253); a hash of the full name keeps a shortened one unique.
function bounded(name: string, max = 253): string {
  return name.length <= max ? name : `${name.slice(0, max - 9)}-${fnv1a32Hex(name)}`;
}

/** The step's agent ServiceAccount, in the step's namespace (also the name of its Role and RoleBinding there). */
export function agentServiceAccountName(step: { name: string }): string {
  return bounded(`fedbackup-agent-${step.name}`);
}

// In another namespace the step's namespace is part of the name: two runs of one name in two namespaces may
// hold VMs of one third namespace at once. Namespaces have no dots, so "<ns>.<step>" is unambiguous.
function foreignName(step: { namespace: string; name: string }): string {
  return bounded(`fedbackup-agent.${step.namespace}.${step.name}`);
}

/** What the agent touches in one namespace: VMs, and for their definitions DataVolumes and Secrets. */
interface NamespaceNames {
  vms: string[];
  dataVolumes: string[];
  secrets: string[];
}

function grouped(workloads: StepAccessRequest["workloads"]): Map<string, NamespaceNames> {
  const byNamespace = new Map<string, { vms: Set<string>; dataVolumes: Set<string>; secrets: Set<string> }>();
  for (const w of workloads) {
    let names = byNamespace.get(w.namespace);
    if (!names) byNamespace.set(w.namespace, (names = { vms: new Set(), dataVolumes: new Set(), secrets: new Set() }));
    names.vms.add(w.name);
    for (const dv of w.dataVolumes ?? []) names.dataVolumes.add(dv);
    for (const secret of w.secrets ?? []) names.secrets.add(secret);
  }
  const sorted = (names: Set<string>) => [...names].sort();
  return new Map(
    [...byNamespace.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([ns, names]) => [
        ns,
        { vms: sorted(names.vms), dataVolumes: sorted(names.dataVolumes), secrets: sorted(names.secrets) },
      ]),
  );
}

function stepRules(req: StepAccessRequest): Rule[] {
  const plural = req.kind === "NodeSnapshot" ? "nodesnapshots" : "noderestores";
  const own = [req.step.name];
  const rules: Rule[] = [
    { apiGroups: ["fedbackup.io"], resources: [plural], verbs: ["get"], resourceNames: own },
    { apiGroups: ["fedbackup.io"], resources: [`${plural}/status`], verbs: ["patch"], resourceNames: own },
  ];
  const snapshots = [...(req.volumeSnapshot ? [req.volumeSnapshot] : []), ...(req.claimSnapshots ?? [])];
  if (snapshots.length > 0) {
    rules.push(
      // create cannot be limited by name in RBAC; the agent creates only the ones named after its step.
      { apiGroups: ["snapshot.storage.k8s.io"], resources: ["volumesnapshots"], verbs: ["create"] },
      {
        apiGroups: ["snapshot.storage.k8s.io"],
        resources: ["volumesnapshots"],
        verbs: ["get", "delete"],
        resourceNames: snapshots,
      },
    );
  }
  const groups = req.groupSnapshots ?? [];
  if (groups.length > 0) {
    const claims = [...new Set(groups.flatMap((g) => g.claims))].sort();
    rules.push(
      { apiGroups: ["groupsnapshot.storage.k8s.io"], resources: ["volumegroupsnapshots"], verbs: ["create"] },
      {
        apiGroups: ["groupsnapshot.storage.k8s.io"],
        resources: ["volumegroupsnapshots"],
        verbs: ["get", "delete"],
        resourceNames: groups.map((g) => g.name),
      },
      // The members: named by the snapshot controller, found among the namespace's by their owner.
      { apiGroups: ["snapshot.storage.k8s.io"], resources: ["volumesnapshots"], verbs: ["list"] },
      // The label the group selects them by (csi-group.ts), put on and taken off.
      { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["patch"], resourceNames: claims },
    );
  }
  return rules;
}

function workloadRules(kind: StepKind, names: NamespaceNames): Rule[] {
  const rules: Rule[] = [
    { apiGroups: ["kubevirt.io"], resources: ["virtualmachineinstances"], verbs: ["get"], resourceNames: names.vms },
  ];
  if (kind === "NodeSnapshot") {
    rules.push(
      {
        apiGroups: ["subresources.kubevirt.io"],
        resources: ["virtualmachineinstances/freeze", "virtualmachineinstances/unfreeze"],
        verbs: ["update"],
        resourceNames: names.vms,
      },
      // The VMs' definitions (agent/definition-capture.ts).
      { apiGroups: ["kubevirt.io"], resources: ["virtualmachines"], verbs: ["get"], resourceNames: names.vms },
    );
    if (names.dataVolumes.length > 0) {
      rules.push({
        apiGroups: ["cdi.kubevirt.io"],
        resources: ["datavolumes"],
        verbs: ["get"],
        resourceNames: names.dataVolumes,
      });
    }
    // Named in the step only for a backup with includeSecrets (federatedbackup/builders.ts).
    if (names.secrets.length > 0) {
      rules.push({ apiGroups: [""], resources: ["secrets"], verbs: ["get"], resourceNames: names.secrets });
    }
  }
  return rules;
}

/** The ServiceAccount, Roles and RoleBindings of one step's agent. Same input, same objects. */
export function buildStepAccess(req: StepAccessRequest): StepAccess {
  const { step } = req;
  const saName = agentServiceAccountName(step);
  const labels = {
    [LABEL_NAME]: "fedbackup",
    [LABEL_MANAGED_BY]: "fedbackup",
    [LABEL_COMPONENT]: COMPONENT_AGENT_ACCESS,
  };
  const annotations = { "fedbackup.io/step": `${req.kind}/${step.namespace}/${step.name}` };
  // Objects in the step's namespace go with the step if the operator never gets to delete them.
  const ownerReferences = [
    { apiVersion: "fedbackup.io/v1alpha1", kind: req.kind, name: step.name, uid: step.uid, blockOwnerDeletion: false },
  ];
  const subject = { kind: "ServiceAccount", name: saName, namespace: step.namespace };
  const role = (namespace: string, name: string, rules: Rule[]): AccessObject => ({
    apiVersion: RBAC,
    kind: "Role",
    metadata: { name, namespace, labels, annotations, ...(namespace === step.namespace ? { ownerReferences } : {}) },
    rules,
  });
  const binding = (namespace: string, name: string): AccessObject => ({
    apiVersion: RBAC,
    kind: "RoleBinding",
    metadata: { name, namespace, labels, annotations, ...(namespace === step.namespace ? { ownerReferences } : {}) },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
    subjects: [subject],
  });

  const roles = [role(step.namespace, saName, stepRules(req))];
  const bindings = [binding(step.namespace, saName)];
  for (const [namespace, names] of grouped(req.workloads)) {
    const name = namespace === step.namespace ? `${saName}-workloads` : foreignName(step);
    roles.push(role(namespace, bounded(name), workloadRules(req.kind, names)));
    bindings.push(binding(namespace, bounded(name)));
  }
  return {
    serviceAccount: {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: saName, namespace: step.namespace, labels, annotations, ownerReferences },
    },
    roles,
    bindings,
  };
}
