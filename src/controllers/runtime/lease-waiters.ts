// A shared volume's Lease changing hands (taken, released, expiring unrenewed) is what runs waiting for
// the volume wait for.
import { objectKey, type KubeObject } from "../../k8s/types.js";
import { LEASE_OWNER_ANNOTATION, type LeaseObject } from "../../k8s/volume-lease.js";
import type { EventKeys } from "./controller.js";

/**
 * The runs of `kind` that `active()` lists, except the Lease's own owner: its own renewals would
 * otherwise wake it again and again.
 */
export function runsWaitingForLease(kind: string, active: () => KubeObject[]): EventKeys<LeaseObject> {
  return (_event, lease) => {
    const owner = lease.metadata.annotations?.[LEASE_OWNER_ANNOTATION] ?? "";
    return active()
      .filter((run) => !owner.startsWith(`${kind}/${run.metadata.namespace}/${run.metadata.name}/`))
      .map(objectKey);
  };
}
