// Every capture of every VM, indexed once by "namespace/name": how many backups hold one, and the latest.
import { LABEL_BACKUP } from "../api/labels.js";
import { compareStrings } from "../planning/index.js";
import { firstTime } from "./timestamps.js";
import { vmKey, type DigestBackup, type DigestStep, type DigestStepWorkload, type LastBackup } from "./types.js";

export interface CaptureSummary {
  /** Shared by every VM the same step captured: copy it before handing it out. */
  last: LastBackup;
  /** last.at in epoch milliseconds. */
  lastMs: number;
  /** The backups ("namespace/name") holding a capture. */
  backups: Set<string>;
  /** The latest capturing step's spec.workloads[] entry for the VM (its files and claims), when it has one. */
  workload?: DigestStepWorkload;
}

/** The FederatedBackup a step belongs to: spec.backupName, else its fedbackup.io/backup label. */
export function backupNameOf(step: DigestStep): string | undefined {
  return step.spec?.backupName || step.metadata.labels?.[LABEL_BACKUP] || undefined;
}

/**
 * When a step's captures happened: the step's completionTime, else its backup's completionTime, else the
 * step's startTime, else its creationTimestamp, else `now` (a capture no clock has stamped yet is one being
 * recorded right now).
 */
export function captureTime(
  step: DigestStep,
  backup: DigestBackup | undefined,
  now: number,
): { at: string; ms: number } {
  return (
    firstTime([
      step.status?.completionTime,
      backup?.status?.completionTime,
      step.status?.startTime,
      step.metadata.creationTimestamp,
    ]) ?? { at: new Date(now).toISOString(), ms: now }
  );
}

/**
 * What a captured[] entry says of the VM's definition: its boolean, or undefined for anything else (absent
 * in captures recorded before the field existed; never trusted to be of the right type).
 */
export function capturedDefinition(entry: { definition?: unknown }): boolean | undefined {
  return typeof entry.definition === "boolean" ? entry.definition : undefined;
}

/** Whether capture a is more recent than b: later time, then later round, then the greater backup name. */
function isLater(a: { ms: number; last: LastBackup }, b: CaptureSummary): boolean {
  if (a.ms !== b.lastMs) return a.ms > b.lastMs;
  if (a.last.round !== b.last.round) return a.last.round > b.last.round;
  return compareStrings(a.last.backup, b.last.backup) > 0;
}

/** A step's spec.workloads[] by "namespace/name"; the first entry wins (the operator lists a VM once). */
function workloadsByKey(step: DigestStep): Map<string, DigestStepWorkload> {
  const byKey = new Map<string, DigestStepWorkload>();
  for (const w of step.spec?.workloads ?? []) {
    const key = vmKey(w.namespace, w.name);
    if (!byKey.has(key)) byKey.set(key, w);
  }
  return byKey;
}

/** Indexes the captured[] entries of all steps. Steps that name no backup are ignored. */
export function indexCaptures(
  backups: readonly DigestBackup[],
  steps: readonly DigestStep[],
  now: number,
): Map<string, CaptureSummary> {
  const backupsByKey = new Map<string, DigestBackup>();
  for (const b of backups) backupsByKey.set(vmKey(b.metadata.namespace ?? "", b.metadata.name ?? ""), b);

  const index = new Map<string, CaptureSummary>();
  for (const step of steps) {
    const captured = step.status?.captured;
    const backupName = backupNameOf(step);
    if (!captured?.length || !backupName) continue;
    const backup = vmKey(step.metadata.namespace ?? "", backupName);
    const { at, ms } = captureTime(step, backupsByKey.get(backup), now);
    const candidate = { ms, last: { backup, at, node: step.spec?.node ?? "", round: step.spec?.round ?? 1 } };
    const workloads = workloadsByKey(step);
    for (const c of captured) {
      const key = vmKey(c.namespace, c.name);
      const workload = workloads.get(key);
      const definition = capturedDefinition(c);
      const last = definition === undefined ? candidate.last : { ...candidate.last, definition };
      const summary = index.get(key);
      if (!summary) {
        index.set(key, {
          last,
          lastMs: ms,
          backups: new Set([backup]),
          ...(workload ? { workload } : {}),
        });
        continue;
      }
      summary.backups.add(backup);
      if (isLater(candidate, summary)) {
        summary.last = last;
        summary.lastMs = ms;
        if (workload) summary.workload = workload;
        else delete summary.workload;
      }
    }
  }
  return index;
}
