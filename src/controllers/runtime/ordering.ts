// spec.ordering of a FederatedBackup or a WorkloadRestore (the same schema) as the planner's policy.
import { seedFromText, type OrderingPolicy } from "../../planning/index.js";

export interface OrderingSpec {
  policy?: OrderingPolicy["policy"];
  nodes?: string[];
  seed?: number;
  controlPlaneNode?: OrderingPolicy["controlPlaneNode"];
}

export function orderingPolicy(o: OrderingSpec | undefined, uid: string): OrderingPolicy {
  return {
    policy: o?.policy ?? "WorkloadCount",
    ...(o?.nodes ? { nodes: o.nodes } : {}),
    // Without a seed, Random derives one from the run's UID: the order is fixed for this run (a restarted
    // operator plans the same) and differs between runs.
    ...(o?.policy === "Random" ? { seed: o.seed ?? seedFromText(uid) } : {}),
    ...(o?.controlPlaneNode ? { controlPlaneNode: o.controlPlaneNode } : {}),
  };
}
