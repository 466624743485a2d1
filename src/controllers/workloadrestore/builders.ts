// Desired objects of a restore run: the node steps (NodeRestores), their Jobs and the live migrations.
// Same input, same manifest, so a restarted operator rebuilds exactly what it created before.
import {
  COMPONENT_AGENT,
  LABEL_COMPONENT,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_NODE,
  LABEL_RESTORE,
} from "../../api/labels.js";
import { parseDuration } from "../../api/duration.js";
import type { VirtualMachineInstanceMigration } from "../../api/kubevirt.js";
import {
  API_VERSION,
  type NodeRestore,
  type NodeRestoreSpecWorkloadClaim,
  type WorkloadRestore,
} from "../../api/v1alpha1/index.js";
import { fnv1a32Hex, type PlannedClaim, type WorkloadRef } from "../../planning/index.js";
import { agentJobManifest, ownerRef, type JobManifest, type OperatorSettings } from "../runtime/agent-job.js";
import { agentServiceAccountName, type StepAccessRequest } from "../runtime/agent-access.js";
import { HOSTNAME_LABEL } from "./vm-hold.js";
import type { ResolvedWorkload } from "./resolve.js";
import type { CreatedDisks } from "./created-disks.js";
import type { PlanEntry } from "./status.js";
import { locationSourceOf } from "../../storage/location.js";

export const RESTORE_DEFAULTS = { nodeTimeout: "30m", jobBackoffLimit: 1 } as const;

export const restoreOwnerId = (r: WorkloadRestore): string =>
  `WorkloadRestore/${r.metadata.namespace}/${r.metadata.name}/${r.metadata.uid}`;

const labelsOf = (restore: WorkloadRestore): Record<string, string> => ({
  [LABEL_NAME]: "fedbackup",
  [LABEL_MANAGED_BY]: "fedbackup",
  [LABEL_RESTORE]: restore.metadata.name!,
});

/** A readable name of at most 63 characters (Job names are label values too), unique through a hash. */
function boundedName(readable: string, unique: string): string {
  if (readable.length <= 63) return readable;
  return `${readable.slice(0, 54).replace(/[-.]+$/, "")}-${fnv1a32Hex(unique)}`;
}

export const nodeRestoreName = (restore: WorkloadRestore, node: string): string =>
  boundedName(`${restore.metadata.name}-${node}`, `${restore.metadata.name}\n${node}`);

export const migrationName = (restore: WorkloadRestore, vm: WorkloadRef): string =>
  boundedName(`${restore.metadata.name}-${vm.name}`, `${restore.metadata.uid}\n${vm.namespace}/${vm.name}`);

/**
 * What each VM may be restored to, by "namespace/name": its own files and its own claims, or for a VM the
 * restore creates, the disks it is created with.
 */
export interface OwnedDisks {
  files: ReadonlyMap<string, readonly string[]>;
  claims: ReadonlyMap<string, readonly PlannedClaim[]>;
  created: ReadonlyMap<string, CreatedDisks>;
}

/** The step of one restore node, with its VMs in plan order. */
export function buildNodeRestore(
  restore: WorkloadRestore,
  order: number,
  node: string,
  entries: readonly PlanEntry[],
  resolved: ReadonlyMap<string, ResolvedWorkload>,
  owned: OwnedDisks,
): NodeRestore {
  const first = resolved.get(`${entries[0]!.namespace}/${entries[0]!.name}`)!;
  return {
    apiVersion: API_VERSION,
    kind: "NodeRestore",
    metadata: {
      name: nodeRestoreName(restore, node),
      namespace: restore.metadata.namespace,
      labels: { ...labelsOf(restore), [LABEL_NODE]: node },
      ownerReferences: [ownerRef(restore)],
    },
    spec: {
      restoreName: restore.metadata.name!,
      restoreUID: restore.metadata.uid!,
      node,
      order,
      ...(first.sharedClaim
        ? {
            sharedVolume: {
              claimName: first.sharedClaim,
              ...(first.nodeMountPath ? { nodeMountPath: first.nodeMountPath } : {}),
            },
          }
        : {}),
      location: first.location,
      workloads: entries.map((e) => {
        const key = `${e.namespace}/${e.name}`;
        const w = resolved.get(key)!;
        const created = owned.created.get(key);
        return {
          namespace: e.namespace,
          name: e.name,
          backup: e.backup,
          backupPath: w.backupPath,
          files: created ? [...created.files] : [...(owned.files.get(key) ?? [])],
          ...(created ? claimsOf(created.claims) : claimsOf(owned.claims.get(key))),
          ...(w.source ? { source: { namespace: w.source.namespace, name: w.source.name } } : {}),
          ...(created?.renamedFiles.length ? { renamedFiles: created.renamedFiles.map((r) => ({ ...r })) } : {}),
          ...(e.definition ? { definition: e.definition } : {}),
          // Reported whenever the backup has one: Keep says in the results whether the VM still matches it.
          ...(w.capture.definition ? { reportDefinition: true } : {}),
          action: e.action as NodeRestore["spec"]["workloads"][number]["action"],
          ...(e.activeNode ? { activeNode: e.activeNode } : {}),
          ...(e.group ? { group: e.group } : {}),
        };
      }),
    },
  };
}

// Only VMs with claims carry the field, so that the steps of hostDisk VMs stay as they were.
const claimsOf = (claims: readonly (PlannedClaim | NodeRestoreSpecWorkloadClaim)[] | undefined) =>
  claims?.length ? { claims: claims.map((c) => structuredClone(c)) } : {};

/**
 * The restore Job of a step: the node agent writes the VMs' disks back on the step's node, with their
 * claims mounted read-write (it writes them) and attached where a backup Job has them.
 */
export function buildRestoreJob(restore: WorkloadRestore, step: NodeRestore, settings: OperatorSettings): JobManifest {
  return agentJobManifest({
    name: step.metadata.name!,
    namespace: step.metadata.namespace!,
    labels: { ...labelsOf(restore), [LABEL_COMPONENT]: COMPONENT_AGENT, [LABEL_NODE]: step.spec.node },
    owner: ownerRef({ apiVersion: API_VERSION, kind: "NodeRestore", metadata: step.metadata }),
    node: step.spec.node,
    container: "agent",
    args: ["agent", "restore", `--step=${step.metadata.namespace}/${step.metadata.name}`],
    backoffLimit: RESTORE_DEFAULTS.jobBackoffLimit,
    activeDeadlineSeconds: Math.ceil(parseDuration(restore.spec.nodeTimeout ?? RESTORE_DEFAULTS.nodeTimeout) / 1000),
    ...(step.spec.sharedVolume ? { sharedClaim: step.spec.sharedVolume.claimName } : {}),
    location: locationSourceOf(step.spec.location),
    settings,
    serviceAccountName: agentServiceAccountName(step.metadata as { name: string }),
    claims: step.spec.workloads.flatMap((w) => w.claims ?? []),
    claimAccess: "ReadWrite",
  });
}

/** What a restore step's agent may touch (see runtime/agent-access.ts): its step and its VMs' instances. */
export function stepAccessOf(step: NodeRestore): StepAccessRequest {
  return {
    kind: "NodeRestore",
    step: { namespace: step.metadata.namespace!, name: step.metadata.name!, uid: step.metadata.uid! },
    workloads: step.spec.workloads.map((w) => ({ namespace: w.namespace, name: w.name })),
  };
}

/** A live migration of the VM to its restore node (addedNodeSelector narrows KubeVirt's choice to it). */
export function buildMigration(
  restore: WorkloadRestore,
  vm: WorkloadRef,
  node: string,
): VirtualMachineInstanceMigration & { metadata: { labels: Record<string, string> } } {
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachineInstanceMigration",
    metadata: {
      name: migrationName(restore, vm),
      namespace: vm.namespace,
      labels: { ...labelsOf(restore), [LABEL_NODE]: node },
      // An owner must live in the same namespace; elsewhere the label finds it.
      ...(vm.namespace === restore.metadata.namespace ? { ownerReferences: [ownerRef(restore)] } : {}),
    },
    spec: { vmiName: vm.name, addedNodeSelector: { [HOSTNAME_LABEL]: node } },
  };
}
