import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { FINISHED_PHASES } from "../api/phases.js";

/** What one backup's status transition adds to the metrics (see federatedbackup/transitions.ts). */
export interface BackupRecord {
  namespace: string;
  name: string;
  /** Set when the run entered a finished phase with this status write. */
  finished?: {
    result: string;
    durationSeconds?: number;
    workloadsCaptured: number;
  };
  nodeStepSeconds: number[];
  freezeSeconds: number[];
}

/** What one restore's status transition adds to the metrics (see workloadrestore/transitions.ts). */
export interface RestoreRecord {
  finished?: { result: string; durationSeconds?: number };
  nodeStepSeconds: number[];
}

/** Called by a WorkQueue as keys come and go (see runtime/work-queue.ts). */
export interface QueueHooks {
  depth(waiting: number): void;
  added(): void;
  /** A key was taken by a worker after waiting this long since it was added. */
  waited(seconds: number): void;
  retried(): void;
}

const DURATION_BUCKETS = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800];

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

  readonly backups = new Counter({
    name: "fedbackup_backup_total",
    help: "FederatedBackups that finished, by result (Completed, PartiallyFailed, Failed).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly backupDuration = new Histogram({
    name: "fedbackup_backup_duration_seconds",
    help: "Duration of finished FederatedBackups, from status.startTime to status.completionTime.",
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly backupLastSuccess = new Gauge({
    name: "fedbackup_backup_last_success_timestamp_seconds",
    help: "When the FederatedBackup last reached Completed (status.completionTime, seconds since the epoch).",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });
  readonly nodeStepDuration = new Histogram({
    name: "fedbackup_node_step_duration_seconds",
    help: "Duration of node steps (NodeSnapshot or NodeRestore, startTime to completionTime) of finished runs, by kind (backup, restore).",
    labelNames: ["kind"] as const,
    buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers: [this.registry],
  });
  readonly workloadsCaptured = new Counter({
    name: "fedbackup_workloads_captured_total",
    help: "VMs captured by finished FederatedBackups.",
    registers: [this.registry],
  });
  readonly workloadsMissing = new Gauge({
    name: "fedbackup_workloads_missing",
    help: "VMs missing from the last finished run of each FederatedBackup, by reason (a reason seen before reads 0 once a run has none).",
    labelNames: ["namespace", "name", "reason"] as const,
    registers: [this.registry],
  });
  readonly freezeDuration = new Histogram({
    name: "fedbackup_freeze_duration_seconds",
    help: "How long each captured VM was frozen, as its node agent reported it (NodeSnapshot status.captured[].freezeWindowMs).",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly restores = new Counter({
    name: "fedbackup_restore_total",
    help: "WorkloadRestores that finished (dry runs not counted), by result (Completed, PartiallyFailed, Failed).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly restoreDuration = new Histogram({
    name: "fedbackup_restore_duration_seconds",
    help: "Duration of finished WorkloadRestores, from status.startTime to status.completionTime.",
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: "fedbackup_workqueue_depth",
    help: "Keys waiting in a controller's work queue (not counting the ones being reconciled).",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: "fedbackup_workqueue_adds_total",
    help: "Keys added to a controller's work queue.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly queueLatency = new Histogram({
    name: "fedbackup_workqueue_queue_duration_seconds",
    help: "How long a key waits in a controller's work queue before a worker takes it.",
    labelNames: ["controller"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: "fedbackup_workqueue_retries_total",
    help: "Keys of a controller's work queue requeued with backoff after a failed reconcile.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });

  /** namespace/name → the last-success value set, and the missing reasons set, per FederatedBackup. */
  private readonly lastSuccess = new Map<string, number>();
  private readonly missingReasons = new Map<string, Set<string>>();

  constructor(defaultMetrics = true) {
    // Every result from 0, so that increase() sees a run's first count.
    for (const result of FINISHED_PHASES) {
      this.backups.inc({ result }, 0);
      this.restores.inc({ result }, 0);
    }
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "fedbackup_" });
  }

  observeRequest = (verb: string, resource: string, status: number, seconds: number): void => {
    this.apiRequests.inc({ verb, resource, code: String(status) });
    this.apiLatency.observe({ verb }, seconds);
  };

  recordBackup(r: BackupRecord): void {
    for (const s of r.nodeStepSeconds) this.nodeStepDuration.observe({ kind: "backup" }, s);
    for (const s of r.freezeSeconds) this.freezeDuration.observe(s);
    const f = r.finished;
    if (!f) return;
    this.backups.inc({ result: f.result });
    if (f.durationSeconds !== undefined) this.backupDuration.observe(f.durationSeconds);
    this.workloadsCaptured.inc(f.workloadsCaptured);
  }

  /**
   * The gauges a FederatedBackup's state sets: its last success (Completed) and the VMs missing from its
   * run (finished). Fed from the informer cache on every replica, leader or not, and from the first list
   * after a start, so alerts read the same values across restarts and failovers.
   */
  observeBackupState(
    namespace: string,
    name: string,
    state: { successAt?: number; missing?: Record<string, number> },
  ): void {
    if (state.successAt !== undefined) this.setLastSuccess(namespace, name, state.successAt);
    if (state.missing) this.setMissing(namespace, name, state.missing);
  }

  recordRestore(r: RestoreRecord): void {
    for (const s of r.nodeStepSeconds) this.nodeStepDuration.observe({ kind: "restore" }, s);
    if (!r.finished) return;
    this.restores.inc({ result: r.finished.result });
    if (r.finished.durationSeconds !== undefined) this.restoreDuration.observe(r.finished.durationSeconds);
  }

  /** A reason set before and absent now reads 0. */
  private setMissing(namespace: string, name: string, missing: Record<string, number>): void {
    const key = `${namespace}/${name}`;
    const reasons = this.missingReasons.get(key) ?? new Set<string>();
    for (const reason of new Set([...reasons, ...Object.keys(missing)])) {
      this.workloadsMissing.set({ namespace, name, reason }, missing[reason] ?? 0);
      reasons.add(reason);
    }
    this.missingReasons.set(key, reasons);
  }

  /** Never moves the gauge back: an older Completed run seen later (a restart's list) does not hide a newer one. */
  setLastSuccess(namespace: string, name: string, at: number): void {
    const key = `${namespace}/${name}`;
    const current = this.lastSuccess.get(key);
    if (current !== undefined && current >= at) return;
    this.lastSuccess.set(key, at);
    this.backupLastSuccess.set({ namespace, name }, at);
  }

  /** The FederatedBackup is gone: its series go with it (as they would after a restart). */
  forgetBackup(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.lastSuccess.delete(key)) this.backupLastSuccess.remove({ namespace, name });
    for (const reason of this.missingReasons.get(key) ?? []) this.workloadsMissing.remove({ namespace, name, reason });
    this.missingReasons.delete(key);
  }

  queueHooks(controller: string): QueueHooks {
    return {
      depth: (waiting) => this.queueDepth.set({ controller }, waiting),
      added: () => this.queueAdds.inc({ controller }),
      waited: (seconds) => this.queueLatency.observe({ controller }, seconds),
      retried: () => this.queueRetries.inc({ controller }),
    };
  }
}
