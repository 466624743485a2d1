import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The operator's own metrics registry (never the global one, so tests can run several operators). */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly apiRequests = new Counter({
    name: "fedbackup_api_requests_total",
    help: "Requests made to the Kubernetes API server, by verb, resource and status code.",
    labelNames: ["verb", "resource", "code"] as const,
    registers: [this.registry],
  });
  readonly apiLatency = new Histogram({
    name: "fedbackup_api_request_duration_seconds",
    help: "Latency of requests to the Kubernetes API server.",
    labelNames: ["verb"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: "fedbackup_reconciles_total",
    help: "Reconcile passes, by controller and result.",
    labelNames: ["controller", "result"] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: "fedbackup_reconcile_duration_seconds",
    help: "Duration of reconcile passes, by controller.",
    labelNames: ["controller"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "fedbackup_" });
  }

  observeRequest = (verb: string, resource: string, status: number, seconds: number): void => {
    this.apiRequests.inc({ verb, resource, code: String(status) });
    this.apiLatency.observe({ verb }, seconds);
  };
}
