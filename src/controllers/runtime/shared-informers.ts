// One informer per resource and selector, whichever controllers read it: each cache is listed and
// watched once, and every controller sees the same objects (what one wrote and observed, the others read).
// No cache keeps managedFields (slim-objects.ts).
import type { KubeClient, ListOptions } from "../../k8s/client.js";
import { Informer, type InformerLogger } from "../../k8s/informer.js";
import type { ResourceType } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import { withoutManagedFields } from "./slim-objects.js";

type Transform<T> = (obj: T) => T;

/** What tells two requests for a cache apart: the resource and the exact selectors (as written). */
export function cacheKey(type: ResourceType, options: ListOptions): string {
  const { namespace = "", labelSelector = "", fieldSelector = "", limit } = options;
  return JSON.stringify([type.group, type.version, type.plural, namespace, labelSelector, fieldSelector, limit]);
}

export class SharedInformers {
  private readonly caches = new Map<string, { informer: Informer<KubeObject>; transform?: unknown }>();
  private started = false;

  constructor(
    private readonly client: KubeClient,
    private readonly log: InformerLogger,
  ) {}

  /**
   * The cache of `type` under `options`: the same object for the same resource and selectors. A transform
   * shapes what the cache holds, so two requests for one cache must give the same one.
   */
  informer<T extends KubeObject>(type: ResourceType, options: ListOptions = {}, transform?: Transform<T>): Informer<T> {
    const key = cacheKey(type, options);
    const cached = this.caches.get(key);
    if (cached) {
      if (cached.transform !== transform) throw new Error(`the ${type.plural} cache ${key} holds another transform`);
      return cached.informer as unknown as Informer<T>;
    }
    // A cache created after start() would never be listed: its readers would wait on it forever.
    if (this.started) throw new Error(`the ${type.plural} cache was asked for after the caches started`);
    // managedFields are never read from a cache: no cache keeps them, whatever else its transform keeps.
    const informer = new Informer<T>(this.client, type, options, this.log, (obj) =>
      withoutManagedFields(transform ? transform(obj) : obj),
    );
    this.caches.set(key, { informer: informer as unknown as Informer<KubeObject>, transform });
    return informer;
  }

  /** Every cache, in the order they were first asked for. */
  all(): Array<Informer<KubeObject>> {
    return [...this.caches.values()].map((c) => c.informer);
  }

  /** Resolves once every cache has its first list; watching goes on in the background. */
  async start(): Promise<void> {
    this.started = true;
    await Promise.all(this.all().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }

  /** Every cache has had its first list. */
  get synced(): boolean {
    return this.all().every((i) => i.hasSynced);
  }
}
