// What the scale benchmark sees of a backup run from outside the operator, by watches: when each agent Job
// appeared and completed, and when the storage Leases were handed to each step (the fedbackup.io/step
// annotation taking a new value). Times are when this process received the events, so the two ends of a
// gap are measured by the same clock with the same delay.
import { LABEL_MANAGED_BY } from "../../../src/api/labels.js";
import type { KubeClient } from "../../../src/k8s/client.js";
import { Informer } from "../../../src/k8s/informer.js";
import { Resources } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { LEASE_STEP_ANNOTATION, type LeaseObject } from "../../../src/k8s/volume-lease.js";
import type { JobTimes } from "./stats.js";

type Job = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } };
const quiet = { warn: () => {} };

export class Timeline {
  readonly jobs = new Map<string, JobTimes & { failedAt?: number }>();
  /**
   * The first time the Leases were seen naming each step, in order, and the time the operator put in the
   * Lease as it wrote it (its renewTime: the same machine's clock), which splits the hand-off in two.
   */
  readonly handoffs: Array<{ step: string; lease: string; at: number; writtenAt?: number }> = [];
  private readonly handedTo = new Set<string>();
  private readonly jobInformer: Informer<Job>;
  private readonly leaseInformer: Informer<LeaseObject>;
  private firstJobWaiters: Array<() => void> = [];

  constructor(client: KubeClient, namespace: string, operatorNamespace: string) {
    this.jobInformer = new Informer<Job>(
      client,
      Resources.Job,
      { namespace, labelSelector: `${LABEL_MANAGED_BY}=fedbackup` },
      quiet,
    ).on((event, job) => {
      if (event !== "delete") this.onJob(job);
    });
    this.leaseInformer = new Informer<LeaseObject>(client, Resources.Lease, { namespace: operatorNamespace }, quiet).on(
      (event, lease) => {
        const step = lease.metadata.annotations?.[LEASE_STEP_ANNOTATION];
        if (event === "delete" || !step || this.handedTo.has(step)) return;
        this.handedTo.add(step);
        const writtenAt = Date.parse(lease.spec?.renewTime ?? "");
        this.handoffs.push({
          step,
          lease: lease.metadata.name!,
          at: Date.now(),
          ...(Number.isNaN(writtenAt) ? {} : { writtenAt }),
        });
      },
    );
  }

  async start(): Promise<void> {
    await this.leaseInformer.start();
    await this.jobInformer.start();
  }

  async stop(): Promise<void> {
    await this.jobInformer.stop();
    await this.leaseInformer.stop();
  }

  /** Resolves when the first Job of the run has been seen. */
  firstJob(): Promise<void> {
    if (this.jobs.size) return Promise.resolve();
    return new Promise((resolve) => this.firstJobWaiters.push(resolve));
  }

  get firstJobAt(): number | undefined {
    const times = [...this.jobs.values()].map((j) => j.createdAt);
    return times.length ? Math.min(...times) : undefined;
  }

  private onJob(job: Job): void {
    const name = job.metadata.name!;
    let record = this.jobs.get(name);
    if (!record) {
      record = { name, createdAt: Date.now() };
      this.jobs.set(name, record);
      for (const resolve of this.firstJobWaiters.splice(0)) resolve();
    }
    const done = (type: string) => job.status?.conditions?.some((c) => c.type === type && c.status === "True");
    if (record.completedAt === undefined && done("Complete")) record.completedAt = Date.now();
    if (record.failedAt === undefined && done("Failed")) record.failedAt = Date.now();
  }
}
