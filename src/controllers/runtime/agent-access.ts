// What a node agent may do: granted per step and taken back when the step ends (a restore's NodeRestores,
// buildStepAccess), or per run, for all its steps at once, and taken back when the run ends (a backup's
// NodeSnapshots, buildRunAccess: a 1,000-node backup would otherwise create and delete thousands of
// objects, three requests or more before each step's Job).
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

const union = (lists: ReadonlyArray<readonly string[] | undefined>): string[] =>
  [...new Set(lists.flatMap((l) => l ?? []))].sort();

/**
 * What the agents of `reqs` (steps of one kind, in one namespace, in a stable order) may do in that
 * namespace, by name.
 */
function stepRules(kind: StepKind, reqs: readonly StepAccessRequest[]): Rule[] {
  const plural = kind === "NodeSnapshot" ? "nodesnapshots" : "noderestores";
  const own = reqs.map((r) => r.step.name);
  const rules: Rule[] = [
    { apiGroups: ["fedbackup.io"], resources: [plural], verbs: ["get"], resourceNames: own },
    { apiGroups: ["fedbackup.io"], resources: [`${plural}/status`], verbs: ["patch"], resourceNames: own },
  ];
  const snapshots = reqs.flatMap((r) => [...(r.volumeSnapshot ? [r.volumeSnapshot] : []), ...(r.claimSnapshots ?? [])]);
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
  const groups = reqs.flatMap((r) => r.groupSnapshots ?? []);
  if (groups.length > 0) {
    const claims = union(groups.map((g) => g.claims));
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

  const roles = [role(step.namespace, saName, stepRules(req.kind, [req]))];
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

/**
 * The agents of one run's steps (a backup's node steps), granted as one: one ServiceAccount for every
 * Job of the run, in its namespace, and one Role per namespace naming the union of what the run's steps
 * touch there. Granted once before the run's first Job and grown (a Role update) when a later round adds
 * steps, instead of three objects or more created and deleted around every step; deleted when the run
 * ends. An agent can therefore reach its run's other steps and VMs, never another run's.
 */
export interface RunAccessRequest {
  /** The run: it owns the objects in its namespace, so they go with it if the operator never deletes them. */
  run: { apiVersion: string; kind: string; namespace: string; name: string; uid: string };
  /** The run's steps, all in the run's namespace, of one kind. */
  steps: readonly StepAccessRequest[];
  /**
   * The Leases the agents wait for their turn on (pipelined steps watch them by name): get, list and watch
   * on exactly these, in their namespace (the operator's).
   */
  turnLeases?: { namespace: string; names: readonly string[] };
}

/** The ServiceAccount of every agent of the run (also the name of its Roles and RoleBindings there). */
export function runAgentServiceAccountName(run: { name: string; uid: string }): string {
  // The uid tells a run from an earlier one of the same name whose objects may still be going away;
  // "fedbackup-run-agent-" is no step's prefix, so no step's ServiceAccount can have this name.
  return bounded(`fedbackup-run-agent-${run.name}-${run.uid.slice(0, 8)}`);
}

/** The ServiceAccount, Roles and RoleBindings of one run's agents. Same input (in any order), same objects. */
export function buildRunAccess(req: RunAccessRequest): StepAccess {
  const { run } = req;
  const kind: StepKind = req.steps[0]?.kind ?? "NodeSnapshot";
  const steps = [...req.steps].sort((a, b) => (a.step.name < b.step.name ? -1 : a.step.name > b.step.name ? 1 : 0));
  const saName = runAgentServiceAccountName(run);
  const foreign = bounded(`fedbackup-run-agent.${run.namespace}.${run.name}-${run.uid.slice(0, 8)}`);
  const labels = {
    [LABEL_NAME]: "fedbackup",
    [LABEL_MANAGED_BY]: "fedbackup",
    [LABEL_COMPONENT]: COMPONENT_AGENT_ACCESS,
  };
  const annotations = { "fedbackup.io/run": `${run.kind}/${run.namespace}/${run.name}` };
  const ownerReferences = [
    { apiVersion: run.apiVersion, kind: run.kind, name: run.name, uid: run.uid, blockOwnerDeletion: false },
  ];
  const meta = (namespace: string, name: string) => ({
    name,
    namespace,
    labels,
    annotations,
    ...(namespace === run.namespace ? { ownerReferences } : {}),
  });
  const subject = { kind: "ServiceAccount", name: saName, namespace: run.namespace };
  const roles: AccessObject[] = [];
  const bindings: AccessObject[] = [];
  const grant = (namespace: string, name: string, rules: Rule[]) => {
    roles.push({ apiVersion: RBAC, kind: "Role", metadata: meta(namespace, name), rules });
    bindings.push({
      apiVersion: RBAC,
      kind: "RoleBinding",
      metadata: meta(namespace, name),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [subject],
    });
  };
  grant(run.namespace, saName, stepRules(kind, steps));
  for (const [namespace, names] of grouped(steps.flatMap((s) => s.workloads))) {
    grant(namespace, namespace === run.namespace ? `${saName}-workloads` : foreign, workloadRules(kind, names));
  }
  const leases = req.turnLeases;
  if (leases && leases.names.length > 0) {
    const rules: Rule[] = [
      {
        apiGroups: ["coordination.k8s.io"],
        resources: ["leases"],
        // list and watch by name: the agent watches each Lease with fieldSelector metadata.name=<name>.
        verbs: ["get", "list", "watch"],
        resourceNames: union([leases.names]),
      },
    ];
    grant(leases.namespace, bounded(`${leases.namespace === run.namespace ? saName : foreign}-leases`), rules);
  }
  return {
    serviceAccount: { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(run.namespace, saName) },
    roles,
    bindings,
  };
}
