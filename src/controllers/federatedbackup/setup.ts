// Registers the FederatedBackup controller with the manager: the caches it reads, the events that
// wake a backup, the Leases its runs may hold, and the gauges its backups feed.
import { LABEL_BACKUP } from "../../api/labels.js";
import { Resources } from "../../k8s/resources.js";
import {
  agentJobCache,
  backupCache,
  backupLocationCache,
  nodeCache,
  nodeSnapshotCache,
  podRequestCache,
  vmCache,
  vmiCache,
  volumeLeaseCache,
} from "../runtime/caches.js";
import type { ControllerContext } from "../runtime/controller-context.js";
import { activeInCache } from "../runtime/lease-owners.js";
import { runsWaitingForLease } from "../runtime/lease-waiters.js";
import { onReadinessChange } from "../runtime/node-readiness.js";
import { ownerByLabel } from "../runtime/owner-label.js";
import { exceptOwnWrites } from "../runtime/own-writes.js";
import { onJobViewChange } from "../runtime/job-view.js";
import type { OperatorSettings } from "../runtime/agent-job.js";
import { backupIsActive, FederatedBackupReconciler, type BackupInformers } from "./reconciler.js";
import { backupStateGauges } from "./state-gauges.js";
import { backupsWaitingForLocation } from "./waiting-for-location.js";

export const BACKUP_CONTROLLER = "federatedbackup";

export interface BackupControllerOptions {
  settings: OperatorSettings;
  /** How long a backup whose round left VMs out waits for their live migrations to land. */
  migrationWaitMs: number;
}

export function setupFederatedBackup(ctx: ControllerContext, options: BackupControllerOptions): void {
  const { manager } = ctx;
  const informers: BackupInformers = {
    backups: backupCache(manager),
    steps: nodeSnapshotCache(manager),
    jobs: agentJobCache(manager),
    vmis: vmiCache(manager),
    vms: vmCache(manager),
    nodes: nodeCache(manager),
    pods: podRequestCache(manager),
    leases: volumeLeaseCache(manager, ctx.namespace),
    locations: backupLocationCache(manager),
  };
  const reconciler = new FederatedBackupReconciler({
    client: ctx.client,
    informers,
    leases: ctx.leases,
    events: ctx.events,
    log: ctx.log.child({ controller: BACKUP_CONTROLLER }),
    metrics: ctx.metrics,
    clock: ctx.clock,
    settings: {
      ...options.settings,
      leaseRenewMs: ctx.leaseRenewMs,
      migrationWaitMs: options.migrationWaitMs,
      nodeFailures: ctx.nodeFailures,
    },
    ownerActive: ctx.leaseOwners.ownerActive,
  });
  ctx.leaseOwners.register(Resources.FederatedBackup.kind, activeInCache(informers.backups, backupIsActive));

  const activeBackups = () => informers.backups.list(backupIsActive);
  manager
    .addController({ name: BACKUP_CONTROLLER, for: informers.backups, reconcile: (key) => reconciler.reconcile(key) })
    .watches(informers.steps, exceptOwnWrites(ownerByLabel(LABEL_BACKUP)))
    .watches(informers.jobs, exceptOwnWrites(onJobViewChange(ownerByLabel(LABEL_BACKUP))))
    .watches(informers.leases, runsWaitingForLease(Resources.FederatedBackup.kind, activeBackups))
    .watches(informers.nodes, onReadinessChange(activeBackups))
    .watches(informers.locations, backupsWaitingForLocation(informers.backups));
  informers.backups.on(backupStateGauges(ctx.metrics));
}
