// What the objects of one backup at its location are, by their key relative to the backup's directory
// (the layout of src/storage/layout.ts), so that the demo can say what a bucket listing holds.
import { DEFINITION_FILE, SECRETS_FILE } from "../../src/storage/layout.js";

export type BackupObjectKind =
  | "VM manifest"
  | "disk image"
  | "block disk"
  | "claim disk"
  | "definition"
  | "Secrets file"
  | "node manifest"
  | "other";

/** The kind of the object at `key`, relative to the backup's directory; anything not in the layout is "other". */
export function backupObjectKind(key: string): BackupObjectKind {
  const parts = key.split("/");
  if (parts.length === 2 && parts[0] === "nodes" && parts[1]!.endsWith(".json")) return "node manifest";
  if (parts.length < 3 || parts.some((p) => p === "")) return "other";
  const [, , entry, ...rest] = parts;
  if (rest.length === 0) {
    if (entry === "manifest.json") return "VM manifest";
    if (entry === DEFINITION_FILE) return "definition";
    if (entry === SECRETS_FILE) return "Secrets file";
    return "other";
  }
  if (entry === "files") return "disk image";
  if (entry === "devices" && rest.length === 1) return "block disk";
  if (entry === "claims" && rest.length === 2 && rest[1] === "disk.img") return "claim disk";
  return "other";
}

/** How many objects of each kind the keys hold, in the order each kind is first seen; "other" last. */
export function countBackupObjects(keys: readonly string[]): Array<[BackupObjectKind, number]> {
  const counts = new Map<BackupObjectKind, number>();
  for (const key of keys) {
    const kind = backupObjectKind(key);
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const other = counts.get("other");
  counts.delete("other");
  return [...counts.entries(), ...(other ? [["other", other] as [BackupObjectKind, number]] : [])];
}
