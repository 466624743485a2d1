// The node agent, simulated for the scale benchmark: a small kubelet for the operator's agent pods (kwok
// leaves those alone, see test/harness/kwok/stages.yaml) that, instead of running `fedbackup agent backup`,
// does through the API what the real agent does there, so the operator cannot tell the difference: it marks
// the pod Running, reads the pod's NodeSnapshot, waits by a watch on each --turn-lease Lease until the Lease
// names its node and step (pipelining), patches status.cutCompletionTime, waits `extractionMs` (the
// extraction), patches the step's final status as the real agent reports it (agent-report.ts), then marks the
// pod Succeeded (as test/harness/pod-runner.ts does when the agent exits 0), and the job controller completes
// the Job. Pods of other commands (cleanup, the kubectl loop's Jobs) just take `extractionMs`.
//
// Not simulated: the agent's per-VM calls (freeze and unfreeze through KubeVirt's subresource API, the reads
// of each VMI and VirtualMachine); where each VM runs is read from this process's watch of the VMIs, and the
// time of those calls is within `extractionMs`.
import { setTimeout as sleep } from "node:timers/promises";
import { LABEL_COMPONENT, COMPONENT_AGENT } from "../../../src/api/labels.js";
import type { VirtualMachineInstance } from "../../../src/api/kubevirt.js";
import type { NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import type { KubeClient } from "../../../src/k8s/client.js";
import { Informer } from "../../../src/k8s/informer.js";
import { Resources } from "../../../src/k8s/resources.js";
import { objectKey, type KubeObject } from "../../../src/k8s/types.js";
import { LEASE_STEP_ANNOTATION, type LeaseObject } from "../../../src/k8s/volume-lease.js";
import { finalStatus, parseAgentArgs, type VmiView } from "./agent-report.js";

type Pod = KubeObject & {
  spec: { nodeName?: string; containers: Array<{ name: string; image: string; args?: string[] }> };
  status?: { phase?: string };
};
type Vmi = VirtualMachineInstance & KubeObject;

/** What the simulated agent saw of one backup step, in epoch milliseconds. */
export interface StepRecord {
  step: string;
  node: string;
  podSeenAt: number;
  /** Its turn came (every --turn-lease Lease named it); the pod start when it had none to wait for. */
  turnAt: number;
  /** Its cutCompletionTime was stored. */
  cutAt: number;
  /** Its final status was stored. */
  reportedAt: number;
  turnLeases: number;
}

export interface SimulatedAgentOptions {
  /** How long the extraction takes (and any pod that is not a backup step). */
  extractionMs: number;
  /** The freeze window each captured VM reports. */
  freezeWindowMs: number;
  /** Called once a step's cut is stored. */
  onCut?: (record: { step: string; node: string; at: number }) => void;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const quiet = { warn: () => {} };

/** Keeps of a VMI only what the agent's activity check reads, so that 10,000 of them stay small. */
function vmiView(vmi: Vmi): Vmi {
  const m = vmi.status?.migrationState;
  return {
    apiVersion: vmi.apiVersion,
    kind: vmi.kind,
    metadata: {
      name: vmi.metadata.name,
      namespace: vmi.metadata.namespace,
      uid: vmi.metadata.uid,
      resourceVersion: vmi.metadata.resourceVersion,
    },
    status: {
      phase: vmi.status?.phase,
      nodeName: vmi.status?.nodeName,
      ...(m ? { migrationState: { targetNode: m.targetNode, completed: m.completed, failed: m.failed } } : {}),
    },
  };
}

export class SimulatedAgents {
  readonly steps: StepRecord[] = [];
  readonly errors: string[] = [];
  /** Agent pods seen with --turn-lease (the operator pipelines). */
  pipelinedPods = 0;
  /** Nodes where an agent pod has started. */
  readonly nodesSeen = new Set<string>();
  private readonly pods: Informer<Pod>;
  private readonly vmis: Informer<Vmi>;
  private readonly started = new Set<string>();
  private readonly abort = new AbortController();

  constructor(
    private readonly client: KubeClient,
    private readonly options: SimulatedAgentOptions,
  ) {
    this.pods = new Informer<Pod>(
      client,
      Resources.Pod,
      { labelSelector: `${LABEL_COMPONENT}=${COMPONENT_AGENT}` },
      quiet,
    );
    this.pods.on((event, pod) => {
      if (event !== "delete") this.onPod(pod);
    });
    this.vmis = new Informer<Vmi>(client, Resources.VirtualMachineInstance, {}, quiet, vmiView);
  }

  async start(): Promise<void> {
    await this.vmis.start();
    await this.pods.start();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.pods.stop();
    await this.vmis.stop();
  }

  private vmiOf = (namespace: string, name: string): VmiView | undefined => {
    const vmi = this.vmis.get(`${namespace}/${name}`);
    if (!vmi) return undefined;
    const m = vmi.status?.migrationState;
    return {
      uid: vmi.metadata.uid,
      phase: vmi.status?.phase,
      node: vmi.status?.nodeName,
      ...(m ? { migration: { targetNode: m.targetNode, completed: m.completed, failed: m.failed } } : {}),
    };
  };

  private onPod(pod: Pod): void {
    const key = objectKey(pod);
    if (pod.metadata.deletionTimestamp) {
      // No kubelet confirms the deletion of an agent pod: do it, as the pod runner does.
      void this.client
        .request("DELETE", `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, {
          body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 },
        })
        .catch(() => {});
      return;
    }
    const node = pod.spec.nodeName;
    if (!node || pod.status?.phase !== "Pending" || this.started.has(key)) return;
    this.started.add(key);
    void this.run(pod, node).catch((err: unknown) => {
      if (this.abort.signal.aborted) return;
      this.errors.push(`${key}: ${err instanceof Error ? err.message : String(err)}`);
      return this.finishPod(pod, 1).catch(() => {});
    });
  }

  private async run(pod: Pod, node: string): Promise<void> {
    const seenAt = Date.now();
    this.nodesSeen.add(node);
    const container = pod.spec.containers[0]!;
    const started = now();
    await this.patchPod(pod, {
      phase: "Running",
      startTime: started,
      hostIP: "127.0.0.1",
      conditions: [
        { type: "Initialized", status: "True", lastTransitionTime: started },
        { type: "Ready", status: "True", lastTransitionTime: started },
        { type: "ContainersReady", status: "True", lastTransitionTime: started },
      ],
      containerStatuses: [
        {
          name: container.name,
          image: container.image,
          imageID: "",
          ready: true,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: started } },
        },
      ],
    });
    const args = parseAgentArgs(container.args ?? []);
    if (args?.command === "backup" && args.step) await this.backupStep(args.step, args.turnLeases, node, seenAt);
    else await sleep(this.options.extractionMs, undefined, { signal: this.abort.signal });
    await this.finishPod(pod, 0);
  }

  private async backupStep(
    ref: { namespace: string; name: string },
    turnLeases: Array<{ namespace: string; name: string }>,
    node: string,
    podSeenAt: number,
  ): Promise<void> {
    const step = await this.client.get<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, ref.namespace, ref.name);
    if (turnLeases.length) this.pipelinedPods++;
    await Promise.all(turnLeases.map((lease) => this.waitForTurn(lease, node, ref.name)));
    const turnAt = Date.now();
    await this.client.patch(
      Resources.NodeSnapshot,
      ref.namespace,
      ref.name,
      { status: { cutCompletionTime: new Date().toISOString() } },
      { subresource: "status" },
    );
    const cutAt = Date.now();
    this.options.onCut?.({ step: ref.name, node, at: cutAt });
    await sleep(this.options.extractionMs, undefined, { signal: this.abort.signal });
    await this.client.patch(
      Resources.NodeSnapshot,
      ref.namespace,
      ref.name,
      { status: finalStatus(step, node, this.vmiOf, this.options.freezeWindowMs) },
      { subresource: "status" },
    );
    this.steps.push({
      step: ref.name,
      node,
      podSeenAt,
      turnAt,
      cutAt,
      reportedAt: Date.now(),
      turnLeases: turnLeases.length,
    });
  }

  /** Resolves once the Lease names this node and step, as the agent learns it: by a watch, never by polling. */
  private async waitForTurn(lease: { namespace: string; name: string }, node: string, step: string): Promise<void> {
    const watch = new Informer<LeaseObject>(
      this.client,
      Resources.Lease,
      { namespace: lease.namespace, fieldSelector: `metadata.name=${lease.name}` },
      quiet,
    );
    const ours = (l: LeaseObject | undefined) =>
      l?.spec?.holderIdentity === node && l.metadata.annotations?.[LEASE_STEP_ANNOTATION] === step;
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(new Error("stopped"));
        this.abort.signal.addEventListener("abort", onAbort, { once: true });
        watch.on((event, l) => {
          if (event !== "delete" && ours(l)) resolve();
        });
        void watch.start().then(() => {
          if (ours(watch.get(`${lease.namespace}/${lease.name}`))) resolve();
        }, reject);
      });
    } finally {
      await watch.stop();
    }
  }

  private async finishPod(pod: Pod, exitCode: number): Promise<void> {
    const container = pod.spec.containers[0]!;
    const end = now();
    await this.patchPod(pod, {
      phase: exitCode === 0 ? "Succeeded" : "Failed",
      conditions: [
        { type: "Ready", status: "False", reason: "PodCompleted", lastTransitionTime: end },
        { type: "ContainersReady", status: "False", reason: "PodCompleted", lastTransitionTime: end },
      ],
      containerStatuses: [
        {
          name: container.name,
          image: container.image,
          imageID: "",
          ready: false,
          started: false,
          restartCount: 0,
          state: {
            terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt: end, finishedAt: end },
          },
        },
      ],
    });
  }

  private async patchPod(pod: Pod, status: Record<string, unknown>): Promise<void> {
    await this.client.patch(
      Resources.Pod,
      pod.metadata.namespace,
      pod.metadata.name!,
      { status },
      { subresource: "status" },
    );
  }
}
