// Which files on the shared volume each VM names (its hostDisks and extra-files annotation), and the
// ownership rules of planning/file-ownership.ts applied to what the operator observes.
import { posix } from "node:path";
import type { HostDiskVolume, VirtualMachine, VirtualMachineInstance } from "../../api/kubevirt.js";
import { ANNOTATION_EXTRA_FILES } from "../../api/labels.js";
import {
  describeFileProblem,
  resolveFileOwnership,
  workloadKey,
  type FileClaimant,
  type FileOwnership,
  type ObservedWorkload,
} from "../../planning/index.js";

/** A path under the shared mount, relative to it and normalized; undefined when it lies elsewhere. */
export function relativeToMount(mount: string, file: string): string | undefined {
  const root = posix.normalize(mount.endsWith("/") ? mount : `${mount}/`);
  const normalized = posix.normalize(file);
  if (!normalized.startsWith(root)) return undefined;
  const rel = normalized.slice(root.length);
  return rel && !rel.split("/").includes("..") ? rel : undefined;
}

const extraFilesOf = (annotations: Record<string, string> | undefined): string[] =>
  (annotations?.[ANNOTATION_EXTRA_FILES] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * What a VM names on the shared volume: its hostDisk paths and its extra-files annotation, relative to the
 * mount. Works on a VMI and on a VirtualMachine's template alike (a stopped VM's disks are still its own).
 */
export function fileClaimantOf(
  ref: { namespace: string; name: string },
  spec: { volumes?: HostDiskVolume[] } | undefined,
  annotations: Record<string, string> | undefined,
  nodeMountPath: string,
): FileClaimant {
  const rel = (paths: string[]) => [...new Set(paths.flatMap((f) => relativeToMount(nodeMountPath, f) ?? []))].sort();
  return {
    ...ref,
    disks: rel((spec?.volumes ?? []).flatMap((v) => (v.hostDisk?.path ? [v.hostDisk.path] : []))),
    extra: rel(extraFilesOf(annotations)),
  };
}

/** Every VM's and VMI's claim on the shared volume: the ground on which ownership is decided. */
export function fileClaimants(
  vmis: readonly VirtualMachineInstance[],
  vms: readonly VirtualMachine[],
  nodeMountPath: string,
): FileClaimant[] {
  const ref = (o: { metadata: { namespace?: string; name?: string } }) => ({
    namespace: o.metadata.namespace ?? "",
    name: o.metadata.name ?? "",
  });
  return [
    ...vmis.map((v) => fileClaimantOf(ref(v), v.spec, v.metadata.annotations, nodeMountPath)),
    ...vms.map((v) =>
      fileClaimantOf(ref(v), v.spec?.template?.spec, v.spec?.template?.metadata?.annotations, nodeMountPath),
    ),
  ];
}

/** The VM's files are only those it owns; a path it names that is not its own keeps it out of the backup. */
export function withOwnership(
  workload: ObservedWorkload,
  ownership: ReadonlyMap<string, FileOwnership>,
): ObservedWorkload {
  const owned = ownership.get(workloadKey(workload));
  if (!owned) return workload;
  const [problem] = owned.problems;
  return {
    ...workload,
    files: owned.files,
    ...(problem
      ? {
          fileProblem: {
            reason: problem.reason,
            detail: owned.problems.map(describeFileProblem).join("; "),
          },
        }
      : {}),
  };
}

/**
 * A run without a shared volume captures no file: a VM whose volumes include hostDisks is kept out of it
 * (NoSharedDisk, saying why), rather than captured without the disks it keeps there.
 */
export function withoutSharedVolume(workload: ObservedWorkload, vmi: VirtualMachineInstance): ObservedWorkload {
  const hostDisks = (vmi.spec?.volumes ?? []).filter((v) => v.hostDisk).map((v) => JSON.stringify(v.name));
  const bare = { ...workload, files: [] };
  if (hostDisks.length === 0) return bare;
  return {
    ...bare,
    fileProblem: {
      reason: "NoSharedDisk",
      detail: `its hostDisk volumes ${hostDisks.join(", ")} cannot be captured: no spec.sharedVolume is set (name the shared volume they live on there)`,
    },
  };
}

/** The VM's files on the shared volume: its shared hostDisk paths plus the extra-files annotation. */
export function sharedFilesOf(vmi: VirtualMachineInstance, nodeMountPath: string): string[] {
  const claim = fileClaimantOf({ namespace: "", name: "" }, vmi.spec, vmi.metadata.annotations, nodeMountPath);
  return [...new Set([...claim.disks, ...claim.extra])].sort();
}

/**
 * The files each VM may be restored to: those it owns now on the volume mounted at `nodeMountPath`,
 * by its current spec, and no other VM names. A file its backup holds beyond these is not written.
 */
export function ownedFilesNow(
  vmis: readonly VirtualMachineInstance[],
  vms: readonly VirtualMachine[],
  nodeMountPath: string,
): Map<string, string[]> {
  const ownership = resolveFileOwnership(fileClaimants(vmis, vms, nodeMountPath));
  return new Map([...ownership].map(([key, owned]) => [key, owned.files]));
}
