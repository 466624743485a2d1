// Never two running instances of one VM: per VM, an instance (a VMI uid) that runs while another uid of the
// same VM has not yet stopped running or been deleted. Times are etcd revisions.
import { violation, type Violation } from "./violation.js";

export interface InstanceState {
  vm: string;
  uid: string;
  revision: bigint;
  running: boolean;
  deleted: boolean;
  node?: string;
}

export function checkOneInstance(states: readonly InstanceState[]): Violation[] {
  const out: Violation[] = [];
  const running = new Map<string, Map<string, string>>();
  const sorted = [...states].sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
  for (const s of sorted) {
    const uids = running.get(s.vm) ?? new Map<string, string>();
    running.set(s.vm, uids);
    if (s.running && !s.deleted) {
      for (const [uid, node] of uids)
        if (uid !== s.uid)
          out.push(
            violation("one-instance", `${s.vm}: ${s.uid} running on ${s.node ?? "?"} while ${uid} ran on ${node}`),
          );
      uids.set(s.uid, s.node ?? "");
    } else {
      uids.delete(s.uid);
    }
  }
  return out;
}
