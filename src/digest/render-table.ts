// The digest as a kubectl-style table: the cluster's VMs, or (--deleted) the VMs that exist only in backups.
import { summarizeDisks } from "./disks.js";
import { formatAge } from "./format-age.js";
import type { DigestRow } from "./types.js";

export const TABLE_COLUMNS = [
  "NAMESPACE",
  "NAME",
  "NODE",
  "PHASE",
  "DISKS",
  "LAST BACKUP",
  "BACKUP",
  "LAST RESTORE",
  "FAILURES",
] as const;

/**
 * The columns for deleted VMs: no node, phase or failures (they run nowhere), but the node of the last
 * capture and whether it carries the VM's definition (what a restore needs to re-create the VM).
 */
export const DELETED_TABLE_COLUMNS = [
  "NAMESPACE",
  "NAME",
  "DISKS",
  "LAST BACKUP",
  "BACKUP",
  "CAPTURED ON",
  "DEFINITION",
  "LAST RESTORE",
] as const;

/** "name" for an object in the VM's own namespace, else "namespace/name". */
function shortRef(ref: string, namespace: string): string {
  return ref.startsWith(`${namespace}/`) ? ref.slice(namespace.length + 1) : ref;
}

const lastBackupAge = (row: DigestRow, now: number): string =>
  row.lastBackup ? formatAge(row.lastBackup.at, now) : "never";
const lastBackupRef = (row: DigestRow): string =>
  row.lastBackup ? shortRef(row.lastBackup.backup, row.namespace) : "-";
const lastRestoreAge = (row: DigestRow, now: number): string =>
  row.lastRestore ? formatAge(row.lastRestore.at, now) : "-";

/** The cells of one row, in TABLE_COLUMNS order. */
export function tableCells(row: DigestRow, now: number): string[] {
  const node = row.node === undefined ? "-" : row.nodeReady === false ? `${row.node} (NotReady)` : row.node;
  return [
    row.namespace,
    row.name,
    node,
    row.migrating ? `${row.phase} (Migrating)` : row.phase,
    summarizeDisks(row.disks),
    lastBackupAge(row, now),
    lastBackupRef(row),
    lastRestoreAge(row, now),
    String(row.nodeFailures),
  ];
}

/**
 * The cells of a deleted VM's row, in DELETED_TABLE_COLUMNS order. DEFINITION is "yes" only when the last
 * capture says it carries the definition; "-" without a capture.
 */
export function deletedTableCells(row: DigestRow, now: number): string[] {
  const last = row.lastBackup;
  return [
    row.namespace,
    row.name,
    summarizeDisks(row.disks),
    lastBackupAge(row, now),
    lastBackupRef(row),
    last ? last.node || "-" : "-",
    last ? (last.definition === true ? "yes" : "no") : "-",
    lastRestoreAge(row, now),
  ];
}

/** Columns padded to their widest cell, three spaces apart, one line per row, a trailing newline. */
function layout(header: readonly string[], rows: readonly string[][]): string {
  const lines: readonly (readonly string[])[] = [header, ...rows];
  const widths = header.map((_, i) => lines.reduce((w, cells) => Math.max(w, cells[i]!.length), 0));
  const last = widths.length - 1;
  return lines
    .map((cells) => cells.map((cell, i) => (i === last ? cell : cell.padEnd(widths[i]! + 3))).join(""))
    .join("\n")
    .concat("\n");
}

/** The cluster's VMs as a table. */
export function renderTable(rows: readonly DigestRow[], now: number): string {
  return layout(
    TABLE_COLUMNS,
    rows.map((r) => tableCells(r, now)),
  );
}

/** Deleted VMs as a table, with DELETED_TABLE_COLUMNS. */
export function renderDeletedTable(rows: readonly DigestRow[], now: number): string {
  return layout(
    DELETED_TABLE_COLUMNS,
    rows.map((r) => deletedTableCells(r, now)),
  );
}
