// The StorageClass of each claim a run's steps name: as a backup step recorded it, else read from the claim
// once per run (a claim's spec.storageClassName cannot change, so what was read stays true while it exists).
import type { KubeClient } from "../../k8s/client.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import type { ClaimObject } from "./claim-disks.js";
import { tryGet } from "./objects.js";
import { claimsToLookUp, recordedClasses, type StepStorage } from "./storage-keys.js";

export class ClaimClasses {
  /** Run UID → claimRef → StorageClass ("" for none, or for a claim that does not exist). */
  private readonly byRun = new Map<string, Map<string, string>>();

  constructor(private readonly client: KubeClient) {}

  async of(runUid: string, workloads: readonly StepStorage[]): Promise<ReadonlyMap<string, string>> {
    const known = this.byRun.get(runUid) ?? new Map<string, string>();
    for (const [ref, storageClass] of recordedClasses(workloads)) known.set(ref, storageClass);
    for (const ref of claimsToLookUp(workloads, known)) {
      const [namespace, name] = ref.split("/") as [string, string];
      const claim = await tryGet<KubeObject & ClaimObject>(
        this.client,
        Resources.PersistentVolumeClaim,
        namespace,
        name,
      );
      known.set(ref, claim?.spec?.storageClassName ?? "");
    }
    this.byRun.set(runUid, known);
    return known;
  }

  /** The run is gone: what was read for it is dropped. */
  forget(runUid: string): void {
    this.byRun.delete(runUid);
  }
}
