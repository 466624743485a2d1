// The operator's one door to the API server: JSON over HTTPS with the credentials of a kubeconfig
// (or the pod's ServiceAccount), server-side apply under one field manager, watches as a stream of
// events, and a count of every request for telemetry and tests.
import type { IncomingMessage } from "node:http";
import https from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import { ApiUsage, impliedAttributes, requestAttributes } from "./api-usage.js";
import { ApiError } from "./errors.js";
import { resourceOfKind, resourcePath, type ResourceType } from "./resources.js";
import type { KubeObject, KubeList, WatchEvent } from "./types.js";

export const FIELD_MANAGER = "fedbackup";

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Accept header; default application/json. */
  accept?: string;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
}

export type RequestObserver = (verb: string, resource: string, status: number, seconds: number) => void;

/** Counts requests by "VERB resource" so that tests and benchmarks can report them. */
export class RequestStats {
  private readonly counts = new Map<string, number>();
  record(verb: string, resource: string): void {
    const key = `${verb} ${resource}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
  reset(): void {
    this.counts.clear();
  }
}

/** "LIST jobs", "GET nodes", "PATCH federatedbackups/status": verb and resource of a request, names left out. */
export function describeRequest(method: string, path: string, watch: boolean): { verb: string; resource: string } {
  const parts = path.split("/").filter(Boolean);
  // /api/v1/... or /apis/<group>/<version>/...
  let i = parts[0] === "api" ? 2 : 3;
  if (parts[i] === "namespaces" && parts.length > i + 2) i += 2;
  const plural = parts[i] ?? path;
  const named = parts.length > i + 1;
  const sub = parts[i + 2];
  const verb = watch ? "WATCH" : method === "GET" && !named ? "LIST" : method;
  return { verb, resource: sub ? `${plural}/${sub}` : plural };
}

export class KubeClient {
  readonly stats = new RequestStats();
  /** Every request in RBAC's terms, with its refusals (logged when the operator or the agent stops). */
  readonly usage = new ApiUsage();
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
  private readonly server: string;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly observe?: RequestObserver,
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    this.server = cluster.server.replace(/\/$/, "");
  }

  /**
   * From a kubeconfig file, else $KUBECONFIG, else the pod's ServiceAccount, else ~/.kube/config. With
   * `preferKubeconfig` (kubectl's order, for commands people run), ~/.kube/config comes before the pod's
   * ServiceAccount. `context` picks a context of the kubeconfig instead of its current one.
   */
  static load(
    kubeconfigPath?: string,
    observe?: RequestObserver,
    opts: { context?: string; preferKubeconfig?: boolean } = {},
  ): KubeClient {
    const kc = new KubeConfig();
    if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
    else if (!opts.preferKubeconfig && process.env.KUBERNETES_SERVICE_HOST && !process.env.KUBECONFIG)
      kc.loadFromCluster();
    else kc.loadFromDefault();
    if (opts.context !== undefined) {
      if (!kc.getContextObject(opts.context)) throw new Error(`the kubeconfig has no context "${opts.context}"`);
      kc.setCurrentContext(opts.context);
    }
    return new KubeClient(kc, observe);
  }

  /** The namespace of the kubeconfig's current context (in a pod: the pod's namespace), if it names one. */
  get namespaceFromConfig(): string | undefined {
    const ctx = this.kubeConfig.getContextObject(this.kubeConfig.getCurrentContext());
    return ctx?.namespace;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await readBody(res);
    if ((res.statusCode ?? 0) >= 400) throw toApiError(res.statusCode ?? 0, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private async send(method: string, path: string, opts: RequestOptions): Promise<IncomingMessage> {
    const tls: https.RequestOptions = {};
    // Re-applied per request: it re-reads rotating ServiceAccount tokens.
    await this.kubeConfig.applyToHTTPSOptions(tls);
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body =
      opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    const headers: Record<string, string> = {
      ...(tls.headers as Record<string, string> | undefined),
      Accept: opts.accept ?? "application/json",
      "User-Agent": "fedbackup",
    };
    if (body !== undefined) {
      headers["Content-Type"] = opts.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    const { verb, resource } = describeRequest(method, path, !!opts.query?.watch);
    this.stats.record(verb, resource);
    const attributes = requestAttributes(method, path, !!opts.query?.watch);
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          headers,
          agent: this.agent,
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          rejectUnauthorized: tls.rejectUnauthorized,
          signal: opts.signal,
          timeout: opts.timeoutMs ?? (opts.query?.watch ? 0 : 30_000),
        },
        (res) => {
          if (attributes) {
            this.usage.record(attributes, res.statusCode ?? 0);
            // A server-side apply that creates the object is authorized for create as well as patch.
            if (method === "PATCH" && res.statusCode === 201) this.usage.record({ ...attributes, verb: "create" }, 201);
            if (method !== "GET" && method !== "DELETE")
              for (const implied of impliedAttributes(opts.body, resourceOfKind))
                this.usage.record(implied, res.statusCode ?? 0);
          }
          this.observe?.(verb, resource, res.statusCode ?? 0, (performance.now() - started) / 1000);
          resolve(res);
        },
      );
      req.on("timeout", () => req.destroy(new ApiError(0, "Timeout", `${method} ${path}: request timed out`)));
      req.on("error", (err) => {
        this.observe?.(verb, resource, 0, (performance.now() - started) / 1000);
        reject(err instanceof ApiError ? err : new ApiError(0, "TransportError", `${method} ${path}: ${err.message}`));
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>("GET", resourcePath(type, namespace, name));
  }

  /** The object, or undefined when it does not exist (404); any other error is thrown. */
  async find<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(type, namespace, name);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * An object's metadata only (PartialObjectMetadata): whether a Secret exists, say, without its data ever
   * reaching the operator.
   */
  getMetadata(type: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject> {
    return this.request<KubeObject>("GET", resourcePath(type, namespace, name), {
      accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    });
  }

  /** Every object of a type (following `continue` pages), with the collection's resourceVersion. */
  async list<T extends KubeObject>(type: ResourceType, opts: ListOptions = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = "";
    do {
      const page = await this.request<KubeList<T>>("GET", resourcePath(type, opts.namespace), {
        query: {
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
          limit: opts.limit ?? 500,
          continue: cont,
        },
      });
      items.push(...page.items);
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    } while (cont);
    return { items, metadata: { resourceVersion } };
  }

  create<T extends KubeObject>(type: ResourceType, obj: T): Promise<T> {
    return this.request<T>("POST", resourcePath(type, obj.metadata.namespace), { body: obj });
  }

  /** Server-side apply under fedbackup's field manager; `subresource: "status"` applies status only. */
  apply<T extends KubeObject>(
    type: ResourceType,
    obj: T,
    opts: { subresource?: string; fieldManager?: string } = {},
  ): Promise<T> {
    return this.request<T>("PATCH", resourcePath(type, obj.metadata.namespace, obj.metadata.name, opts.subresource), {
      body: obj,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: opts.fieldManager ?? FIELD_MANAGER, force: true },
    });
  }

  patch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    opts: { subresource?: string; patchType?: "merge" | "json" } = {},
  ): Promise<T> {
    return this.request<T>("PATCH", resourcePath(type, namespace, name, opts.subresource), {
      body: patch,
      contentType: opts.patchType === "json" ? "application/json-patch+json" : "application/merge-patch+json",
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  replace<T extends KubeObject>(type: ResourceType, obj: T, subresource?: string): Promise<T> {
    return this.request<T>("PUT", resourcePath(type, obj.metadata.namespace, obj.metadata.name, subresource), {
      body: obj,
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  async delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: { propagationPolicy?: "Background" | "Foreground" | "Orphan"; uid?: string } = {},
  ): Promise<void> {
    await this.request("DELETE", resourcePath(type, namespace, name), {
      body: {
        apiVersion: "v1",
        kind: "DeleteOptions",
        propagationPolicy: opts.propagationPolicy ?? "Background",
        ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}),
      },
    });
  }

  /**
   * Streams watch events until the server closes the watch (resolves) or it fails (rejects). Callers
   * (the informer) restart it from the last resourceVersion they saw.
   */
  async watch<T extends KubeObject>(
    type: ResourceType,
    opts: ListOptions & {
      resourceVersion: string;
      signal?: AbortSignal;
      timeoutSeconds?: number;
      /** Called once the API server accepted the watch. */
      onOpen?: () => void;
    },
    onEvent: (event: WatchEvent<T>) => void,
  ): Promise<void> {
    const res = await this.send("GET", resourcePath(type, opts.namespace), {
      query: {
        watch: true,
        allowWatchBookmarks: true,
        resourceVersion: opts.resourceVersion,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        timeoutSeconds: opts.timeoutSeconds ?? 300,
      },
      signal: opts.signal,
    });
    if ((res.statusCode ?? 0) >= 400) throw toApiError(res.statusCode ?? 0, await readBody(res));
    opts.onOpen?.();
    res.setEncoding("utf8");
    let buffered = "";
    try {
      for await (const chunk of res as AsyncIterable<string>) {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (err instanceof ApiError) throw err;
      throw new ApiError(0, "WatchBroken", `watch ${type.plural}: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

async function readBody(res: IncomingMessage): Promise<string> {
  res.setEncoding("utf8");
  let text = "";
  for await (const chunk of res as AsyncIterable<string>) text += chunk;
  return text;
}

function toApiError(status: number, text: string): ApiError {
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string; details?: unknown };
    return new ApiError(status, s.reason ?? String(status), s.message ?? text, s.details);
  } catch {
    return new ApiError(status, String(status), text.slice(0, 500));
  }
}
