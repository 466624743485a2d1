// What the simulated agent of the scale benchmark reports, worked out as the real agent (src/cli/agent.ts,
// src/agent/backup.ts) works it out: which of the step's VMs are still active on its node (else failed with
// Migrated or NotRunning, as isActiveOnNode says), and the captured entries it writes into the NodeSnapshot's
// status. Pure; the simulated agent (simulated-agent.ts) does the I/O.
import path from "node:path";
import type { NodeSnapshot, NodeSnapshotStatus } from "../../../src/api/v1alpha1/index.js";
import { workloadManifestPath } from "../../../src/storage/layout.js";

export interface AgentArgs {
  command: string;
  /** The step as NAMESPACE/NAME (backup and restore). */
  step?: { namespace: string; name: string };
  /** --turn-lease NAMESPACE/NAME, one per storage Lease of the run (pipelining). */
  turnLeases: Array<{ namespace: string; name: string }>;
}

const nsName = (text: string) => {
  const [namespace, name, ...rest] = text.split("/");
  if (!namespace || !name || rest.length) throw new Error(`"${text}" is not NAMESPACE/NAME`);
  return { namespace, name };
};

/** The agent command and the flags the simulation needs, from a container's args (`agent backup --step=...`). */
export function parseAgentArgs(args: readonly string[]): AgentArgs | undefined {
  const rest = args[0] === "agent" ? args.slice(1) : [...args];
  const command = rest[0];
  if (!command || command.startsWith("-")) return undefined;
  const out: AgentArgs = { command, turnLeases: [] };
  for (let i = 1; i < rest.length; i++) {
    const arg = rest[i]!;
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg];
    const value = () => inline ?? rest[++i] ?? "";
    if (flag === "--step") out.step = nsName(value());
    else if (flag === "--turn-lease") out.turnLeases.push(nsName(value()));
  }
  return out;
}

/** A VMI as the agent's isActiveOnNode reads it. */
export interface VmiView {
  uid?: string;
  phase?: string;
  node?: string;
  migration?: { targetNode?: string; completed?: boolean; failed?: boolean };
}

export type Activity = { active: true } | { active: false; reason: "NotRunning" | "Migrated"; message: string };

/** Whether the VM is still active on `node`: the real agent's isActiveOnNode (src/cli/agent.ts), on a view. */
export function activityOn(node: string, vmi: VmiView | undefined): Activity {
  if (!vmi) return { active: false, reason: "NotRunning", message: "the VirtualMachineInstance no longer exists" };
  if (vmi.phase !== "Running")
    return { active: false, reason: "NotRunning", message: `phase ${vmi.phase ?? "unknown"}` };
  if (vmi.node !== node) return { active: false, reason: "Migrated", message: `now active on node ${vmi.node}` };
  const m = vmi.migration;
  if (m && !m.completed && !m.failed && m.targetNode && m.targetNode !== node)
    return { active: false, reason: "Migrated", message: `migrating to node ${m.targetNode}` };
  return { active: true };
}

/** A stand-in for a disk's checksum: 64 hex digits derived from the VM's key. */
function fakeSha256(key: string): string {
  let h = 0x811c9dc5;
  for (const c of key) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0").repeat(8);
}

/**
 * The step's final status as the real agent patches it after extracting (Reflink method): every VM of the
 * step still active on its node captured (one file, its VMI's uid, its manifest under the location path),
 * the others failed with the agent's reason.
 */
export function finalStatus(
  step: Pick<NodeSnapshot, "spec">,
  node: string,
  vmiOf: (namespace: string, name: string) => VmiView | undefined,
  freezeWindowMs: number,
): NodeSnapshotStatus {
  const captured: NonNullable<NodeSnapshotStatus["captured"]> = [];
  const failed: NonNullable<NodeSnapshotStatus["failed"]> = [];
  for (const w of step.spec.workloads ?? []) {
    const vmi = vmiOf(w.namespace, w.name);
    const activity = activityOn(node, vmi);
    if (!activity.active) {
      failed.push({ namespace: w.namespace, name: w.name, reason: activity.reason, message: activity.message });
      continue;
    }
    captured.push({
      namespace: w.namespace,
      name: w.name,
      uid: vmi?.uid ?? w.uid ?? "",
      bytes: 64 * 1024 * w.files.length,
      files: w.files.length,
      indication: "GuestAgent",
      freezeWindowMs,
      manifest: path.posix.join(step.spec.location.path, workloadManifestPath(w.namespace, w.name)),
      sha256: fakeSha256(`${w.namespace}/${w.name}`),
      // Bare VMIs: no VirtualMachine whose definition could be read.
      definition: false,
    });
  }
  return { snapshotMethod: "Reflink", capturedCount: captured.length, captured, failed };
}
