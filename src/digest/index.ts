// The workload digest: where every VM is, in what state, and when it was last backed up or restored.
// Pure: plain objects in, rows out; the CLI (src/cli/digest.ts) does the reading and the printing.
export { buildDigest } from "./build-digest.js";
export { backupNameOf, captureTime, capturedDefinition, indexCaptures } from "./capture-index.js";
export type { CaptureSummary } from "./capture-index.js";
export {
  capturedDisks,
  DISK_KINDS,
  diskLabel,
  indexClaimModes,
  isDiskOfKind,
  parseDiskKinds,
  summarizeDisks,
  vmiDisks,
} from "./disks.js";
export type { DiskKind } from "./disks.js";
export { filterDigest } from "./filter-digest.js";
export { formatAge } from "./format-age.js";
export { DELETED_PHASE, existingVms, MISSING_PHASE, phaseWithoutVmi } from "./gone-phase.js";
export { matchesRequirements, parseLabelSelector } from "./label-selector.js";
export type { Requirement } from "./label-selector.js";
export { countFailedSteps } from "./node-failures.js";
export { parseWhen } from "./parse-when.js";
export {
  deletedTableCells,
  DELETED_TABLE_COLUMNS,
  renderDeletedTable,
  renderTable,
  tableCells,
  TABLE_COLUMNS,
} from "./render-table.js";
export { indexRestores } from "./restore-index.js";
export type { RestoreSummary } from "./restore-index.js";
export { parseTime } from "./timestamps.js";
export type {
  DigestBackup,
  DigestClaim,
  DigestCriteria,
  DigestDisk,
  DigestInput,
  DigestNode,
  DigestRestore,
  DigestRow,
  DigestStep,
  DigestStepWorkload,
  DigestVm,
  DigestVmi,
  DigestVolume,
  LastBackup,
  LastRestore,
} from "./types.js";
export { vmKey } from "./types.js";
export { readyNodes, vmiState } from "./vmi-state.js";
export type { VmiState } from "./vmi-state.js";
