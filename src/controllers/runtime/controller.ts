// One controller as the manager runs it: its work queue, keyed by objects of its primary kind, and
// the watches that map other objects' events to those keys (controller-runtime's For and Watches).
import type { Informer, InformerEvent, InformerEventMeta } from "../../k8s/informer.js";
import { objectKey, type KubeObject } from "../../k8s/types.js";
import type { WorkQueue } from "./work-queue.js";

/** The keys (namespace/name of primary objects) an event of a watched object wakes. */
export type EventKeys<T> = (event: InformerEvent, obj: T, old?: T, meta?: InformerEventMeta) => Iterable<string>;

/** Every object `list()` gives, whatever the event: for the few runs that wait on any change of a kind. */
export function allOf(list: () => KubeObject[]): EventKeys<unknown> {
  return () => list().map(objectKey);
}

export class Controller {
  constructor(
    readonly name: string,
    readonly queue: WorkQueue,
    private readonly primary: Informer<KubeObject>,
  ) {
    // Every change of a primary object is a reason to look at it again.
    primary.on((_event, obj) => queue.add(objectKey(obj)));
  }

  /** Queues the keys `keys` maps each event of `informer` to. */
  watches<T extends KubeObject>(informer: Informer<T>, keys: EventKeys<T>): this {
    informer.on((event, obj, old, meta) => {
      for (const key of keys(event, obj, old, meta)) this.queue.add(key);
    });
    return this;
  }

  /**
   * Queues every primary object: when work starts, each gets a pass, so that what changed while no
   * replica worked (or before this one led) is seen.
   */
  enqueueAll(): void {
    for (const obj of this.primary.list()) this.queue.add(objectKey(obj));
  }
}
