// Who may hold a shared volume's Lease: runs of several kinds (backups, restores), each controller
// knowing only its own. Each registers how to tell whether a run of its kind is still going, so that
// neither has to read the other's objects to judge a Lease the other holds.
import type { Informer } from "../../k8s/informer.js";
import type { KubeObject } from "../../k8s/types.js";
import type { OwnerActive } from "./lease-state.js";

/** Is the run `namespace/name` with this UID still going? */
export type RunActive = (key: string, uid: string | undefined) => boolean;

/** The run as the cache holds it is going, and is the same object (a run deleted and created again is not). */
export function activeInCache<T extends KubeObject>(
  cache: Pick<Informer<T>, "get">,
  isActive: (run: T | undefined) => boolean,
): RunActive {
  return (key, uid) => {
    const run = cache.get(key);
    return isActive(run) && run?.metadata.uid === uid;
  };
}

export class LeaseOwners {
  private readonly kinds = new Map<string, RunActive>();

  register(kind: string, active: RunActive): void {
    if (this.kinds.has(kind)) throw new Error(`Lease owners of kind ${kind} are registered already`);
    this.kinds.set(kind, active);
  }

  /** A Lease's owner ("Kind/namespace/name/uid") is active while its kind says so; of a kind nobody registered, not. */
  readonly ownerActive: OwnerActive = (owner) => {
    const [kind = "", namespace, name, uid] = owner.split("/");
    return this.kinds.get(kind)?.(`${namespace}/${name}`, uid) ?? false;
  };
}
