// No VM is left frozen: in the freeze double's record each successful freeze of a VM is followed by a
// successful thaw, and no VM still exists frozen at the end. And, since only one node of a shared volume
// cuts at a time, the frozen windows of VMs on different nodes never overlap.
import { violation, type Violation } from "./violation.js";

/** A call the KubeVirt double recorded (test/harness/kubevirt-double.ts), with its VM as `<namespace>/<name>`. */
export interface FreezeCall {
  op: "freeze" | "unfreeze";
  vm: string;
  status: number;
  at: number;
  /** The VMI's node when the call arrived. */
  node?: string;
}

export interface FrozenWindow {
  vm: string;
  node: string;
  from: number;
  /** Undefined: never thawed. */
  to?: number;
}

/** Each VM's frozen windows: from a successful freeze to the next successful thaw. */
export function frozenWindows(calls: readonly FreezeCall[]): FrozenWindow[] {
  const open = new Map<string, FrozenWindow>();
  const out: FrozenWindow[] = [];
  for (const call of [...calls].sort((a, b) => a.at - b.at)) {
    if (call.status !== 200) continue;
    const current = open.get(call.vm);
    if (call.op === "freeze" && !current) {
      const window: FrozenWindow = { vm: call.vm, node: call.node ?? "", from: call.at };
      open.set(call.vm, window);
      out.push(window);
    } else if (call.op === "unfreeze" && current) {
      current.to = call.at;
      open.delete(call.vm);
    }
  }
  return out;
}

/**
 * Violations: a VM frozen and never thawed that still exists (a VM deleted while frozen is not frozen
 * any more), and a VM whose instance still reports itself frozen at the end.
 */
export function checkFreezesBalanced(
  calls: readonly FreezeCall[],
  existingAtEnd: ReadonlySet<string>,
  reportedFrozenAtEnd: readonly string[] = [],
): Violation[] {
  const out: Violation[] = [];
  for (const w of frozenWindows(calls)) {
    if (w.to === undefined && existingAtEnd.has(w.vm))
      out.push(violation("no-vm-left-frozen", `${w.vm} frozen on ${w.node || "?"} at ${w.from} and never thawed`));
  }
  for (const vm of reportedFrozenAtEnd)
    out.push(violation("no-vm-left-frozen", `${vm} still reports fsFreezeStatus frozen at the end`));
  return out;
}

/** Violations: two VMs on different nodes frozen at the same moment (two nodes cutting one volume). */
export function checkFrozenOneNodeAtATime(calls: readonly FreezeCall[], endOfRun: number): Violation[] {
  const windows = frozenWindows(calls).sort((a, b) => a.from - b.from);
  const out: Violation[] = [];
  for (let i = 0; i < windows.length; i++) {
    const a = windows[i]!;
    for (let j = i + 1; j < windows.length; j++) {
      const b = windows[j]!;
      if (b.from >= (a.to ?? endOfRun)) break;
      if (a.node !== b.node)
        out.push(
          violation(
            "one-coordinating-node",
            `${a.vm} frozen on ${a.node} (${a.from}-${a.to ?? "never thawed"}) while ${b.vm} was frozen on ${b.node} (from ${b.from})`,
          ),
        );
    }
  }
  return out;
}
