// Registers the WorkloadRestore controller with the manager: the caches it reads, the events that
// wake a restore, and the Leases its runs may hold.
import type { VirtualMachineInstanceMigration } from "../../api/kubevirt.js";
import type { NodeRestore, WorkloadRestore } from "../../api/v1alpha1/index.js";
import { LABEL_RESTORE } from "../../api/labels.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import {
  agentJobCache,
  backupCache,
  MANAGED,
  nodeCache,
  nodeSnapshotCache,
  podRequestCache,
  vmCache,
  vmiCache,
  volumeLeaseCache,
} from "../runtime/caches.js";
import type { ControllerContext } from "../runtime/controller-context.js";
import { allOf } from "../runtime/controller.js";
import { activeInCache } from "../runtime/lease-owners.js";
import { runsWaitingForLease } from "../runtime/lease-waiters.js";
import { onReadinessChange } from "../runtime/node-readiness.js";
import { ownerByLabel } from "../runtime/owner-label.js";
import {
  restoreIsActive,
  WorkloadRestoreReconciler,
  type RestoreInformers,
  type RestoreReconcilerDeps,
} from "./reconciler.js";
import { restoresWaitingForBackup } from "./waiting-for-backup.js";

export const RESTORE_CONTROLLER = "workloadrestore";

export interface RestoreControllerOptions {
  settings: Omit<RestoreReconcilerDeps["settings"], "leaseRenewMs" | "nodeFailures">;
}

export function setupWorkloadRestore(ctx: ControllerContext, options: RestoreControllerOptions): void {
  const { manager } = ctx;
  const informers: RestoreInformers = {
    restores: manager.informer<WorkloadRestore & KubeObject>(Resources.WorkloadRestore),
    restoreSteps: manager.informer<NodeRestore & KubeObject>(Resources.NodeRestore, MANAGED),
    backups: backupCache(manager),
    steps: nodeSnapshotCache(manager),
    jobs: agentJobCache(manager),
    vms: vmCache(manager),
    vmis: vmiCache(manager),
    migrations: manager.informer<VirtualMachineInstanceMigration & KubeObject>(
      Resources.VirtualMachineInstanceMigration,
      MANAGED,
    ),
    nodes: nodeCache(manager),
    pods: podRequestCache(manager),
    leases: volumeLeaseCache(manager, ctx.namespace),
  };
  const reconciler = new WorkloadRestoreReconciler({
    client: ctx.client,
    informers,
    leases: ctx.leases,
    events: ctx.events,
    log: ctx.log.child({ controller: RESTORE_CONTROLLER }),
    metrics: ctx.metrics,
    clock: ctx.clock,
    settings: { ...options.settings, leaseRenewMs: ctx.leaseRenewMs, nodeFailures: ctx.nodeFailures },
    ownerActive: ctx.leaseOwners.ownerActive,
  });
  ctx.leaseOwners.register(Resources.WorkloadRestore.kind, activeInCache(informers.restores, restoreIsActive));

  const activeRestores = () => informers.restores.list(restoreIsActive);
  manager
    .addController({ name: RESTORE_CONTROLLER, for: informers.restores, reconcile: (key) => reconciler.reconcile(key) })
    .watches(informers.restoreSteps, ownerByLabel(LABEL_RESTORE))
    .watches(informers.jobs, ownerByLabel(LABEL_RESTORE))
    .watches(informers.migrations, ownerByLabel(LABEL_RESTORE))
    .watches(informers.backups, restoresWaitingForBackup(informers.restores))
    // VMs stopping, starting and moving are what a restore waits for; few restores run at once.
    .watches(informers.vms, allOf(activeRestores))
    .watches(informers.vmis, allOf(activeRestores))
    .watches(informers.leases, runsWaitingForLease(Resources.WorkloadRestore.kind, activeRestores))
    .watches(informers.nodes, onReadinessChange(activeRestores));
}
