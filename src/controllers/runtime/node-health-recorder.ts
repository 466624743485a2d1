// Records each NotReady transition the node cache shows into the node health record (the FailureRate
// ordering policy counts them), and has the manager load that record before work starts.
import type { NodeHealthLog } from "../../k8s/node-health.js";
import type { Logger } from "../../telemetry/logger.js";
import { nodeCache } from "./caches.js";
import type { ControllerManager } from "./controller-manager.js";
import { isReady, readyCondition } from "./node-readiness.js";

export function recordNodeHealth(
  manager: Pick<ControllerManager, "informer" | "addLeaderState" | "isWorking">,
  record: NodeHealthLog,
  log: Logger,
): void {
  manager.addLeaderState({ name: "node health record", load: () => record.load() });
  nodeCache(manager).on((event, node) => {
    // Only the working replica writes the record: followers would race it for the same ConfigMap.
    if (event === "delete" || isReady(node) || !manager.isWorking) return;
    const at = Date.parse(readyCondition(node)?.lastTransitionTime ?? "");
    if (Number.isNaN(at)) return;
    record
      .recordNotReady(node.metadata.name!, at)
      .catch((err: unknown) =>
        log.warn("could not record a NotReady transition", { node: node.metadata.name, error: String(err) }),
      );
  });
}
