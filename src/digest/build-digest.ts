// One row per VM: every VMI, plus every VM without a VMI that was backed up or restored: "Missing" while
// its VirtualMachine exists, "Deleted" when it exists only in backups (see gone-phase.ts).
import { compareStrings } from "../planning/index.js";
import { indexCaptures, type CaptureSummary } from "./capture-index.js";
import { capturedDisks, indexClaimModes, vmiDisks } from "./disks.js";
import { existingVms, phaseWithoutVmi } from "./gone-phase.js";
import { countFailedSteps } from "./node-failures.js";
import { indexRestores, type RestoreSummary } from "./restore-index.js";
import { vmKey, type DigestDisk, type DigestInput, type DigestRow } from "./types.js";
import { readyNodes, vmiState, type VmiState } from "./vmi-state.js";

/** A row with its fields in a fixed order (JSON and YAML output show them so), absent ones left out. */
function row(
  namespace: string,
  name: string,
  state: VmiState & { nodeReady?: boolean; nodeFailures: number },
  labels: Record<string, string>,
  disks: DigestDisk[],
  capture: CaptureSummary | undefined,
  restore: RestoreSummary | undefined,
): DigestRow {
  return {
    namespace,
    name,
    ...(state.node === undefined ? {} : { node: state.node }),
    ...(state.nodeReady === undefined ? {} : { nodeReady: state.nodeReady }),
    phase: state.phase,
    migrating: state.migrating,
    disks,
    ...(capture ? { lastBackup: { ...capture.last } } : {}),
    ...(restore ? { lastRestore: { ...restore.last } } : {}),
    backups: capture?.backups.size ?? 0,
    nodeFailures: state.nodeFailures,
    labels,
  };
}

/**
 * The digest of the cluster's VMs, sorted by namespace, then name. Captures and restores are indexed
 * once, so the cost grows with VMIs + captured entries, not with their product. `now` only stamps
 * captures and restores that carry no time at all.
 */
export function buildDigest(input: DigestInput, now: number): DigestRow[] {
  const captures = indexCaptures(input.backups, input.steps, now);
  const restores = indexRestores(input.restores, now);
  const failures = countFailedSteps(input.steps);
  const ready = input.nodes ? readyNodes(input.nodes) : undefined;
  const claimModes = input.claims ? indexClaimModes(input.claims) : undefined;
  const vms = input.vms ? existingVms(input.vms) : undefined;

  const rows: DigestRow[] = [];
  const seen = new Set<string>();
  for (const vmi of input.vmis) {
    const namespace = vmi.metadata.namespace ?? "";
    const name = vmi.metadata.name ?? "";
    const key = vmKey(namespace, name);
    if (seen.has(key)) continue;
    seen.add(key);
    const state = vmiState(vmi);
    const onNode =
      state.node === undefined
        ? { nodeFailures: 0 }
        : { ...(ready ? { nodeReady: ready.has(state.node) } : {}), nodeFailures: failures.get(state.node) ?? 0 };
    const capture = captures.get(key);
    const disks = vmiDisks(vmi, claimModes, capture?.workload);
    rows.push(
      row(namespace, name, { ...state, ...onNode }, { ...vmi.metadata.labels }, disks, capture, restores.get(key)),
    );
  }

  for (const key of new Set([...captures.keys(), ...restores.keys()])) {
    if (seen.has(key)) continue;
    const slash = key.indexOf("/");
    const capture = captures.get(key);
    const disks = capturedDisks(capture?.workload);
    const gone = { phase: phaseWithoutVmi(key, vms), migrating: false, nodeFailures: 0 };
    rows.push(row(key.slice(0, slash), key.slice(slash + 1), gone, {}, disks, capture, restores.get(key)));
  }

  return rows.sort((a, b) => compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name));
}
