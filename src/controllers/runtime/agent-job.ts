// What every agent Job shares, whichever controller makes it: how the operator is told to run agent pods
// (the chart's agent.* values), the owner reference, and the Job manifest pinned to a node with the shared
// volume and the location mounted.
import {
  AGENT_CLAIM_DEVICES,
  AGENT_CLAIMS_MOUNT,
  AGENT_LOCATION_MOUNT,
  AGENT_S3_CREDENTIALS_MOUNT,
  AGENT_SHARED_MOUNT,
} from "../../api/labels.js";
import type { LocationSource } from "../../storage/location.js";

/**
 * Where and how agent pods run (the chart's `agent.*` values, passed as the JSON of `FEDBACKUP_AGENT_JOB`). Each
 * field left out keeps the built-in default; `tolerations` replaces the default "tolerate every taint".
 */
export interface AgentJobSettings {
  imagePullSecrets?: { name: string }[];
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  priorityClassName?: string;
}

export interface OperatorSettings {
  /** Image of the node agent (the operator's own image). */
  agentImage: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  agentJob?: AgentJobSettings;
}

/**
 * Reads `FEDBACKUP_AGENT_JOB` (JSON: imagePullPolicy and the fields of AgentJobSettings), as the chart sets it.
 * Unknown keys and wrong types are refused, so that a typo does not silently drop a setting.
 */
export function parseAgentJobSettings(
  text: string | undefined,
): Pick<OperatorSettings, "imagePullPolicy" | "agentJob"> {
  if (text === undefined || text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`FEDBACKUP_AGENT_JOB is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(value)) throw new Error("FEDBACKUP_AGENT_JOB must be a JSON object");
  const { imagePullPolicy, imagePullSecrets, nodeSelector, tolerations, resources, priorityClassName, ...unknown } =
    value;
  const bad = (key: string, what: string) => new Error(`FEDBACKUP_AGENT_JOB.${key} must be ${what}`);
  if (Object.keys(unknown).length)
    throw new Error(`FEDBACKUP_AGENT_JOB: unknown key ${Object.keys(unknown).join(", ")}`);
  if (imagePullPolicy !== undefined && !["Always", "IfNotPresent", "Never"].includes(imagePullPolicy as string))
    throw bad("imagePullPolicy", "Always, IfNotPresent or Never");
  if (
    imagePullSecrets !== undefined &&
    !(Array.isArray(imagePullSecrets) && imagePullSecrets.every((s) => isObject(s) && typeof s.name === "string"))
  )
    throw bad("imagePullSecrets", "a list of {name}");
  if (
    nodeSelector !== undefined &&
    !(isObject(nodeSelector) && Object.values(nodeSelector).every((v) => typeof v === "string"))
  )
    throw bad("nodeSelector", "a map of strings");
  if (tolerations !== undefined && !(Array.isArray(tolerations) && tolerations.every(isObject)))
    throw bad("tolerations", "a list of objects");
  if (resources !== undefined && !isObject(resources)) throw bad("resources", "an object");
  if (priorityClassName !== undefined && typeof priorityClassName !== "string")
    throw bad("priorityClassName", "a string");
  const agentJob: AgentJobSettings = {
    ...(imagePullSecrets !== undefined
      ? { imagePullSecrets: imagePullSecrets as AgentJobSettings["imagePullSecrets"] }
      : {}),
    ...(nodeSelector !== undefined ? { nodeSelector: nodeSelector as Record<string, string> } : {}),
    ...(tolerations !== undefined ? { tolerations: tolerations } : {}),
    ...(resources !== undefined ? { resources: resources } : {}),
    ...(priorityClassName ? { priorityClassName: priorityClassName } : {}),
  };
  return {
    ...(imagePullPolicy !== undefined
      ? { imagePullPolicy: imagePullPolicy as OperatorSettings["imagePullPolicy"] }
      : {}),
    agentJob,
  };
}

export function ownerRef(o: { apiVersion: string; kind: string; metadata: { name?: string; uid?: string } }) {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name!,
    uid: o.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export interface JobManifest {
  apiVersion: "batch/v1";
  kind: "Job";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: ReturnType<typeof ownerRef>[];
  };
  spec: Record<string, unknown>;
}

/**
 * Every agent container sees the shared volume and the location at the same paths; a run without a shared
 * volume (VMs on claims only) mounts the location alone.
 */
const agentMounts = (shared: boolean, location: LocationSource) => [
  ...(shared ? [{ name: "shared", mountPath: AGENT_SHARED_MOUNT }] : []),
  ...(location.persistentVolumeClaim ? [{ name: "location", mountPath: AGENT_LOCATION_MOUNT }] : []),
  ...(location.s3 ? [{ name: "location-credentials", mountPath: AGENT_S3_CREDENTIALS_MOUNT, readOnly: true }] : []),
];

// An S3 location's key pair reaches the agent only as this Secret's files: never in a spec, an argument or
// the environment (which `kubectl describe` and crash reports show).
const agentVolumes = (sharedClaim: string | undefined, location: LocationSource) => [
  ...(sharedClaim ? [{ name: "shared", persistentVolumeClaim: { claimName: sharedClaim } }] : []),
  ...(location.persistentVolumeClaim
    ? [{ name: "location", persistentVolumeClaim: { claimName: location.persistentVolumeClaim.claimName } }]
    : []),
  ...(location.s3
    ? [
        {
          name: "location-credentials",
          secret: { secretName: location.s3.credentialsSecretRef.name, defaultMode: 0o400 },
        },
      ]
    : []),
];

/** What every agent Job shares: pinned to a node, the agent's ServiceAccount, its volumes mounted. */
export function agentJobManifest(p: {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  owner: ReturnType<typeof ownerRef>;
  node: string;
  container: string;
  args: string[];
  backoffLimit: number;
  activeDeadlineSeconds: number;
  /** The shared volume's claim; none for a run without one. */
  sharedClaim?: string;
  /** Where the backups are: its claim is mounted, or its S3 credentials Secret. */
  location: LocationSource;
  settings: OperatorSettings;
  /** The step's own ServiceAccount (see runtime/agent-access.ts); none for a Job that needs no API access. */
  serviceAccountName?: string;
  /** Claims of the Job's namespace whose disks the agent reads or, for a restore, writes (see claimVolumes). */
  claims?: readonly { claimName: string; volumeMode: "Filesystem" | "Block" }[];
  /** ReadOnly (the default) for a backup, which never writes to a VM's disk; ReadWrite for a restore. */
  claimAccess?: ClaimAccess;
}): JobManifest {
  const job = p.settings.agentJob ?? {};
  const claims = claimVolumes(p.claims ?? [], p.claimAccess);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels, ownerReferences: [p.owner] },
    spec: {
      backoffLimit: p.backoffLimit,
      activeDeadlineSeconds: p.activeDeadlineSeconds,
      template: {
        metadata: { labels: p.labels },
        spec: {
          nodeName: p.node,
          restartPolicy: "Never",
          // With root and three file capabilities from the runtime's default set, the pod meets the Pod
          // Security Standard "baseline" (not "restricted", which forbids running as root): see the README.
          securityContext: { seccompProfile: { type: "RuntimeDefault" } },
          ...(p.serviceAccountName
            ? { serviceAccountName: p.serviceAccountName }
            : { automountServiceAccountToken: false }),
          // Pinned by nodeName, so the scheduler is not involved; still tolerate taints so a cordoned
          // or tainted node can be backed up. A nodeSelector is checked by the kubelet: a node that does
          // not match refuses the pod.
          tolerations: job.tolerations ?? [{ operator: "Exists" }],
          ...(job.nodeSelector && Object.keys(job.nodeSelector).length ? { nodeSelector: job.nodeSelector } : {}),
          ...(job.imagePullSecrets?.length ? { imagePullSecrets: job.imagePullSecrets } : {}),
          ...(job.priorityClassName ? { priorityClassName: job.priorityClassName } : {}),
          containers: [
            {
              name: p.container,
              image: p.settings.agentImage,
              imagePullPolicy: p.settings.imagePullPolicy ?? "IfNotPresent",
              args: p.args,
              env: [{ name: "FEDBACKUP_NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
              volumeMounts: [...agentMounts(!!p.sharedClaim, p.location), ...claims.mounts],
              ...(claims.devices.length ? { volumeDevices: claims.devices } : {}),
              resources: job.resources ?? { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } },
              // VM disk images belong to the hypervisor's user (qemu) and restores must keep their owner
              // and mode: the agent runs as root, with no other privilege.
              securityContext: {
                runAsUser: 0,
                runAsNonRoot: false,
                allowPrivilegeEscalation: false,
                seccompProfile: { type: "RuntimeDefault" },
                capabilities: { drop: ["ALL"], add: ["CHOWN", "DAC_OVERRIDE", "FOWNER"] },
              },
            },
          ],
          volumes: [...agentVolumes(p.sharedClaim, p.location), ...claims.volumes],
        },
      },
    },
  };
}

export type ClaimAccess = "ReadOnly" | "ReadWrite";

/** A claim the agent mounts; `access` overrides the Job's claimAccess for it. */
export interface ClaimToMount {
  claimName: string;
  volumeMode: "Filesystem" | "Block";
  access?: ClaimAccess;
}

/**
 * The pod volumes for the VMs' claims, each once: a Filesystem-mode claim mounted at AGENT_CLAIMS_MOUNT/<claim>
 * (its disk.img inside), a Block-mode claim attached at AGENT_CLAIM_DEVICES/<claim>. Volume names are by
 * position (claim names may be longer than a volume name may be). Read-only unless asked: capturing never
 * writes to a VM's disk, and a read-only claim keeps a bug from doing so. A claim cut with Reflink is the
 * exception (its access ReadWrite): the clone of its disk.img is made inside it, next to the image.
 */
export function claimVolumes(claims: readonly ClaimToMount[], access: ClaimAccess = "ReadOnly") {
  const unique = [...new Map(claims.map((c) => [c.claimName, c])).values()].sort((a, b) =>
    a.claimName < b.claimName ? -1 : a.claimName > b.claimName ? 1 : 0,
  );
  const named = unique.map((c, i) => ({ ...c, volume: `claim-${i}`, readOnly: (c.access ?? access) === "ReadOnly" }));
  return {
    volumes: named.map((c) => ({
      name: c.volume,
      persistentVolumeClaim: { claimName: c.claimName, ...(c.readOnly ? { readOnly: true } : {}) },
    })),
    mounts: named
      .filter((c) => c.volumeMode === "Filesystem")
      .map((c) => ({
        name: c.volume,
        mountPath: `${AGENT_CLAIMS_MOUNT}/${c.claimName}`,
        ...(c.readOnly ? { readOnly: true } : {}),
      })),
    devices: named
      .filter((c) => c.volumeMode === "Block")
      .map((c) => ({ name: c.volume, devicePath: `${AGENT_CLAIM_DEVICES}/${c.claimName}` })),
  };
}
