// Watches a backup run from the outside, the way a test can assert on it: when each node Job appeared
// and finished, which Jobs ran at the same time, and who held the shared volume's Lease meanwhile. Who held
// it is judged by etcd revision (the objects' resourceVersions), one clock for Jobs and Leases alike: the
// two watch streams deliver in their own order, and the operator hands the Lease on as soon as it sees a
// Job end, so the Lease's change may arrive here before the Job's.
import { LABEL_MANAGED_BY } from "../../src/api/labels.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { viewLease, volumeLeaseName, type LeaseObject } from "../../src/k8s/volume-lease.js";
import { claimFilesystemIdentity } from "../../src/controllers/runtime/volume-identity.js";
import { adminClient, OPERATOR_NAMESPACE } from "./operator-env.js";

type Job = KubeObject & {
  spec: { template: { spec: { nodeName?: string } } };
  status?: { conditions?: Array<{ type: string; status: string }> };
};

export interface JobRecord {
  namespace: string;
  name: string;
  node: string;
  createdAt: number;
  finishedAt?: number;
  outcome?: "Complete" | "Failed" | "Deleted";
  /** The Job's revision when first seen, and when first seen finished (or deleted). */
  createdRevision: bigint;
  finishedRevision?: bigint;
  /** The Leases' holders from the Job's creation to its end, by revision. */
  readonly leaseHolders: Set<string>;
}

const revisionOf = (o: KubeObject): bigint => {
  const rv = o.metadata.resourceVersion ?? "";
  return /^\d+$/.test(rv) ? BigInt(rv) : 0n;
};

export class BackupObserver {
  readonly jobs: JobRecord[] = [];
  /** Pairs of Jobs (by name) seen running at the same time. */
  readonly overlaps: Array<[string, string]> = [];
  private readonly jobInformer = new Informer<Job>(
    adminClient(),
    Resources.Job,
    { labelSelector: `${LABEL_MANAGED_BY}=fedbackup` },
    { warn: () => {} },
  );
  private readonly leaseInformer = new Informer<LeaseObject>(
    adminClient(),
    Resources.Lease,
    { namespace: OPERATOR_NAMESPACE },
    { warn: () => {} },
  );

  constructor(
    private readonly namespaces: string[],
    private readonly onChange?: (job: JobRecord, event: "created" | "finished") => Promise<void> | void,
  ) {
    this.jobInformer.on((event, job) => this.onJob(event, job));
    this.leaseInformer.on((event, lease) => {
      if (event === "delete" || !this.leaseNames.has(lease.metadata.name ?? "")) return;
      this.leaseStates.push({
        lease: lease.metadata.name!,
        revision: revisionOf(lease),
        holder: viewLease(lease)?.holderNode ?? "",
      });
    });
  }

  /** The Lease names of the observed namespaces' shared volumes (claim vmdisks), as the operator names them. */
  private leaseNames = new Set<string>();
  /** Every state of those Leases seen, with its revision. */
  private readonly leaseStates: Array<{ lease: string; revision: bigint; holder: string }> = [];

  async start(): Promise<void> {
    for (const ns of this.namespaces) {
      const identity = await claimFilesystemIdentity(adminClient(), ns, "vmdisks");
      if (identity) this.leaseNames.add(volumeLeaseName(identity));
    }
    await this.leaseInformer.start();
    await this.jobInformer.start();
  }

  async stop(): Promise<void> {
    await this.jobInformer.stop();
    await this.leaseInformer.stop();
  }

  /** Holders of the observed Leases from revision `from` (the state then in effect) until before `to`. */
  private holdersBetween(from: bigint, to: bigint | undefined): Set<string> {
    const out = new Set<string>();
    for (const lease of new Set(this.leaseStates.map((s) => s.lease))) {
      const states = this.leaseStates
        .filter((s) => s.lease === lease)
        .sort((a, b) => (a.revision < b.revision ? -1 : 1));
      const inEffect = states.filter((s) => s.revision <= from).at(-1);
      if (inEffect) out.add(inEffect.holder);
      for (const s of states) if (s.revision > from && (to === undefined || s.revision < to)) out.add(s.holder);
    }
    return out;
  }

  private onJob(event: string, job: Job): void {
    if (!this.namespaces.includes(job.metadata.namespace!)) return;
    let record = this.jobs.find((r) => r.namespace === job.metadata.namespace && r.name === job.metadata.name);
    if (event === "delete") {
      // A Job deleted before it finished (its run was deleted, its node lost): it ends when the object is
      // gone, which with foreground deletion is after its pods are.
      if (record && record.finishedAt === undefined) {
        record.finishedAt = Date.now();
        record.finishedRevision = revisionOf(job);
        record.outcome = "Deleted";
        this.notify(record, "finished");
      }
      return;
    }
    if (!record) {
      for (const other of this.jobs)
        if (other.finishedAt === undefined) this.overlaps.push([other.name, job.metadata.name!]);
      const holdersBetween = (from: bigint, to: bigint | undefined) => this.holdersBetween(from, to);
      record = {
        namespace: job.metadata.namespace!,
        name: job.metadata.name!,
        node: job.spec.template.spec.nodeName ?? "",
        createdAt: Date.now(),
        createdRevision: revisionOf(job),
        get leaseHolders() {
          return holdersBetween(this.createdRevision, this.finishedRevision);
        },
      };
      this.jobs.push(record);
      this.notify(record, "created");
    }
    const done = job.status?.conditions?.find(
      (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
    );
    if (done && record.finishedAt === undefined) {
      record.finishedAt = Date.now();
      record.finishedRevision = revisionOf(job);
      record.outcome = done.type as "Complete" | "Failed";
      this.notify(record, "finished");
    }
  }

  private notify(record: JobRecord, event: "created" | "finished"): void {
    if (!this.onChange) return;
    Promise.resolve(this.onChange(record, event)).catch((err: unknown) =>
      process.stderr.write(`observer hook failed: ${String(err)}\n`),
    );
  }

  /** Milliseconds from each Job finishing to the next one being created, in order. */
  handoffs(): number[] {
    const sorted = [...this.jobs].sort((a, b) => a.createdAt - b.createdAt);
    const out: number[] = [];
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      if (prev.finishedAt !== undefined) out.push(sorted[i]!.createdAt - prev.finishedAt);
    }
    return out;
  }
}
