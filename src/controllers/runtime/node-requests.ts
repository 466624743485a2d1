// What the pods on each node have reserved: the "unreserved" resources the FreeResources and
// MostFreeResources policies rank nodes by are the node's allocatable minus these requests, as the
// scheduler counts them. Pods are many, so the cache keeps only what this needs (slimPod).
import type { KubeObject } from "../../k8s/types.js";
import { parseQuantity } from "./quantity.js";

type Requests = Record<string, string> | undefined;

interface Container {
  resources?: { requests?: Requests };
}

export interface PodObject extends KubeObject {
  spec?: {
    nodeName?: string;
    containers?: Container[];
    initContainers?: Array<Container & { restartPolicy?: string }>;
    overhead?: Record<string, string>;
  };
  status?: { phase?: string };
}

export interface NodeRequests {
  cpuMilli: number;
  memoryBytes: number;
}

const NONE: NodeRequests = { cpuMilli: 0, memoryBytes: 0 };

function requestOf(requests: Requests): NodeRequests {
  return {
    cpuMilli: Math.round(parseQuantity(requests?.cpu ?? "0") * 1000),
    memoryBytes: parseQuantity(requests?.memory ?? "0"),
  };
}

const add = (a: NodeRequests, b: NodeRequests): NodeRequests => ({
  cpuMilli: a.cpuMilli + b.cpuMilli,
  memoryBytes: a.memoryBytes + b.memoryBytes,
});
const max = (a: NodeRequests, b: NodeRequests): NodeRequests => ({
  cpuMilli: Math.max(a.cpuMilli, b.cpuMilli),
  memoryBytes: Math.max(a.memoryBytes, b.memoryBytes),
});

/**
 * A pod's effective request, as the scheduler computes it: the larger of its containers' sum and each
 * init container (sidecars, restartPolicy Always, add to both), plus the pod overhead.
 */
export function podRequests(pod: PodObject): NodeRequests {
  const spec = pod.spec ?? {};
  let sidecars = NONE;
  let init = NONE;
  for (const c of spec.initContainers ?? []) {
    const r = requestOf(c.resources?.requests);
    if (c.restartPolicy === "Always") sidecars = add(sidecars, r);
    else init = max(init, add(sidecars, r));
  }
  const main = (spec.containers ?? []).reduce((sum, c) => add(sum, requestOf(c.resources?.requests)), sidecars);
  return add(max(main, init), requestOf(spec.overhead));
}

/** The requests of the pods that hold resources on each node (bound, not finished). */
export function requestsByNode(pods: readonly PodObject[]): Map<string, NodeRequests> {
  const out = new Map<string, NodeRequests>();
  for (const pod of pods) {
    const node = pod.spec?.nodeName;
    if (!node || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
    out.set(node, add(out.get(node) ?? NONE, podRequests(pod)));
  }
  return out;
}

/** What the pod cache keeps of a pod: its node, phase and effective request, nothing else. */
export function slimPod(pod: PodObject): PodObject {
  const r = podRequests(pod);
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: {
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      resourceVersion: pod.metadata.resourceVersion,
    },
    spec: {
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      containers: [{ resources: { requests: { cpu: `${r.cpuMilli}m`, memory: String(r.memoryBytes) } } }],
    },
    status: { ...(pod.status?.phase ? { phase: pod.status.phase } : {}) },
  };
}
