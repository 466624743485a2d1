// Literal cluster objects for the digest tests: each test states only the fields it is about.
import type {
  DigestBackup,
  DigestNode,
  DigestRestore,
  DigestStep,
  DigestStepWorkload,
  DigestVm,
  DigestVmi,
  DigestVolume,
} from "../../../src/digest/index.js";

export const NOW = Date.parse("2025-06-01T12:00:00Z");
/** An ISO timestamp `hours` before NOW. */
export const hoursAgo = (hours: number): string => new Date(NOW - hours * 3_600_000).toISOString();

function split(key: string): { namespace: string; name: string } {
  const [namespace = "", name = ""] = key.split("/");
  return { namespace, name };
}

export function vmi(
  key: string,
  fields: {
    node?: string;
    phase?: string;
    labels?: Record<string, string>;
    migratingTo?: string;
    volumes?: DigestVolume[];
  } = {},
): DigestVmi {
  const phase = fields.phase ?? (fields.node ? "Running" : "Pending");
  return {
    metadata: { ...split(key), labels: fields.labels ?? { app: "demo" } },
    ...(fields.volumes ? { spec: { volumes: fields.volumes } } : {}),
    status: {
      phase,
      ...(fields.node ? { nodeName: fields.node } : {}),
      ...(fields.migratingTo ? { migrationState: { targetNode: fields.migratingTo } } : {}),
    },
  };
}

/** A VirtualMachine: only its name matters to the digest. */
export function vm(key: string): DigestVm {
  return { metadata: split(key) };
}

export function backup(key: string, completionTime?: string): DigestBackup {
  return { metadata: split(key), status: completionTime ? { completionTime } : {} };
}

export interface StepFields {
  /** The backup's name (same namespace as the step). */
  backup: string;
  node?: string;
  round?: number;
  phase?: string;
  completionTime?: string;
  startTime?: string;
  creationTimestamp?: string;
  /** "namespace/name" of each captured VM. */
  captured?: string[];
  /** Name the backup only in the fedbackup.io/backup label, not in spec.backupName. */
  labelOnly?: boolean;
  /** spec.workloads: the VMs the step was asked to capture, with their files and claims. */
  workloads?: DigestStepWorkload[];
  /** status.captured[].definition by "namespace/name" (any value: the digest must not trust its type). */
  definitions?: Record<string, unknown>;
}

export function step(key: string, f: StepFields): DigestStep {
  const { namespace, name } = split(key);
  return {
    metadata: {
      namespace,
      name,
      labels: { "app.kubernetes.io/managed-by": "fedbackup", "fedbackup.io/backup": f.backup },
      ...(f.creationTimestamp ? { creationTimestamp: f.creationTimestamp } : {}),
    },
    spec: {
      ...(f.labelOnly ? {} : { backupName: f.backup }),
      ...(f.node ? { node: f.node } : {}),
      round: f.round ?? 1,
      ...(f.workloads ? { workloads: f.workloads } : {}),
    },
    status: {
      phase: f.phase ?? "Succeeded",
      ...(f.startTime ? { startTime: f.startTime } : {}),
      ...(f.completionTime ? { completionTime: f.completionTime } : {}),
      captured: (f.captured ?? []).map((key) => ({
        ...split(key),
        ...(f.definitions && key in f.definitions ? { definition: f.definitions[key] } : {}),
      })),
    },
  };
}

export function restore(
  key: string,
  f: { completionTime?: string; startTime?: string; results: Array<{ vm: string; phase?: string; node?: string }> },
): DigestRestore {
  return {
    metadata: split(key),
    status: {
      ...(f.completionTime ? { completionTime: f.completionTime } : {}),
      ...(f.startTime ? { startTime: f.startTime } : {}),
      results: f.results.map((r) => ({
        ...split(r.vm),
        phase: r.phase ?? "Restored",
        ...(r.node ? { node: r.node } : {}),
      })),
    },
  };
}

export function node(name: string, ready = true): DigestNode {
  return { metadata: { name }, status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] } };
}
