// The phases in which a run (FederatedBackup or WorkloadRestore) is over: one list for every reader.

/** A run in one of these phases does no more work. */
export const FINISHED_PHASES = ["Completed", "PartiallyFailed", "Failed"] as const;

export type FinishedPhase = (typeof FINISHED_PHASES)[number];

export const isFinished = (phase: string | undefined): boolean =>
  (FINISHED_PHASES as readonly string[]).includes(phase ?? "");

/** A backup in one of these phases holds captures a restore can use. */
export const RESTORABLE_BACKUP_PHASES = ["Completed", "PartiallyFailed"] as const;

export const isRestorable = (phase: string | undefined): boolean =>
  (RESTORABLE_BACKUP_PHASES as readonly string[]).includes(phase ?? "");
