// A KubeClient double for the manager's tests: lists what a test put in, keeps each watch open until
// its informer stops, lets a test send watch events, and has nothing to get (404).
import type { KubeClient, ListOptions } from "../../../src/k8s/client.js";
import { ApiError } from "../../../src/k8s/errors.js";
import type { ResourceType } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";

type OnEvent = (event: { type: string; object: KubeObject }) => void;

export class FakeCluster {
  /** Every list made: the resource's plural and its options. */
  readonly lists: Array<{ plural: string; options: ListOptions }> = [];
  private readonly objects = new Map<string, KubeObject[]>();
  private readonly watchers = new Map<string, OnEvent[]>();
  private readonly held = new Map<string, Promise<void>>();
  private version = 1;

  /** Objects the first list of `plural` returns. */
  seed(plural: string, ...objects: KubeObject[]): this {
    this.objects.set(plural, objects);
    return this;
  }

  /** Lists of `plural` wait for `until`. */
  hold(plural: string, until: Promise<void>): this {
    this.held.set(plural, until);
    return this;
  }

  /** Sends a watch event to every open watch of `plural`. */
  send(plural: string, type: "ADDED" | "MODIFIED" | "DELETED", object: KubeObject): void {
    object.metadata.resourceVersion = String(++this.version);
    for (const onEvent of this.watchers.get(plural) ?? []) onEvent({ type, object: structuredClone(object) });
  }

  readonly client = {
    list: async (type: ResourceType, options: ListOptions = {}) => {
      this.lists.push({ plural: type.plural, options });
      await this.held.get(type.plural);
      const items = structuredClone(this.objects.get(type.plural) ?? []);
      for (const o of items) o.metadata.resourceVersion ??= "1";
      return { items, metadata: { resourceVersion: String(this.version) } };
    },
    watch: (type: ResourceType, opts: { signal?: AbortSignal; onOpen?: () => void }, onEvent: OnEvent) => {
      opts.onOpen?.();
      const list = this.watchers.get(type.plural) ?? [];
      list.push(onEvent);
      this.watchers.set(type.plural, list);
      return new Promise<void>((resolve) =>
        opts.signal?.addEventListener("abort", () => {
          list.splice(list.indexOf(onEvent), 1);
          resolve();
        }),
      );
    },
    get: (type: ResourceType) => Promise.reject(new ApiError(404, "NotFound", `no ${type.plural} here`)),
  } as unknown as KubeClient;
}

/** Waits until `done()` holds (a loaded machine may be slow; the assertions are about what, not how fast). */
export async function until(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
