// Discovery's reads of VMIs from the API server (while a run is New): only the namespaces the backup
// selects, filtered server-side where discovery-lists.ts can say how, a few namespaces at a time.
import type { VirtualMachineInstance } from "../../api/kubevirt.js";
import type { FederatedBackup } from "../../api/v1alpha1/index.js";
import type { KubeClient } from "../../k8s/client.js";
import { Resources } from "../../k8s/resources.js";
import { objectKey, type KubeObject } from "../../k8s/types.js";
import { mapBounded } from "../runtime/bounded.js";
import { discoveryLists } from "./discovery-lists.js";

type Vmi = VirtualMachineInstance & KubeObject;

/** Namespaces listed at once. */
export const DISCOVERY_LISTS_IN_FLIGHT = 8;

/** The VMIs the backup may select, read from the API server (a superset: scope.ts decides). */
export async function listSelectedVmis(client: KubeClient, backup: FederatedBackup): Promise<Vmi[]> {
  const lists = await mapBounded(discoveryLists(backup), DISCOVERY_LISTS_IN_FLIGHT, (l) =>
    client.list<Vmi>(Resources.VirtualMachineInstance, l),
  );
  return lists.flatMap((l) => l.items);
}

/** `fresh`, and every object of `cached` that `fresh` has no copy of. */
export function withCached<T extends KubeObject>(fresh: readonly T[], cached: readonly T[]): T[] {
  const seen = new Set(fresh.map(objectKey));
  return [...fresh, ...cached.filter((o) => !seen.has(objectKey(o)))];
}
