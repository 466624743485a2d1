// Desired objects of a backup run. Same input, same manifest: no timestamps or random names, so a
// restarted operator rebuilds exactly what it created before and "already exists" means "done".
import {
  COMPONENT_AGENT,
  LABEL_BACKUP,
  LABEL_COMPONENT,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_NODE,
  LABEL_ROUND,
} from "../../api/labels.js";
import { parseDuration } from "../../api/duration.js";
import { API_VERSION, type FederatedBackup, type NodeSnapshot } from "../../api/v1alpha1/index.js";
import {
  backupSnapshotsPath,
  claimSnapshotName,
  groupSnapshotName,
  vmGroupSnapshotClass,
  fnv1a32Hex,
  restoredClaimSnapshotName,
  stepName,
  type ObservedWorkload,
  type UnplacedWorkload,
} from "../../planning/index.js";
import { runAgentServiceAccountName, type StepAccessRequest } from "../runtime/agent-access.js";
import {
  agentJobManifest,
  ownerRef,
  type ClaimToMount,
  type JobManifest,
  type OperatorSettings,
} from "../runtime/agent-job.js";
import { locationSourceOf } from "../../storage/location.js";
import { backupDirectory, inlineLocation, type ResolvedLocation } from "./location.js";

export const DEFAULTS = {
  freezeTimeout: "30s",
  maxFreeze: "2m",
  nodeTimeout: "30m",
  nodeBackoffLimit: 2,
  maxRounds: 3,
  lookAhead: 0,
  maxExtractions: 2,
} as const;

function commonLabels(backup: FederatedBackup): Record<string, string> {
  return {
    [LABEL_NAME]: "fedbackup",
    [LABEL_MANAGED_BY]: "fedbackup",
    [LABEL_BACKUP]: backup.metadata.name!,
  };
}

/**
 * Directory of a backup with an inline spec.location, relative to the claim's root. A backup that references
 * a BackupLocation gets its directory from resolveBackupLocation (location.ts).
 */
export function backupPath(backup: FederatedBackup): string {
  return backupDirectory(backup, backup.spec.location?.persistentVolumeClaim?.pathPrefix);
}

/** The location given, or the backup's inline one (a backup with spec.locationRef must be given its resolution). */
function locationOrInline(backup: FederatedBackup, location: ResolvedLocation | undefined): ResolvedLocation {
  const resolved = location ?? inlineLocation(backup);
  if (!resolved) throw new Error(`FederatedBackup ${backup.metadata.name}: its BackupLocation was not resolved`);
  return resolved;
}

export function buildNodeSnapshot(
  backup: FederatedBackup,
  round: number,
  order: number,
  node: string | undefined,
  workloads: ObservedWorkload[],
  unplaced: UnplacedWorkload[] = [],
  location?: ResolvedLocation,
): NodeSnapshot {
  const s = backup.spec;
  const where = locationOrInline(backup, location);
  return {
    apiVersion: API_VERSION,
    kind: "NodeSnapshot",
    metadata: {
      name: stepName(backup.metadata.name!, round, node ?? "unplaced"),
      namespace: backup.metadata.namespace,
      labels: { ...commonLabels(backup), [LABEL_ROUND]: String(round), ...(node ? { [LABEL_NODE]: node } : {}) },
      ownerReferences: [ownerRef(backup)],
    },
    spec: {
      backupName: backup.metadata.name!,
      backupUID: backup.metadata.uid!,
      ...(node ? { node } : {}),
      round,
      order,
      ...(s.sharedVolume
        ? { sharedVolume: { claimName: s.sharedVolume.claimName, nodeMountPath: s.sharedVolume.nodeMountPath } }
        : {}),
      location: { ...where.source, path: where.path },
      snapshot: {
        method: s.snapshot?.method ?? "Auto",
        quiesce: s.snapshot?.quiesce ?? "GuestAgent",
        freezeTimeout: s.snapshot?.freezeTimeout ?? DEFAULTS.freezeTimeout,
        maxFreeze: s.snapshot?.maxFreeze ?? DEFAULTS.maxFreeze,
        ...(s.snapshot?.volumeSnapshotClassName ? { volumeSnapshotClassName: s.snapshot.volumeSnapshotClassName } : {}),
      },
      extractAt: s.extractAt ?? "Backup",
      ...(s.includeSecrets ? { includeSecrets: true } : {}),
      workloads: workloads.map((w) => ({
        namespace: w.namespace,
        name: w.name,
        uid: w.uid,
        files: w.files,
        ...(w.claims?.length ? { claims: w.claims } : {}),
        ...(w.skippedVolumes?.length ? { skippedVolumes: w.skippedVolumes } : {}),
        // What the agent may read for the VM's definition (and store, for Secrets with includeSecrets).
        ...(w.dataVolumes?.length ? { dataVolumes: w.dataVolumes } : {}),
        ...(s.includeSecrets && w.secrets?.length ? { secrets: w.secrets } : {}),
      })),
      ...(unplaced.length
        ? {
            unplaced: unplaced.map((u) => ({
              namespace: u.workload.namespace,
              name: u.workload.name,
              reason: u.reason,
              message: u.message,
              ...(u.lastNode ? { lastNode: u.lastNode } : {}),
            })),
          }
        : {}),
    },
  };
}

// The CSI method (see src/agent/csi.ts): the step's Job takes the VolumeSnapshot `<step>`; the operator then
// restores it into the claim `<step>-snapshot` and runs the Job `<step>-extract` on the same node with that
// claim as the shared volume. All three names derive from the step's, so a restarted operator finds them.
export const volumeSnapshotName = (step: NodeSnapshot): string => step.metadata.name!;
export const restoredClaimName = (step: NodeSnapshot): string => `${step.metadata.name}-snapshot`;
export function extractJobName(step: NodeSnapshot): string {
  const full = `${step.metadata.name}-extract`;
  // A Job name is also a label value (63 characters at most).
  return full.length <= 63 ? full : `${step.metadata.name!.slice(0, 45)}-${fnv1a32Hex(full)}-extract`;
}

/** The claim restored from a CSI step's VolumeSnapshot: like the shared claim, read by one pod on one node. */
export function buildRestoredClaim(
  backup: FederatedBackup,
  step: NodeSnapshot,
  shared: { spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } } },
) {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: restoredClaimName(step),
      namespace: step.metadata.namespace!,
      labels: { ...commonLabels(backup), [LABEL_NODE]: step.spec.node!, [LABEL_ROUND]: String(step.spec.round) },
      ownerReferences: [ownerRef({ apiVersion: API_VERSION, kind: "NodeSnapshot", metadata: step.metadata })],
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      ...(shared.spec?.storageClassName !== undefined ? { storageClassName: shared.spec.storageClassName } : {}),
      resources: { requests: { storage: shared.spec?.resources?.requests?.storage ?? "1Gi" } },
      dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: volumeSnapshotName(step) },
    },
  };
}

/** Whether a step takes VolumeSnapshots (see src/agent/csi.ts): method CSI, or a claim cut with CSI. */
export const usesCsiCut = (step: NodeSnapshot): boolean =>
  step.spec.snapshot.method === "CSI" ||
  (step.spec.workloads ?? []).some((w) => (w.claims ?? []).some((c) => c.snapshotMethod === "CSI"));

type StepWorkload = NonNullable<NodeSnapshot["spec"]["workloads"]>[number];
const csiClaimsOf = (step: NodeSnapshot, w: StepWorkload) =>
  (w.claims ?? []).filter((c) => step.spec.snapshot.method === "CSI" || c.snapshotMethod === "CSI");

/**
 * The VolumeSnapshots of a step's CSI claims, named after the step and the claim (claim-snapshot-names.ts);
 * not those of a VM cut in one VolumeGroupSnapshot, whose members the snapshot controller names.
 */
export const claimSnapshotNames = (step: NodeSnapshot): string[] =>
  (step.spec.workloads ?? []).flatMap((w) => {
    const claims = csiClaimsOf(step, w);
    if (vmGroupSnapshotClass(claims)) return [];
    return claims.map((c) => claimSnapshotName(step.metadata.name!, c.claimName));
  });

/** The VolumeGroupSnapshots of a step's VMs cut in one group (group-snapshot-names.ts), with their claims. */
export const groupSnapshotsOf = (step: NodeSnapshot): Array<{ name: string; claims: string[] }> =>
  (step.spec.workloads ?? []).flatMap((w) => {
    const claims = csiClaimsOf(step, w);
    if (!vmGroupSnapshotClass(claims)) return [];
    return [{ name: groupSnapshotName(step.metadata.name!, w), claims: claims.map((c) => c.claimName) }];
  });

/** A PersistentVolumeClaim, in the fields a claim restored from its snapshot copies. */
export interface SourceClaim {
  spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
  status?: { capacity?: { storage?: string } };
}

/**
 * The claims restored from the VolumeSnapshots of a step's CSI claims (status.claimSnapshots): each of its
 * source's class and size and of its volume mode, read by the extract Job only. `sources` by claim name; a
 * claim whose source is gone is restored at the size its snapshot reports none of, so it is left out.
 */
export function buildRestoredClaimSnapshots(
  backup: FederatedBackup,
  step: NodeSnapshot,
  sources: ReadonlyMap<string, SourceClaim>,
) {
  return (step.status?.claimSnapshots ?? []).flatMap((c) => {
    const source = sources.get(c.claimName);
    if (!source) return [];
    const storage = source.status?.capacity?.storage ?? source.spec?.resources?.requests?.storage ?? "1Gi";
    return [
      {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: {
          name: restoredClaimSnapshotName(c.volumeSnapshot),
          namespace: step.metadata.namespace!,
          labels: { ...commonLabels(backup), [LABEL_NODE]: step.spec.node!, [LABEL_ROUND]: String(step.spec.round) },
          ownerReferences: [ownerRef({ apiVersion: API_VERSION, kind: "NodeSnapshot", metadata: step.metadata })],
        },
        spec: {
          accessModes: ["ReadWriteOnce"],
          volumeMode: c.volumeMode ?? "Filesystem",
          ...(source.spec?.storageClassName !== undefined ? { storageClassName: source.spec.storageClassName } : {}),
          resources: { requests: { storage } },
          dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: c.volumeSnapshot },
        },
      },
    ];
  });
}

/**
 * The second Job of a CSI step: extracts from the restored claims, the shared one mounted where the shared
 * volume goes, each claim's where the step's Job found the claim (under the restored claim's name).
 */
export function buildExtractJob(backup: FederatedBackup, step: NodeSnapshot, settings: OperatorSettings): JobManifest {
  return buildAgentJob(backup, step, settings, {
    name: extractJobName(step),
    ...(step.status?.volumeSnapshot?.name ? { sharedClaim: restoredClaimName(step) } : {}),
    extraArgs: ["--from-snapshot"],
    claims: (step.status?.claimSnapshots ?? []).map((c) => ({
      claimName: restoredClaimSnapshotName(c.volumeSnapshot),
      volumeMode: c.volumeMode ?? "Filesystem",
    })),
  });
}

/** The Job of one step: pinned to its node, mounting the shared volume and the location. */
export function buildAgentJob(
  backup: FederatedBackup,
  step: NodeSnapshot,
  settings: OperatorSettings,
  variant: {
    name?: string;
    sharedClaim?: string;
    extraArgs?: string[];
    claims?: ClaimToMount[];
  } = {},
): JobManifest {
  return agentJobManifest({
    name: variant.name ?? step.metadata.name!,
    namespace: step.metadata.namespace!,
    labels: {
      ...commonLabels(backup),
      [LABEL_COMPONENT]: COMPONENT_AGENT,
      [LABEL_NODE]: step.spec.node!,
      [LABEL_ROUND]: String(step.spec.round),
    },
    owner: ownerRef({ apiVersion: API_VERSION, kind: "NodeSnapshot", metadata: step.metadata }),
    node: step.spec.node!,
    container: "agent",
    args: ["agent", "backup", `--step=${step.metadata.namespace}/${step.metadata.name}`, ...(variant.extraArgs ?? [])],
    backoffLimit: backup.spec.nodeBackoffLimit ?? DEFAULTS.nodeBackoffLimit,
    activeDeadlineSeconds: Math.ceil(parseDuration(backup.spec.nodeTimeout ?? DEFAULTS.nodeTimeout) / 1000),
    // Without a shared volume (VMs on claims only) the Job mounts none.
    ...(variant.sharedClaim || step.spec.sharedVolume
      ? { sharedClaim: variant.sharedClaim ?? step.spec.sharedVolume!.claimName }
      : {}),
    location: locationSourceOf(step.spec.location),
    // The VMs' own claims (always of the step's namespace), read where they are: only by the Job that
    // captures while the guests are frozen, never by a CSI step's extract Job (it reads the snapshot).
    // A claim cut with Reflink is mounted read-write: its clone is made inside it.
    claims:
      variant.claims ??
      (variant.sharedClaim
        ? []
        : (step.spec.workloads ?? []).flatMap((w) =>
            (w.claims ?? []).map((c): ClaimToMount => ({
              claimName: c.claimName,
              volumeMode: c.volumeMode,
              ...(c.snapshotMethod === "Reflink" ? { access: "ReadWrite" as const } : {}),
            })),
          )),
    settings,
    // Every agent of the run runs as the run's ServiceAccount (run-access.ts).
    serviceAccountName: runAgentServiceAccountName({ name: backup.metadata.name!, uid: backup.metadata.uid! }),
  });
}

/**
 * The backup's kept snapshots on the shared volume, relative to its root: keyed by namespace, name and uid
 * (src/planning/shared-volume-layout.ts, the layout the agent writes), so that removing them never touches
 * another backup's.
 */
export const snapshotsPath = (backup: FederatedBackup): string =>
  backupSnapshotsPath({
    namespace: backup.metadata.namespace!,
    name: backup.metadata.name!,
    uid: backup.metadata.uid!,
  });

export const cleanupJobName = (backup: FederatedBackup): string => `${backup.metadata.name}-cleanup`.slice(0, 63);

/**
 * The Job that removes a deleted backup's files (spec.deletionPolicy Delete), on any Ready node, at the
 * location its steps recorded. An S3 location is also passed as --location (JSON of the LocationSource: the
 * bucket and the credentials Secret's name, never its values, which the Job mounts).
 */
export function buildCleanupJob(
  backup: FederatedBackup,
  node: string,
  settings: OperatorSettings,
  location?: ResolvedLocation,
): JobManifest {
  const where = locationOrInline(backup, location);
  return agentJobManifest({
    name: cleanupJobName(backup),
    namespace: backup.metadata.namespace!,
    labels: { ...commonLabels(backup), [LABEL_COMPONENT]: COMPONENT_AGENT, [LABEL_NODE]: node },
    owner: ownerRef(backup),
    node,
    container: "cleanup",
    args: [
      "agent",
      "cleanup",
      `--backup-path=${where.path}`,
      ...(where.source.s3 ? [`--location=${JSON.stringify(where.source)}`] : []),
      ...(backup.spec.sharedVolume ? [`--snapshots-path=${snapshotsPath(backup)}`] : []),
    ],
    backoffLimit: 2,
    activeDeadlineSeconds: 3600,
    ...(backup.spec.sharedVolume ? { sharedClaim: backup.spec.sharedVolume.claimName } : {}),
    location: where.source,
    settings,
  });
}

/** What a step's agent may touch (see runtime/agent-access.ts): its step, its VMs, its VolumeSnapshot. */
export function stepAccessOf(step: NodeSnapshot): StepAccessRequest {
  return {
    kind: "NodeSnapshot",
    step: { namespace: step.metadata.namespace!, name: step.metadata.name!, uid: step.metadata.uid! },
    workloads: (step.spec.workloads ?? []).map((w) => ({
      namespace: w.namespace,
      name: w.name,
      ...(w.dataVolumes?.length ? { dataVolumes: w.dataVolumes } : {}),
      ...(step.spec.includeSecrets && w.secrets?.length ? { secrets: w.secrets } : {}),
    })),
    ...(step.spec.snapshot.method === "CSI" ? { volumeSnapshot: volumeSnapshotName(step) } : {}),
    ...(usesCsiCut(step) ? { claimSnapshots: claimSnapshotNames(step) } : {}),
    ...(usesCsiCut(step) && groupSnapshotsOf(step).length > 0 ? { groupSnapshots: groupSnapshotsOf(step) } : {}),
  };
}
