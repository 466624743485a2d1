// Wires the operator together: informers feed a per-key work queue, the queue runs the reconcilers.
import { slimPod, type PodObject } from "./runtime/node-requests.js";
import type {
  NodeObject,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
} from "../api/kubevirt.js";
import { LABEL_BACKUP, LABEL_MANAGED_BY, LABEL_RESTORE } from "../api/labels.js";
import type { FederatedBackup, NodeRestore, NodeSnapshot, WorkloadRestore } from "../api/v1alpha1/index.js";
import type { KubeClient } from "../k8s/client.js";
import { EventRecorder } from "../k8s/events.js";
import { Informer, type InformerHealth } from "../k8s/informer.js";
import { LeaderElector, type LeaderTiming } from "../k8s/leader-election.js";
import { Resources } from "../k8s/resources.js";
import { objectKey, type KubeObject } from "../k8s/types.js";
import { LEASE_OWNER_ANNOTATION, VolumeLeases, type LeaseObject } from "../k8s/volume-lease.js";
import type { Logger } from "../telemetry/logger.js";
import type { OperatorMetrics } from "../telemetry/metrics.js";
import type { OperatorSettings } from "./federatedbackup/builders.js";
import { backupIsActive, FederatedBackupReconciler, type BackupInformers } from "./federatedbackup/reconciler.js";
import { countNodeFailures } from "./federatedbackup/node-failures.js";
import { backupState } from "./federatedbackup/transitions.js";
import { NodeHealthLog } from "../k8s/node-health.js";
import { TerminalError, WorkQueue } from "./runtime/work-queue.js";
import { restoreIsActive, WorkloadRestoreReconciler, type RestoreInformers } from "./workloadrestore/reconciler.js";

export interface ManagerOptions {
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  /** Namespace of the operator: the shared-volume Leases live here. */
  namespace: string;
  settings: OperatorSettings;
  leaseDurationSeconds?: number;
  migrationWaitMs?: number;
  concurrency?: number;
  clock?: { now(): number };
  /**
   * Only the replica holding the leader Lease (in `namespace`) runs the work queues; the caches start
   * at once. `onLost` runs when this replica could not renew it (the work queues have already stopped).
   */
  leaderElection?: { timing?: LeaderTiming; identity?: string; leaseName?: string; onLost?: (reason: string) => void };
  /** /healthz fails once a watch has been broken for longer than this (default 2 minutes). */
  watchBrokenLimitMs?: number;
}

export class Manager {
  readonly informers: BackupInformers & RestoreInformers;
  readonly backupQueue: WorkQueue;
  readonly restoreQueue: WorkQueue;
  private readonly all: Array<Informer<KubeObject>>;
  private readonly nodeHealth: NodeHealthLog;
  readonly elector?: LeaderElector;
  /** Whether the work queues run (this replica leads, or no election). */
  private working = false;

  constructor(private readonly options: ManagerOptions) {
    const { client, log } = options;
    const managed = `${LABEL_MANAGED_BY}=fedbackup`;
    const informerLog = log.child({ component: "informer" });
    this.informers = {
      backups: new Informer<FederatedBackup & KubeObject>(client, Resources.FederatedBackup, {}, informerLog),
      steps: new Informer<NodeSnapshot & KubeObject>(
        client,
        Resources.NodeSnapshot,
        { labelSelector: managed },
        informerLog,
      ),
      jobs: new Informer(client, Resources.Job, { labelSelector: managed }, informerLog),
      vmis: new Informer<VirtualMachineInstance & KubeObject>(
        client,
        Resources.VirtualMachineInstance,
        {},
        informerLog,
      ),
      nodes: new Informer<NodeObject & KubeObject>(client, Resources.Node, {}, informerLog),
      // What pods reserve on each node (FreeResources, MostFreeResources): only bound, unfinished pods,
      // and of each only its node and effective request.
      pods: new Informer<PodObject>(
        client,
        Resources.Pod,
        { fieldSelector: "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed" },
        informerLog,
        slimPod,
      ),
      leases: new Informer<LeaseObject>(
        client,
        Resources.Lease,
        { namespace: options.namespace, labelSelector: managed },
        informerLog,
      ),
      restores: new Informer<WorkloadRestore & KubeObject>(client, Resources.WorkloadRestore, {}, informerLog),
      restoreSteps: new Informer<NodeRestore & KubeObject>(
        client,
        Resources.NodeRestore,
        { labelSelector: managed },
        informerLog,
      ),
      vms: new Informer<VirtualMachine & KubeObject>(client, Resources.VirtualMachine, {}, informerLog),
      migrations: new Informer<VirtualMachineInstanceMigration & KubeObject>(
        client,
        Resources.VirtualMachineInstanceMigration,
        { labelSelector: managed },
        informerLog,
      ),
    };
    this.all = Object.values(this.informers) as Array<Informer<KubeObject>>;

    this.nodeHealth = new NodeHealthLog(client, options.namespace);
    if (options.leaderElection) {
      this.elector = new LeaderElector({
        client,
        namespace: options.namespace,
        name: options.leaderElection.leaseName,
        identity: options.leaderElection.identity,
        timing: options.leaderElection.timing,
        log: log.child({ component: "leader-election" }),
      });
    }
    const leaseDurationSeconds = options.leaseDurationSeconds ?? 60;
    const clock = options.clock ?? { now: () => Date.now() };
    const events = new EventRecorder(
      client,
      "fedbackup.io/operator",
      process.env.HOSTNAME ?? "fedbackup-operator",
      (err) => log.warn("could not record an event", { error: String(err) }),
    );
    // A Lease's owner is a run of either kind; only a run that is still going keeps the volume.
    const ownerActive = (owner: string): boolean => {
      const [kind, ns, name, uid] = owner.split("/");
      if (kind === "FederatedBackup") {
        const b = this.informers.backups.get(`${ns}/${name}`);
        return backupIsActive(b) && b?.metadata.uid === uid;
      }
      if (kind === "WorkloadRestore") {
        const r = this.informers.restores.get(`${ns}/${name}`);
        return restoreIsActive(r) && r?.metadata.uid === uid;
      }
      return false;
    };
    const reconciler = new FederatedBackupReconciler({
      client,
      informers: this.informers,
      leases: new VolumeLeases(client, options.namespace, leaseDurationSeconds),
      events,
      log: log.child({ controller: "federatedbackup" }),
      metrics: options.metrics,
      clock,
      settings: {
        ...options.settings,
        leaseRenewMs: (leaseDurationSeconds * 1000) / 3,
        migrationWaitMs: options.migrationWaitMs ?? 60_000,
        nodeFailures: () => countNodeFailures(this.informers.steps.list(), this.nodeHealth.events(), clock.now()),
      },
      ownerActive,
    });
    const restoreReconciler = new WorkloadRestoreReconciler({
      client,
      informers: this.informers,
      leases: new VolumeLeases(client, options.namespace, leaseDurationSeconds),
      events,
      log: log.child({ controller: "workloadrestore" }),
      metrics: options.metrics,
      clock,
      settings: {
        ...options.settings,
        leaseRenewMs: (leaseDurationSeconds * 1000) / 3,
        nodeFailures: () => countNodeFailures(this.informers.steps.list(), this.nodeHealth.events(), clock.now()),
      },
      ownerActive,
    });
    const queueFor = (controller: string, reconcile: (key: string) => ReturnType<typeof reconciler.reconcile>) => {
      const queueLog = log.child({ controller });
      return new WorkQueue(
        async (key) => {
          const end = options.metrics.reconcileDuration.startTimer({ controller });
          try {
            const result = await reconcile(key);
            options.metrics.reconciles.inc({ controller, result: "success" });
            return result;
          } catch (err) {
            options.metrics.reconciles.inc({ controller, result: "error" });
            throw err;
          } finally {
            end();
          }
        },
        {
          concurrency: options.concurrency ?? 2,
          // Informer events arrive while the caches are still being filled: work starts in start().
          paused: true,
          hooks: options.metrics.queueHooks(controller),
          onError: (key, err, retryInMs) =>
            queueLog.warn("reconcile failed", {
              key,
              error: err instanceof Error ? err.message : String(err),
              retryInMs,
              terminal: err instanceof TerminalError,
            }),
        },
      );
    };
    this.backupQueue = queueFor("federatedbackup", (key) => reconciler.reconcile(key));
    this.restoreQueue = queueFor("workloadrestore", (key) => restoreReconciler.reconcile(key));

    const enqueueBackup = (o: KubeObject) => this.backupQueue.add(objectKey(o));
    const enqueueOwner = (o: KubeObject) => {
      const backup = o.metadata.labels?.[LABEL_BACKUP];
      if (backup) this.backupQueue.add(`${o.metadata.namespace}/${backup}`);
      const restore = o.metadata.labels?.[LABEL_RESTORE];
      if (restore) this.restoreQueue.add(`${o.metadata.namespace}/${restore}`);
    };
    const enqueueActiveRestores = () => {
      for (const r of this.informers.restores.list(restoreIsActive)) this.restoreQueue.add(objectKey(r));
    };
    const enqueueActive = () => {
      for (const b of this.informers.backups.list(backupIsActive)) this.backupQueue.add(objectKey(b));
      enqueueActiveRestores();
    };
    this.informers.backups.on((_e, o) => {
      enqueueBackup(o);
      // A restore not planned yet may be waiting for this backup to finish (spec.waitForBackup).
      for (const r of this.informers.restores.list(
        (r) => r.metadata.namespace === o.metadata.namespace && (r.status?.phase ?? "New") === "New",
      )) {
        this.restoreQueue.add(objectKey(r));
      }
    });
    // The gauges alerts read come from the cache, on every replica and from the first list on.
    this.informers.backups.on((event, b) => {
      const { namespace = "", name = "" } = b.metadata;
      if (event === "delete") options.metrics.forgetBackup(namespace, name);
      else options.metrics.observeBackupState(namespace, name, backupState(b.status));
    });
    this.informers.steps.on((_e, o) => enqueueOwner(o));
    this.informers.jobs.on((_e, o) => enqueueOwner(o));
    this.informers.restores.on((_e, o) => this.restoreQueue.add(objectKey(o)));
    this.informers.restoreSteps.on((_e, o) => enqueueOwner(o));
    this.informers.migrations.on((_e, o) => enqueueOwner(o));
    // VMs stopping, starting and moving are what a restore waits for; few restores run at once.
    this.informers.vms.on(() => enqueueActiveRestores());
    this.informers.vmis.on(() => enqueueActiveRestores());
    // A Lease changing hands wakes the runs waiting for it (not its owner: its own renewals would loop).
    this.informers.leases.on((_e, lease) => {
      const owner = lease.metadata.annotations?.[LEASE_OWNER_ANNOTATION] ?? "";
      for (const b of this.informers.backups.list(backupIsActive)) {
        if (!owner.startsWith(`FederatedBackup/${b.metadata.namespace}/${b.metadata.name}/`))
          this.backupQueue.add(objectKey(b));
      }
      for (const r of this.informers.restores.list(restoreIsActive)) {
        if (!owner.startsWith(`WorkloadRestore/${r.metadata.namespace}/${r.metadata.name}/`))
          this.restoreQueue.add(objectKey(r));
      }
    });
    this.informers.nodes.on((event, node, old) => {
      const readyCondition = (n?: NodeObject) => n?.status?.conditions?.find((c) => c.type === "Ready");
      const ready = (n?: NodeObject) => readyCondition(n)?.status === "True";
      if (event !== "delete" && !ready(node) && this.working) {
        const at = Date.parse(readyCondition(node)?.lastTransitionTime ?? "");
        if (!Number.isNaN(at)) {
          this.nodeHealth
            .recordNotReady(node.metadata.name!, at)
            .catch((err: unknown) =>
              log.warn("could not record a NotReady transition", { node: node.metadata.name, error: String(err) }),
            );
        }
      }
      if (event !== "update" || ready(node) !== ready(old)) enqueueActive();
    });
  }

  /**
   * Fills the caches, then starts the work queues, at once or (with leader election) once this replica
   * leads: no pass runs before that. Resolves when the caches are synced.
   */
  async start(): Promise<void> {
    // Caches first, so the first passes see the world as it is.
    await this.nodeHealth.load();
    await Promise.all(this.all.map((i) => i.start()));
    if (!this.elector) return this.startWork();
    this.elector.start({
      // The NotReady record the previous leader kept may have grown meanwhile.
      onStartedLeading: () =>
        void this.nodeHealth
          .load()
          .catch((err: unknown) =>
            this.options.log.warn("could not reload the node health record", { error: String(err) }),
          )
          .then(() => this.startWork()),
      onStoppedLeading: (reason) => {
        // Stop taking work at once; passes under way cannot be recalled (the process exits next).
        void this.stopWork();
        this.options.leaderElection?.onLost?.(reason);
      },
    });
  }

  private startWork(): void {
    if (this.working) return;
    this.working = true;
    for (const b of this.informers.backups.list()) this.backupQueue.add(objectKey(b));
    for (const r of this.informers.restores.list()) this.restoreQueue.add(objectKey(r));
    this.backupQueue.start();
    this.restoreQueue.start();
  }

  /** Takes no more work and resolves when the passes under way have finished. */
  private async stopWork(): Promise<void> {
    this.working = false;
    await Promise.all([this.backupQueue.shutdown(), this.restoreQueue.shutdown()]);
  }

  /** Stops taking work, waits for the passes under way, releases the leader Lease, stops the caches. */
  async stop(): Promise<void> {
    await this.stopWork();
    await this.elector?.stop();
    await Promise.all(this.all.map((i) => i.stop()));
  }

  /** Whether this replica runs the work queues. */
  get isWorking(): boolean {
    return this.working;
  }

  /** /healthz: the informers whose list/watch has been broken for longer than the limit. */
  health(now = Date.now()): { ok: boolean; broken: InformerHealth[] } {
    const limit = this.options.watchBrokenLimitMs ?? 120_000;
    const broken = this.all
      .map((i) => i.health())
      .filter((h) => h.brokenSince !== undefined && now - h.brokenSince > limit);
    return { ok: broken.length === 0, broken };
  }

  /** /readyz: every cache has had its first list. */
  get synced(): boolean {
    return this.all.every((i) => i.hasSynced);
  }
}
