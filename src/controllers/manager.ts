// The operator: a controller manager (shared caches, leader election, work queues, health) with the
// operator's controllers registered on it. A new controller is one setup call here and its own setup.ts.
import type { OperatorSettings } from "./runtime/agent-job.js";
import { countNodeFailures } from "./runtime/node-failures.js";
import { setupBackupLocation } from "./backuplocation/setup.js";
import { setupBackupSchedule } from "./backupschedule/setup.js";
import { setupFederatedBackup } from "./federatedbackup/setup.js";
import { nodeSnapshotCache } from "./runtime/caches.js";
import type { ControllerContext } from "./runtime/controller-context.js";
import { ControllerManager, type ControllerManagerOptions } from "./runtime/controller-manager.js";
import { LeaseOwners } from "./runtime/lease-owners.js";
import { recordNodeHealth } from "./runtime/node-health-recorder.js";
import { setupWorkloadRestore } from "./workloadrestore/setup.js";
import { EventRecorder } from "../k8s/events.js";
import { NodeHealthLog } from "../k8s/node-health.js";
import { VolumeLeases } from "../k8s/volume-lease.js";
import type { OperatorMetrics } from "../telemetry/metrics.js";

export interface ManagerOptions extends ControllerManagerOptions {
  metrics: OperatorMetrics;
  settings: OperatorSettings;
  leaseDurationSeconds?: number;
  migrationWaitMs?: number;
  clock?: { now(): number };
}

export class Manager extends ControllerManager {
  constructor(options: ManagerOptions) {
    super(options);
    const { client, log, namespace } = options;
    const leaseDurationSeconds = options.leaseDurationSeconds ?? 60;
    const clock = options.clock ?? { now: () => Date.now() };

    const nodeHealth = new NodeHealthLog(client, namespace);
    recordNodeHealth(this, nodeHealth, log);
    const steps = nodeSnapshotCache(this);
    const context: ControllerContext = {
      manager: this,
      client,
      log,
      metrics: options.metrics,
      events: new EventRecorder(client, "fedbackup.io/operator", process.env.HOSTNAME ?? "fedbackup-operator", (err) =>
        log.warn("could not record an event", { error: String(err) }),
      ),
      clock,
      namespace,
      leases: new VolumeLeases(client, namespace, leaseDurationSeconds),
      leaseRenewMs: (leaseDurationSeconds * 1000) / 3,
      leaseOwners: new LeaseOwners(),
      nodeFailures: () => countNodeFailures(steps.list(), nodeHealth.events(), clock.now()),
    };
    setupBackupLocation(context);
    setupFederatedBackup(context, { settings: options.settings, migrationWaitMs: options.migrationWaitMs ?? 60_000 });
    setupWorkloadRestore(context, { settings: options.settings });
    setupBackupSchedule(context);
  }
}
