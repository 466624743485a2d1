// A controller's work queue as the operator runs it: each pass timed and counted by result, the
// queue's depth, adds, waits and retries exported, and a failed pass logged with when it runs again.
import type { Logger } from "../../telemetry/logger.js";
import type { OperatorMetrics } from "../../telemetry/metrics.js";
import { TerminalError, WorkQueue, type ReconcileResult } from "./work-queue.js";

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

export type ControllerMetrics = Pick<OperatorMetrics, "reconciles" | "reconcileDuration" | "queueHooks">;

export function reconcileQueue(
  controller: string,
  reconcile: Reconcile,
  options: { metrics: ControllerMetrics; log: Logger; concurrency?: number },
): WorkQueue {
  const { metrics } = options;
  const log = options.log.child({ controller });
  return new WorkQueue(
    async (key) => {
      const end = metrics.reconcileDuration.startTimer({ controller });
      try {
        const result = await reconcile(key);
        metrics.reconciles.inc({ controller, result: "success" });
        return result;
      } catch (err) {
        metrics.reconciles.inc({ controller, result: "error" });
        throw err;
      } finally {
        end();
      }
    },
    {
      concurrency: options.concurrency ?? 2,
      // Informer events arrive while the caches are still being filled: work starts with the manager's.
      paused: true,
      hooks: metrics.queueHooks(controller),
      onError: (key, err, retryInMs) =>
        log.warn("reconcile failed", {
          key,
          error: err instanceof Error ? err.message : String(err),
          retryInMs,
          terminal: err instanceof TerminalError,
        }),
    },
  );
}
