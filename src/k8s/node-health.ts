// When each node last went NotReady, kept in a ConfigMap in the operator's namespace so the count
// survives operator restarts (the FailureRate ordering policy reads it). Level-based: a node seen
// NotReady records its Ready condition's lastTransitionTime once, however often it is seen.
import type { KubeClient } from "./client.js";
import { isNotFound } from "./errors.js";
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
    this.transitions.set(node, next);
    await this.client.apply(Resources.ConfigMap, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: NODE_HEALTH_CONFIGMAP,
        namespace: this.namespace,
        labels: { "app.kubernetes.io/managed-by": "fedbackup" },
      },
      data: { [node]: next.map((t) => new Date(t).toISOString()).join(",") },
    } as KubeObject);
  }
}
