// Runs controllers the way controller-runtime's manager does: it owns the shared informer caches,
// leader election, the state behind /healthz and /readyz, and each controller's work queue. The
// controllers register themselves (their caches, their watches, their reconcile); the manager fills
// the caches, then starts the queues, at once or once this replica leads, and stops them on stop().
import type { KubeClient, ListOptions } from "../../k8s/client.js";
import type { Informer, InformerHealth } from "../../k8s/informer.js";
import { LeaderElector, type LeaderTiming } from "../../k8s/leader-election.js";
import type { ResourceType } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import type { Logger } from "../../telemetry/logger.js";
import { Controller } from "./controller.js";
import { reconcileQueue, type ControllerMetrics, type Reconcile } from "./reconcile-queue.js";
import { SharedInformers } from "./shared-informers.js";
import type { WorkQueue } from "./work-queue.js";

export interface ControllerManagerOptions {
  client: KubeClient;
  log: Logger;
  metrics: ControllerMetrics;
  /** Namespace of the operator: the leader Lease lives here. */
  namespace: string;
  /** Passes each controller runs at once (on different keys). */
  concurrency?: number;
  /**
   * Only the replica holding the leader Lease (in `namespace`) runs the work queues; the caches start
   * at once. `onLost` runs when this replica could not renew it (the work queues have already stopped).
   */
  leaderElection?: { timing?: LeaderTiming; identity?: string; leaseName?: string; onLost?: (reason: string) => void };
  /** /healthz fails once a watch has been broken for longer than this (default 2 minutes). */
  watchBrokenLimitMs?: number;
}

export interface ControllerSpec<T extends KubeObject> {
  /** Names its queue, its metrics and its log lines. */
  name: string;
  /** The cache of its primary kind: its keys are these objects' namespace/name. */
  for: Informer<T>;
  reconcile: Reconcile;
}

/** State the leading replica keeps in the cluster and the controllers read from memory. */
export interface LeaderState {
  /** For the log line when reloading it fails, e.g. "node health record". */
  name: string;
  load(): Promise<void>;
}

export class ControllerManager {
  readonly elector?: LeaderElector;
  private readonly caches: SharedInformers;
  private readonly controllers = new Map<string, Controller>();
  private readonly leaderStates: LeaderState[] = [];
  /** Whether the work queues run (this replica leads, or no election). */
  private working = false;
  private started = false;

  constructor(private readonly managerOptions: ControllerManagerOptions) {
    const { client, log, leaderElection } = managerOptions;
    this.caches = new SharedInformers(client, log.child({ component: "informer" }));
    if (leaderElection) {
      this.elector = new LeaderElector({
        client,
        namespace: managerOptions.namespace,
        name: leaderElection.leaseName,
        identity: leaderElection.identity,
        timing: leaderElection.timing,
        log: log.child({ component: "leader-election" }),
      });
    }
  }

  /** The shared cache of `type` under `options` (see SharedInformers.informer). */
  informer<T extends KubeObject>(type: ResourceType, options?: ListOptions, transform?: (obj: T) => T): Informer<T> {
    return this.caches.informer(type, options, transform);
  }

  /** Creates the controller's work queue and queues its primary objects' changes; add its watches to the result. */
  addController<T extends KubeObject>(spec: ControllerSpec<T>): Controller {
    // A controller added after start() would have caches never listed and a queue never started.
    if (this.started) throw new Error(`the controller ${spec.name} was added after the manager started`);
    if (this.controllers.has(spec.name)) throw new Error(`a controller named ${spec.name} is registered already`);
    const { metrics, log, concurrency } = this.managerOptions;
    const queue = reconcileQueue(spec.name, spec.reconcile, { metrics, log, concurrency });
    const controller = new Controller(spec.name, queue, spec.for as unknown as Informer<KubeObject>);
    this.controllers.set(spec.name, controller);
    return controller;
  }

  /**
   * Loaded before the caches start (start() fails if it cannot be read) and again each time this replica
   * starts leading (the previous leader may have changed it meanwhile).
   */
  addLeaderState(state: LeaderState): void {
    this.leaderStates.push(state);
  }

  /** The named controller's work queue. */
  queue(name: string): WorkQueue {
    const controller = this.controllers.get(name);
    if (!controller) throw new Error(`no controller named ${name}`);
    return controller.queue;
  }

  /**
   * Fills the caches, then starts the work queues, at once or (with leader election) once this replica
   * leads: no pass runs before that. Resolves when the caches are synced.
   */
  async start(): Promise<void> {
    this.started = true;
    for (const state of this.leaderStates) await state.load();
    // Caches first, so the first passes see the world as it is.
    await this.caches.start();
    if (!this.elector) return this.startWork();
    this.elector.start({
      onStartedLeading: () => void this.reloadLeaderStates().then(() => this.startWork()),
      onStoppedLeading: (reason) => {
        // Stop taking work at once; passes under way cannot be recalled (the process exits next).
        void this.stopWork();
        this.managerOptions.leaderElection?.onLost?.(reason);
      },
    });
  }

  private async reloadLeaderStates(): Promise<void> {
    for (const state of this.leaderStates) {
      await state
        .load()
        .catch((err: unknown) =>
          this.managerOptions.log.warn(`could not reload the ${state.name}`, { error: String(err) }),
        );
    }
  }

  private startWork(): void {
    if (this.working) return;
    this.working = true;
    for (const c of this.controllers.values()) c.enqueueAll();
    for (const c of this.controllers.values()) c.queue.start();
  }

  /** Takes no more work and resolves when the passes under way have finished. */
  private async stopWork(): Promise<void> {
    this.working = false;
    await Promise.all([...this.controllers.values()].map((c) => c.queue.shutdown()));
  }

  /** Stops taking work, waits for the passes under way, releases the leader Lease, stops the caches. */
  async stop(): Promise<void> {
    await this.stopWork();
    await this.elector?.stop();
    await this.caches.stop();
  }

  /** Whether this replica runs the work queues. */
  get isWorking(): boolean {
    return this.working;
  }

  /** /healthz: the informers whose list/watch has been broken for longer than the limit. */
  health(now = Date.now()): { ok: boolean; broken: InformerHealth[] } {
    const limit = this.managerOptions.watchBrokenLimitMs ?? 120_000;
    const broken = this.caches
      .all()
      .map((i) => i.health())
      .filter((h) => h.brokenSince !== undefined && now - h.brokenSince > limit);
    return { ok: broken.length === 0, broken };
  }

  /** /readyz: every cache has had its first list. */
  get synced(): boolean {
    return this.caches.synced;
  }
}
