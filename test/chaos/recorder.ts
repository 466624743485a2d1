// Watches one run from the outside while it happens: every state of the storage back ends' Leases, when
// each step (NodeSnapshot, NodeRestore) was first seen with its cut done and finished, and every state of
// the run's VMIs, all stamped with their etcd revision (resourceVersion), which orders them on one clock.
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { NodeRestore, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import type { KubeClient } from "../../src/k8s/client.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { LEASE_STORAGE_ANNOTATION, viewLease, type LeaseObject } from "../../src/k8s/volume-lease.js";
import type { InstanceState } from "./invariants/instances.js";
import type { LeaseState, StepEnd } from "./invariants/turns.js";
import { OPERATOR_NAMESPACE } from "./operator-process.js";

type Vmi = VirtualMachineInstance & KubeObject;
type Step = KubeObject & { status?: { phase?: string; cutCompletionTime?: string } };
type Job = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } };

const STEP_DONE = ["Succeeded", "Failed", "Unplaced"];

const revision = (o: KubeObject): bigint => {
  const rv = o.metadata.resourceVersion ?? "";
  return /^\d+$/.test(rv) ? BigInt(rv) : 0n;
};

export class RunRecorder {
  readonly leaseStates: LeaseState[] = [];
  readonly instanceStates: InstanceState[] = [];
  private readonly stepEnds = new Map<string, StepEnd>();
  /** By VM: the uid of its instance when the recording started. */
  private readonly initialUids = new Map<string, string>();
  private readonly deletedUids = new Set<string>();
  private readonly informers: Array<Informer<KubeObject>>;
  private readonly leases: Informer<LeaseObject>;
  private readonly vmis: Informer<Vmi>;

  constructor(
    client: KubeClient,
    private readonly namespace: string,
  ) {
    const quiet = { warn: () => {} };
    this.leases = new Informer<LeaseObject>(client, Resources.Lease, { namespace: OPERATOR_NAMESPACE }, quiet).on(
      (event, lease) => {
        if (event === "delete" || !lease.metadata.annotations?.[LEASE_STORAGE_ANNOTATION]) return;
        const view = viewLease(lease);
        this.leaseStates.push({
          lease: lease.metadata.name!,
          revision: revision(lease),
          ...(view?.holderNode ? { holder: view.holderNode } : {}),
          ...(view?.step ? { step: view.step } : {}),
        });
      },
    );
    const onStep = (_event: string, step: Step) => {
      const name = step.metadata.name!;
      const end = this.stepEnds.get(name) ?? { step: name };
      this.stepEnds.set(name, end);
      if (step.status?.cutCompletionTime && end.cutDoneRevision === undefined) end.cutDoneRevision = revision(step);
      if (STEP_DONE.includes(step.status?.phase ?? "") && end.finishedRevision === undefined)
        end.finishedRevision = revision(step);
    };
    const snapshots = new Informer<NodeSnapshot & Step>(client, Resources.NodeSnapshot, { namespace }, quiet).on(
      onStep,
    );
    const restores = new Informer<NodeRestore & Step>(client, Resources.NodeRestore, { namespace }, quiet).on(onStep);
    // A step's Job is named after it: its end is when the step's agent stopped (turns.ts).
    const jobs = new Informer<Job>(client, Resources.Job, { namespace }, quiet).on((event, job) => {
      const ended = job.status?.conditions?.some(
        (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
      );
      if (event === "delete" || !ended) return;
      const name = job.metadata.name!;
      const end = this.stepEnds.get(name) ?? { step: name };
      this.stepEnds.set(name, end);
      end.jobEndedRevision ??= revision(job);
    });
    this.vmis = new Informer<Vmi>(client, Resources.VirtualMachineInstance, { namespace }, quiet).on((event, vmi) => {
      const deleted = event === "delete";
      if (deleted) this.deletedUids.add(vmi.metadata.uid!);
      this.instanceStates.push({
        vm: `${namespace}/${vmi.metadata.name}`,
        uid: vmi.metadata.uid!,
        revision: revision(vmi),
        running: vmi.status?.phase === "Running",
        deleted,
        ...(vmi.status?.nodeName ? { node: vmi.status.nodeName } : {}),
      });
    });
    this.informers = [this.leases, snapshots, restores, jobs, this.vmis] as unknown as Array<Informer<KubeObject>>;
  }

  async start(): Promise<void> {
    for (const informer of this.informers) await informer.start();
    for (const vmi of this.vmis.list())
      this.initialUids.set(`${this.namespace}/${vmi.metadata.name}`, vmi.metadata.uid!);
  }

  async stop(): Promise<void> {
    for (const informer of this.informers) await informer.stop();
  }

  get stepEndList(): StepEnd[] {
    return [...this.stepEnds.values()];
  }

  /** VMs whose instance of the start was never deleted and is still there (a migration keeps it). */
  wholeRunVms(): string[] {
    const now = new Map(this.vmis.list().map((v) => [`${this.namespace}/${v.metadata.name}`, v.metadata.uid!]));
    return [...this.initialUids]
      .filter(([vm, uid]) => now.get(vm) === uid && !this.deletedUids.has(uid))
      .map(([vm]) => vm)
      .sort();
  }

  /** The run's VMs that have an instance now, and those whose instance says it is frozen. */
  instancesNow(): { existing: Set<string>; frozen: string[] } {
    const vmis = this.vmis.list();
    return {
      existing: new Set(vmis.map((v) => `${this.namespace}/${v.metadata.name}`)),
      frozen: vmis
        .filter((v) => v.status?.fsFreezeStatus === "frozen")
        .map((v) => `${this.namespace}/${v.metadata.name}`),
    };
  }
}
