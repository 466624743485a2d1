// What a VM's disks are: the hostDisk files on the shared volume, the PersistentVolumeClaims it names
// directly or through a CDI DataVolume, and the volumes that are not data at all.
//
// A VM's spec is written by a tenant: every name in it is input to check, not to pass on. A claim name
// becomes a pod volume's claimName, a path segment at the backup location and part of object names, so
// only a DNS-1123 label is accepted (lower-case alphanumerics and '-', at most 63 characters, starting and
// ending with an alphanumeric): the strictest of the places it goes to, and what CDI requires of a
// DataVolume's name. A claim Kubernetes accepts but that is not a label (a name with a '.') is refused
// with InvalidVolume, saying so, rather than mangled.
//
// How the reasons relate to discovery.ts's NoSharedDisk: in the hostDisk-only world (no claim support)
// a VM without a file on the shared volume is NoSharedDisk, as today. Once claims are considered the same
// situation is NoDataDisk: the VM has neither a hostDisk file on the shared volume nor a claim, so there
// is nothing to capture in either layout. `noDiskReason` picks one; the step that wires this module in
// decides when the switch happens (and whether NoSharedDisk then stays only for backups without claims).
import type { VmiVolume } from "../api/kubevirt.js";
import { compareStrings } from "./compare.js";
import type { FileOwnership } from "./file-ownership.js";
import { describeFileProblem } from "./file-ownership.js";
import type { ClaimDisk, ClaimSource, HostDiskDisk, ObservedClaim, SkippedVolume, VmDisk } from "./disks.js";
import type { WorkloadRef } from "./types.js";
import { workloadKey } from "./types.js";

export type { ClaimDisk, ClaimSource, HostDiskDisk, ObservedClaim, SkippedVolume, VmDisk } from "./disks.js";

/** Why a VM's disks keep it out of the backup. */
export type VmDiskReason =
  "InvalidVolume" | "SharedFile" | "UnsafeFile" | "ClaimNotFound" | "ClaimNotBound" | "NoDataDisk" | "NoSharedDisk";

/** The order in which the reasons are checked; a VM with several problems is missing for the first. */
export const VM_DISK_REASON_ORDER: readonly VmDiskReason[] = [
  "InvalidVolume",
  "SharedFile",
  "UnsafeFile",
  "ClaimNotFound",
  "ClaimNotBound",
  "NoDataDisk",
  "NoSharedDisk",
];

export interface VmDiskProblem {
  reason: VmDiskReason;
  /** The volume concerned, when one is. */
  volume?: string;
  /** The claim concerned, when one is. */
  claim?: string;
  /** One line naming the volume and the claim (or the path), without the VM. */
  detail: string;
}

export interface VmDisks {
  workload: WorkloadRef;
  /** hostDisks by path, then claims by name. */
  disks: VmDisk[];
  /** Sorted by volume name. */
  skipped: SkippedVolume[];
  /** The VM's own files on the shared volume (its hostDisks and extra files), as file-ownership.ts decided. */
  sharedFiles: string[];
  /** Every problem found, in the check order, then by volume and detail. Empty when the VM can be captured. */
  problems: VmDiskProblem[];
  /** The reason the VM is missing (the first problem's), with a message naming the VM; absent when none. */
  missing?: { reason: VmDiskReason; message: string };
}

/** What the VM sees of the shared volume; absent when the backup has none. */
export interface SharedVolumeView {
  /** A hostDisk path relative to the shared volume's mount, or undefined when it lies elsewhere. */
  relativePath: (hostDiskPath: string) => string | undefined;
  /** This VM's result of resolveFileOwnership over every VM of the cluster. */
  ownership: FileOwnership;
}

export interface VmDiskInput {
  workload: WorkloadRef;
  /** The VMI's spec.volumes (or a stopped VM's template's). */
  volumes: readonly VmiVolume[];
  /** The claims of the VM's namespace (others are never looked at: a VM can name only its own namespace's). */
  claims: readonly ObservedClaim[];
  sharedVolume?: SharedVolumeView;
  /**
   * Whether claims count as data disks. false is the hostDisk-only world: claim volumes are listed as
   * skipped (type persistentVolumeClaim / dataVolume) and a VM without a shared file is NoSharedDisk.
   * Default true.
   */
  claimsSupported?: boolean;
}

/** NoSharedDisk in the hostDisk-only world, NoDataDisk once claims count (see the top of this file). */
export function noDiskReason(claimsSupported: boolean): "NoDataDisk" | "NoSharedDisk" {
  return claimsSupported ? "NoDataDisk" : "NoSharedDisk";
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A DNS-1123 label: what a claim name must be to be passed on (see the top of this file). */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

// The source fields that are not data, in the order KubeVirt documents them.
const NOT_DATA = [
  "containerDisk",
  "cloudInitNoCloud",
  "cloudInitConfigDrive",
  "emptyDisk",
  "ephemeral",
  "configMap",
  "secret",
  "serviceAccount",
  "downwardAPI",
  "downwardMetrics",
  "sysprep",
  "memoryDump",
] as const;
const DATA = ["hostDisk", "persistentVolumeClaim", "dataVolume"] as const;

/**
 * Classifies each of a VM's volumes and decides whether the VM can be captured. The checks, in order
 * (VM_DISK_REASON_ORDER; every problem is listed, the VM is missing for the first):
 *
 * 1. InvalidVolume: a volume without a name, with more than one source, or naming a claim or DataVolume
 *    that is not a DNS label. Hostile or broken input that no retry changes; nothing of it is passed on.
 * 2. SharedFile / UnsafeFile: a path on the shared volume that is not the VM's own, as file-ownership.ts
 *    decided (the same check discovery.ts makes today).
 * 3. ClaimNotFound: a claim (or a DataVolume's claim) that does not exist in the VM's namespace.
 * 4. ClaimNotBound: a claim that exists but is not Bound (Pending, Lost). It may bind later, so it comes
 *    after the problems that are final.
 * 5. NoDataDisk (NoSharedDisk without claim support): nothing to capture, neither a hostDisk file on the
 *    shared volume nor a claim. A hostDisk elsewhere on the node is listed but is not capturable.
 *
 * A volume with an unknown source (a newer KubeVirt's) is skipped under its field name, so the manifest
 * says it was left out. A claim named by several volumes, or by a persistentVolumeClaim volume and a
 * dataVolume volume alike, is one disk. Volumes listed twice under one name are classified each time (an
 * admitted VMI never has them): both sources are seen, nothing is dropped silently.
 */
export function classifyVmDisks(input: VmDiskInput): VmDisks {
  const claimsSupported = input.claimsSupported ?? true;
  const claimsByName = new Map<string, ObservedClaim>();
  for (const c of input.claims) if (!claimsByName.has(c.name)) claimsByName.set(c.name, c);

  const problems: VmDiskProblem[] = [];
  const hostDisks = new Map<string, HostDiskDisk>();
  const claims = new Map<string, ClaimDisk>();
  const skipped = new Map<string, SkippedVolume>();
  const problemPaths = new Set<string>();
  const ownership = input.sharedVolume?.ownership;
  for (const p of ownership?.problems ?? []) {
    problems.push({ reason: p.reason, detail: describeFileProblem(p) });
    problemPaths.add(p.path);
  }
  const ownFiles = new Set(ownership?.files ?? []);

  for (const volume of input.volumes) {
    const name = typeof volume.name === "string" ? volume.name : "";
    const record = volume as unknown as Record<string, unknown>;
    const sources = Object.keys(record).filter((k) => k !== "name" && record[k] !== undefined && record[k] !== null);
    if (name === "") {
      problems.push({
        reason: "InvalidVolume",
        detail: `a volume has no name (sources: ${sources.join(", ") || "none"})`,
      });
      continue;
    }
    if (sources.length > 1) {
      problems.push({
        reason: "InvalidVolume",
        volume: name,
        detail: `volume ${quote(name)} has more than one source (${sources.sort().join(", ")})`,
      });
      continue;
    }
    const type = sources[0] ?? "none";
    if (!(DATA as readonly string[]).includes(type) || (!claimsSupported && type !== "hostDisk")) {
      skipped.set(`${name}\0${type}`, { volume: name, type });
      continue;
    }
    if (type === "hostDisk") {
      const path = volume.hostDisk?.path;
      if (typeof path !== "string" || path === "") {
        problems.push({ reason: "InvalidVolume", volume: name, detail: `hostDisk volume ${quote(name)} has no path` });
        continue;
      }
      const rel = input.sharedVolume?.relativePath(path);
      const disk = hostDisks.get(path) ?? { kind: "hostDisk" as const, volumes: [], path };
      if (rel !== undefined && ownFiles.has(rel)) disk.sharedPath = rel;
      else if (rel !== undefined && !problemPaths.has(rel)) {
        // On the shared volume, but the ownership given does not mention it: never assume it is the VM's.
        problems.push({
          reason: "UnsafeFile",
          volume: name,
          detail: `${rel}: the ownership of the shared volume's files was not resolved for it`,
        });
        problemPaths.add(rel);
      }
      addVolume(disk.volumes, name);
      hostDisks.set(path, disk);
      continue;
    }
    const source: ClaimSource = type === "dataVolume" ? "dataVolume" : "persistentVolumeClaim";
    const claimName = source === "dataVolume" ? volume.dataVolume?.name : volume.persistentVolumeClaim?.claimName;
    const what = source === "dataVolume" ? "DataVolume" : "PersistentVolumeClaim";
    if (typeof claimName !== "string" || !isDnsLabel(claimName)) {
      problems.push({
        reason: "InvalidVolume",
        volume: name,
        ...(typeof claimName === "string" ? { claim: claimName } : {}),
        detail: `volume ${quote(name)} names ${what} ${quote(typeof claimName === "string" ? claimName : "")}, which is not a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)`,
      });
      continue;
    }
    const ref = `${input.workload.namespace}/${claimName}`;
    const via =
      source === "dataVolume"
        ? `DataVolume ${ref}, whose PersistentVolumeClaim ${ref}`
        : `PersistentVolumeClaim ${ref}, which`;
    const claim = claimsByName.get(claimName);
    if (!claim) {
      problems.push({
        reason: "ClaimNotFound",
        volume: name,
        claim: claimName,
        detail: `volume ${quote(name)} names ${via} does not exist`,
      });
      continue;
    }
    if (claim.phase !== "Bound") {
      problems.push({
        reason: "ClaimNotBound",
        volume: name,
        claim: claimName,
        detail: `volume ${quote(name)} names ${via} is ${claim.phase || "in no phase"}, not Bound`,
      });
      continue;
    }
    const disk = claims.get(claimName) ?? claimDisk(claim, source);
    if (source === "dataVolume") disk.source = "dataVolume";
    addVolume(disk.volumes, name);
    claims.set(claimName, disk);
  }

  const disks: VmDisk[] = [
    ...[...hostDisks.values()].sort((a, b) => compareStrings(a.path, b.path)),
    ...[...claims.values()].sort((a, b) => compareStrings(a.claimName, b.claimName)),
  ];
  const capturable = disks.some((d) => d.kind === "claim" || d.sharedPath !== undefined);
  if (problems.length === 0 && !capturable) {
    const elsewhere = [...hostDisks.values()].filter((d) => d.sharedPath === undefined).map((d) => d.path);
    const reason = noDiskReason(claimsSupported);
    const what = claimsSupported
      ? "no hostDisk on the shared volume and no PersistentVolumeClaim or DataVolume"
      : "no hostDisk on the shared volume";
    problems.push({
      reason,
      detail: elsewhere.length ? `${what} (hostDisk ${elsewhere.join(", ")} is not on the shared volume)` : what,
    });
  }
  problems.sort(
    (a, b) =>
      VM_DISK_REASON_ORDER.indexOf(a.reason) - VM_DISK_REASON_ORDER.indexOf(b.reason) ||
      compareStrings(a.volume ?? "", b.volume ?? "") ||
      compareStrings(a.detail, b.detail),
  );
  const [first] = problems;
  return {
    workload: { namespace: input.workload.namespace, name: input.workload.name },
    disks,
    skipped: [...skipped.values()].sort((a, b) => compareStrings(a.volume, b.volume) || compareStrings(a.type, b.type)),
    sharedFiles: [...ownFiles].sort(compareStrings),
    problems,
    ...(first
      ? {
          missing: {
            reason: first.reason,
            message: `VM ${workloadKey(input.workload)}: ${problems.map((p) => p.detail).join("; ")}`,
          },
        }
      : {}),
  };
}

/** The volume types that are never data, for callers and tests that enumerate them. */
export const SKIPPED_VOLUME_TYPES: readonly string[] = NOT_DATA;

function claimDisk(claim: ObservedClaim, source: ClaimSource): ClaimDisk {
  return {
    kind: "claim",
    volumes: [],
    claimName: claim.name,
    source,
    volumeMode: claim.volumeMode,
    accessModes: [...new Set(claim.accessModes)].sort(compareStrings),
    ...(claim.capacityBytes !== undefined ? { sizeBytes: claim.capacityBytes } : {}),
    ...(claim.storageClassName ? { storageClassName: claim.storageClassName } : {}),
    ...(claim.driver ? { driver: claim.driver } : {}),
    ...(claim.volumeIdentity ? { volumeIdentity: claim.volumeIdentity } : {}),
  };
}

function addVolume(volumes: string[], name: string): void {
  if (!volumes.includes(name)) {
    volumes.push(name);
    volumes.sort(compareStrings);
  }
}

// Names from a tenant's spec may hold anything: quoted as JSON, so a newline or a quote cannot forge text.
const quote = (s: string): string => JSON.stringify(s);
