// A node's readiness as the controllers react to it: runs place agents on ready nodes and move off
// nodes that fail.
import type { NodeObject } from "../../api/kubevirt.js";
import type { InformerEvent } from "../../k8s/informer.js";
import { objectKey, type KubeObject } from "../../k8s/types.js";
import type { EventKeys } from "./controller.js";

export const readyCondition = (node?: NodeObject) => node?.status?.conditions?.find((c) => c.type === "Ready");

export const isReady = (node?: NodeObject): boolean => readyCondition(node)?.status === "True";

/** A node came, went, or turned ready or not ready; its other updates (heartbeats mostly) change nothing. */
export function readinessChanged(event: InformerEvent, node: NodeObject, old?: NodeObject): boolean {
  return event !== "update" || isReady(node) !== isReady(old);
}

/** Every run `active()` lists, when a node's readiness changed: where each may place its agents changed. */
export function onReadinessChange(active: () => KubeObject[]): EventKeys<NodeObject & KubeObject> {
  return (event, node, old) => (readinessChanged(event, node, old) ? active().map(objectKey) : []);
}
