// List+watch cache of one resource type: the operator reads the cluster from here instead of polling.
// A watch that breaks is restarted from the last resourceVersion, with backoff; "410 Gone" means the
// history is compacted, so it relists and reports the difference as events. A handler that throws is
// logged and never ends the watch. Each informer tells since when its watch has been broken (a failed
// watch or relist, until the next one succeeds), which /healthz reads.
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient, ListOptions } from "./client.js";
import { ApiError } from "./errors.js";
import type { ResourceType } from "./resources.js";
import { objectKey, type KubeObject } from "./types.js";

export type InformerEvent = "add" | "update" | "delete";
export interface InformerEventMeta {
  /**
   * The watch brought back exactly the version this process wrote and recorded with observe(): the echo of
   * its own write, which the writer has acted on already.
   */
  ownWrite: boolean;
}
export type InformerHandler<T> = (event: InformerEvent, obj: T, old?: T, meta?: InformerEventMeta) => void;

export interface InformerHealth {
  resource: string;
  synced: boolean;
  /** Since when (epoch ms) the list/watch has been failing; undefined while it works. */
  brokenSince?: number;
  /** When (epoch ms) the last list, watch connection or watch event succeeded. */
  lastSuccessAt?: number;
}

export interface InformerLogger {
  warn(message: string, meta?: Record<string, unknown>): void;
}

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  /** Object key → the resourceVersion this process wrote and observe()d, until the watch brings it back. */
  private readonly observedVersions = new Map<string, string>();
  private readonly abort = new AbortController();
  private resourceVersion = "";
  private synced = false;
  private loop?: Promise<void>;
  private brokenSince?: number;
  private lastSuccessAt?: number;

  /**
   * @param transform keeps only what readers need of each object (a large cache, such as every pod, then
   *   holds a few fields per object); it must keep metadata.name, namespace and resourceVersion.
   */
  constructor(
    private readonly client: KubeClient,
    readonly type: ResourceType,
    private readonly options: ListOptions,
    private readonly log: InformerLogger,
    private readonly transform: (obj: T) => T = (obj) => obj,
  ) {}

  on(handler: InformerHandler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  health(): InformerHealth {
    return {
      resource: this.type.plural,
      synced: this.synced,
      ...(this.brokenSince !== undefined ? { brokenSince: this.brokenSince } : {}),
      ...(this.lastSuccessAt !== undefined ? { lastSuccessAt: this.lastSuccessAt } : {}),
    };
  }

  private succeeded(): void {
    this.brokenSince = undefined;
    this.lastSuccessAt = Date.now();
  }

  private broke(): void {
    this.brokenSince ??= Date.now();
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(filter?: (obj: T) => boolean): T[] {
    const all = [...this.store.values()];
    return filter ? all.filter(filter) : all;
  }

  /**
   * Records an object this process just wrote (the API server's answer), so the next pass does not
   * decide on the older copy while the watch event is still on its way. An older version never
   * replaces a newer one.
   */
  observe(written: T): void {
    // Shaped as the watch's copies are: what the cache keeps does not depend on who brought it.
    const obj = this.transform(written);
    obj.apiVersion ??= this.type.group ? `${this.type.group}/${this.type.version}` : this.type.version;
    obj.kind ??= this.type.kind;
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (old && !isNewer(obj.metadata.resourceVersion, old.metadata.resourceVersion)) return;
    this.store.set(key, obj);
    if (obj.metadata.resourceVersion) this.observedVersions.set(key, obj.metadata.resourceVersion);
  }

  /**
   * Resolves once the first list is in the cache (retrying while the API server is not ready for it,
   * e.g. a CRD whose storage is still initializing); watching goes on in the background.
   */
  async start(): Promise<void> {
    await this.relistWithRetry();
    this.synced = true;
    this.loop = this.watchLoop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private emit(event: InformerEvent, obj: T, old?: T, meta: InformerEventMeta = { ownWrite: false }): void {
    for (const handler of this.handlers) {
      try {
        handler(event, obj, old, meta);
      } catch (err) {
        this.log.warn("informer handler failed", { resource: this.type.plural, error: String(err) });
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.type, this.options);
    this.observedVersions.clear();
    const seen = new Set<string>();
    for (const item of list.items) {
      const obj = this.transform(item);
      obj.apiVersion ??= this.type.group ? `${this.type.group}/${this.type.version}` : this.type.version;
      obj.kind ??= this.type.kind;
      const key = objectKey(obj);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, obj);
      if (!old) this.emit("add", obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit("update", obj, old);
    }
    for (const [key, old] of [...this.store.entries()]) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit("delete", old);
      }
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? "";
    this.succeeded();
  }

  private async watchLoop(): Promise<void> {
    let backoffMs = 200;
    while (!this.abort.signal.aborted) {
      try {
        await this.client.watch<T>(
          this.type,
          {
            ...this.options,
            resourceVersion: this.resourceVersion,
            signal: this.abort.signal,
            onOpen: () => this.succeeded(),
          },
          (event) => {
            this.apply(event.type, event.object);
            this.succeeded();
          },
        );
        backoffMs = 200;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        this.broke();
        if (err instanceof ApiError && err.status === 410) {
          await this.relistWithRetry();
          continue;
        }
        this.log.warn("watch failed; restarting", { resource: this.type.plural, error: String(err), backoffMs });
        await sleep(backoffMs, undefined, { signal: this.abort.signal }).catch(() => {});
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  }

  private async relistWithRetry(): Promise<void> {
    for (let backoffMs = 200; !this.abort.signal.aborted; backoffMs = Math.min(backoffMs * 2, 30_000)) {
      try {
        await this.relist();
        return;
      } catch (err) {
        this.broke();
        this.log.warn("relist failed", { resource: this.type.plural, error: String(err) });
        await sleep(backoffMs, undefined, { signal: this.abort.signal }).catch(() => {});
      }
    }
  }

  private apply(type: string, received: T): void {
    if (type === "ERROR") {
      const status = received as unknown as { code?: number; message?: string };
      throw new ApiError(status.code ?? 500, "WatchError", status.message ?? "watch error");
    }
    if (received.metadata?.resourceVersion) this.resourceVersion = received.metadata.resourceVersion;
    if (type === "BOOKMARK") return;
    const obj = this.transform(received);
    obj.apiVersion ??= this.type.group ? `${this.type.group}/${this.type.version}` : this.type.version;
    obj.kind ??= this.type.kind;
    const key = objectKey(obj);
    const old = this.store.get(key);
    const rv = obj.metadata.resourceVersion;
    const observed = this.observedVersions.get(key);
    // Only the very version written: an older event still in flight is someone else's change.
    const ownWrite = type !== "DELETED" && !!rv && observed === rv;
    if (observed !== undefined && (type === "DELETED" || ownWrite || isNewer(rv, observed)))
      this.observedVersions.delete(key);
    if (type === "DELETED") {
      this.store.delete(key);
      this.emit("delete", obj);
    } else {
      // Keep a newer copy this process wrote itself (see observe) over an older event still in flight.
      if (!old || isNewer(rv, old.metadata.resourceVersion)) this.store.set(key, obj);
      this.emit(old ? "update" : "add", this.store.get(key)!, old, { ownWrite });
    }
  }
}

/** resourceVersions are opaque, but etcd's are increasing integers; compare them as such when they are. */
function isNewer(candidate: string | undefined, current: string | undefined): boolean {
  if (!candidate || !current) return !!candidate;
  if (/^\d+$/.test(candidate) && /^\d+$/.test(current)) return BigInt(candidate) > BigInt(current);
  return candidate !== current;
}
