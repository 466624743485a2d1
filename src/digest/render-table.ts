// The digest as a kubectl-style table.
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

/** "name" for an object in the VM's own namespace, else "namespace/name". */
function shortRef(ref: string, namespace: string): string {
  return ref.startsWith(`${namespace}/`) ? ref.slice(namespace.length + 1) : ref;
}

/** The cells of one row, in TABLE_COLUMNS order. */
export function tableCells(row: DigestRow, now: number): string[] {
  const node = row.node === undefined ? "-" : row.nodeReady === false ? `${row.node} (NotReady)` : row.node;
  return [
    row.namespace,
    row.name,
    node,
    row.migrating ? `${row.phase} (Migrating)` : row.phase,
    summarizeDisks(row.disks),
    row.lastBackup ? formatAge(row.lastBackup.at, now) : "never",
    row.lastBackup ? shortRef(row.lastBackup.backup, row.namespace) : "-",
    row.lastRestore ? formatAge(row.lastRestore.at, now) : "-",
    String(row.nodeFailures),
  ];
}

/** Columns padded to their widest cell, three spaces apart, one line per row, a trailing newline. */
export function renderTable(rows: readonly DigestRow[], now: number): string {
  const lines: string[][] = [[...TABLE_COLUMNS], ...rows.map((r) => tableCells(r, now))];
  const widths = TABLE_COLUMNS.map((_, i) => lines.reduce((w, cells) => Math.max(w, cells[i]!.length), 0));
  const last = widths.length - 1;
  return lines
    .map((cells) => cells.map((cell, i) => (i === last ? cell : cell.padEnd(widths[i]! + 3))).join(""))
    .join("\n")
    .concat("\n");
}
