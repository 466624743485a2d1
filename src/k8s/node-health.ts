// When each node last went NotReady, kept in a ConfigMap in the operator's namespace so the count
// survives operator restarts (the FailureRate ordering policy reads it). Level-based: a node seen
// NotReady records its Ready condition's lastTransitionTime once, however often it is seen.
import type { KubeClient } from "./client.js";
import { isAlreadyExists, isNotFound } from "./errors.js";
import { Resources } from "./resources.js";
import type { KubeObject } from "./types.js";

export const NODE_HEALTH_CONFIGMAP = "fedbackup-node-health";
const KEEP = 50;

type ConfigMap = KubeObject & { data?: Record<string, string> };

export class NodeHealthLog {
  private readonly transitions = new Map<string, number[]>();

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
  ) {}

  async load(): Promise<void> {
    try {
      const cm = await this.client.get<ConfigMap>(Resources.ConfigMap, this.namespace, NODE_HEALTH_CONFIGMAP);
      for (const [node, list] of Object.entries(cm.data ?? {})) {
        this.transitions.set(
          node,
          list
            .split(",")
            .map((t) => Date.parse(t))
            .filter((t) => !Number.isNaN(t)),
        );
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** NotReady transitions per node (epoch ms), oldest first. */
  events(): Array<{ node: string; at: number }> {
    return [...this.transitions].flatMap(([node, list]) => list.map((at) => ({ node, at })));
  }

  /** Records that `node` went NotReady at `at` (its Ready condition's lastTransitionTime); idempotent. */
  async recordNotReady(node: string, at: number): Promise<void> {
    const list = this.transitions.get(node) ?? [];
    if (list.includes(at)) return;
    const next = [...list, at].sort((a, b) => a - b).slice(-KEEP);
    await this.write(node, next.map((t) => new Date(t).toISOString()).join(","));
    // Only once written: a write that failed is tried again the next time the node is seen NotReady.
    this.transitions.set(node, next);
  }

  /**
   * Sets one node's key and leaves every other key as it is: a JSON merge patch, not an apply (an apply
   * carrying one key under the same field manager would remove the keys of the nodes it left out).
   */
  private async write(node: string, value: string): Promise<void> {
    const data = { [node]: value };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.patch(Resources.ConfigMap, this.namespace, NODE_HEALTH_CONFIGMAP, { data });
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      try {
        await this.client.create(Resources.ConfigMap, {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name: NODE_HEALTH_CONFIGMAP,
            namespace: this.namespace,
            labels: { "app.kubernetes.io/managed-by": "fedbackup" },
          },
          data,
        } as KubeObject);
        return;
      } catch (err) {
        // Created meanwhile (another recorder): patch it.
        if (!isAlreadyExists(err) || attempt === 3) throw err;
      }
    }
  }
}
