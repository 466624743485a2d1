// A VM's disk layout as the digest shows it: hostDisk files on the shared volume, PersistentVolumeClaims
// and DataVolumes with their volume mode. In a cluster holding both layouts this tells which VMs depend on
// the shared volume and which on their own claims (what a backup captures, and how).
import type { DigestClaim, DigestDisk, DigestStepWorkload, DigestVmi } from "./types.js";
import { vmKey } from "./types.js";

type VolumeMode = NonNullable<DigestDisk["volumeMode"]>;

/** The volume mode of each claim ("namespace/name"), as the claims say; Filesystem when they say nothing. */
export function indexClaimModes(claims: readonly DigestClaim[]): Map<string, VolumeMode> {
  const modes = new Map<string, VolumeMode>();
  for (const c of claims) {
    const mode = c.spec?.volumeMode === "Block" ? "Block" : "Filesystem";
    modes.set(vmKey(c.metadata.namespace ?? "", c.metadata.name ?? ""), mode);
  }
  return modes;
}

/**
 * The disks a capture recorded: the step's workloads[] entry for the VM. Its files are the VM's own files on
 * the shared volume (its hostDisks and any extra file), so each is a "file" without a volume name.
 */
export function capturedDisks(entry: DigestStepWorkload | undefined): DigestDisk[] {
  if (!entry) return [];
  const files = (entry.files ?? []).map((file): DigestDisk => ({ type: "file", file }));
  const claims = (entry.claims ?? []).map((c): DigestDisk => ({
    volume: c.volume,
    type: c.sourceKind === "DataVolume" ? "dataVolume" : "persistentVolumeClaim",
    claim: c.claimName,
    ...(c.volumeMode === "Block" || c.volumeMode === "Filesystem" ? { volumeMode: c.volumeMode } : {}),
  }));
  return [...files, ...claims];
}

/**
 * The data disks of a VMI's spec.volumes, in spec order (the other volumes, containerDisk, cloudInit…,
 * are never backed up and not shown). A claim's volume mode comes from the claim itself when the claims
 * could be read (`claimModes`), else from the VM's last capture, else it is left out. A DataVolume's claim
 * has the DataVolume's name. Names are shown as the spec gives them: the digest only prints them.
 */
export function vmiDisks(
  vmi: DigestVmi,
  claimModes: ReadonlyMap<string, VolumeMode> | undefined,
  captured: DigestStepWorkload | undefined,
): DigestDisk[] {
  const namespace = vmi.metadata.namespace ?? "";
  const disks: DigestDisk[] = [];
  for (const v of vmi.spec?.volumes ?? []) {
    const volume = typeof v.name === "string" ? v.name : "";
    if (v.hostDisk) {
      disks.push({ volume, type: "hostDisk" });
      continue;
    }
    const type = v.persistentVolumeClaim ? "persistentVolumeClaim" : v.dataVolume ? "dataVolume" : undefined;
    if (!type) continue;
    const claim = (type === "dataVolume" ? v.dataVolume?.name : v.persistentVolumeClaim?.claimName) ?? "";
    const mode =
      claimModes?.get(vmKey(namespace, claim)) ??
      captured?.claims?.find((c) => c.volume === volume && c.claimName === claim)?.volumeMode;
    disks.push({
      volume,
      type,
      claim,
      ...(mode === "Block" || mode === "Filesystem" ? { volumeMode: mode } : {}),
    });
  }
  return disks;
}

/** One disk in a few words: "hostDisk", "file", "claim (Block)", "dataVolume (Filesystem)", "claim". */
export function diskLabel(disk: DigestDisk): string {
  if (disk.type === "hostDisk" || disk.type === "file") return disk.type;
  const kind = disk.type === "dataVolume" ? "dataVolume" : "claim";
  return disk.volumeMode ? `${kind} (${disk.volumeMode})` : kind;
}

/** The layout in one cell: each label once, in first-seen order, "2× " before it when repeated; "-" for none. */
export function summarizeDisks(disks: readonly DigestDisk[]): string {
  const counts = new Map<string, number>();
  for (const d of disks) {
    const label = diskLabel(d);
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  if (counts.size === 0) return "-";
  return [...counts].map(([label, n]) => (n > 1 ? `${n}× ${label}` : label)).join(", ");
}

/** What --disks takes: the kinds of disk a VM may have. */
export const DISK_KINDS = ["hostDisk", "claim", "dataVolume", "Filesystem", "Block"] as const;
export type DiskKind = (typeof DISK_KINDS)[number];

/**
 * Parses "claim,hostDisk" (case-insensitive, comma-separated) into kinds; throws on an unknown kind or an
 * empty list.
 */
export function parseDiskKinds(text: string): DiskKind[] {
  const kinds: DiskKind[] = [];
  for (const part of text.split(",")) {
    const word = part.trim().toLowerCase();
    const kind = DISK_KINDS.find((k) => k.toLowerCase() === word);
    if (!kind) {
      throw new Error(
        `unknown disk kind ${JSON.stringify(part.trim())}: use ${DISK_KINDS.join(", ")} (several separated by commas)`,
      );
    }
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}

/**
 * Whether a disk is of a kind: hostDisk (a hostDisk volume, or a file a capture recorded from the shared
 * volume), claim (a PersistentVolumeClaim or a DataVolume), dataVolume, or a claim in Filesystem or Block
 * volume mode.
 */
export function isDiskOfKind(disk: DigestDisk, kind: DiskKind): boolean {
  switch (kind) {
    case "hostDisk":
      return disk.type === "hostDisk" || disk.type === "file";
    case "claim":
      return disk.type === "persistentVolumeClaim" || disk.type === "dataVolume";
    case "dataVolume":
      return disk.type === "dataVolume";
    case "Filesystem":
    case "Block":
      return disk.volumeMode === kind;
  }
}
