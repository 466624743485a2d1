// A simulated KubeVirt virt-controller for tests (KubeVirt's own cannot run here), working against the
// real API server: it starts and stops the VMIs of VirtualMachines as their runStrategy asks, keeps the
// VMs' status in step, and carries out VirtualMachineInstanceMigrations by moving the VMI object to the
// target node. Bare VMIs (no VirtualMachine owner) are never started, stopped or rewritten for a VM; a
// migration naming one moves it, as KubeVirt would.
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeObject, VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { KubeClient } from "../../src/k8s/client.js";
import { isAlreadyExists, isConflict, isNotFound } from "../../src/k8s/errors.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import { objectKey, type KubeObject } from "../../src/k8s/types.js";
import { createLogger } from "../../src/telemetry/logger.js";

export const NODE_NAME_LABEL = "kubevirt.io/nodeName";
/** On a VirtualMachine created by the tests: the node its first instance runs on. */
export const FIRST_NODE_ANNOTATION = "test.fedbackup.io/first-node";
const MIGRATION_TARGET_LABEL = "kubevirt.io/migrationTargetNodeName";
const HOSTNAME = "kubernetes.io/hostname";
const RETRY_MS = 300;

type Vmi = VirtualMachineInstance & KubeObject;
type Node = NodeObject & KubeObject;

export interface VirtualMachine extends KubeObject {
  spec: {
    runStrategy?: string;
    running?: boolean;
    template: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec: NonNullable<VirtualMachineInstance["spec"]>;
    };
  };
  status?: { printableStatus?: string; ready?: boolean; created?: boolean };
}

interface Migration extends KubeObject {
  spec: { vmiName: string; addedNodeSelector?: Record<string, string> };
  status?: { phase?: string };
}

export interface SimulatedVmOptions {
  /** Graceful shutdown: from the VM asking to stop to its VMI being deleted. */
  stopDelayMs?: number;
  /** From the VM asking to run to its VMI being created. */
  startDelayMs?: number;
  /** How long a live migration runs before the VMI is on its target. */
  migrationDelayMs?: number;
  /** Nodes a migration never reaches: one targeting them ends Failed and the VMI stays put. */
  failMigrationsTo?: Set<string>;
}

export interface VmHistoryEntry {
  at: number;
  event: "Started" | "Stopped" | "Migrated" | "MigrationFailed";
  node?: string;
  from?: string;
}

export const wantsToRun = (vm: VirtualMachine): boolean =>
  vm.spec.runStrategy === "Always" || vm.spec.runStrategy === "RerunOnFailure" || vm.spec.running === true;

/** The VMI KubeVirt makes of a VM: Running on `node`, or Pending when there is no node to place it on. */
export function instanceOf(vm: VirtualMachine, node?: string): Vmi {
  const { name, namespace, uid } = vm.metadata;
  const { labels, annotations } = vm.spec.template.metadata ?? {};
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachineInstance",
    metadata: {
      name,
      namespace,
      labels: { ...labels, ...(node ? { [NODE_NAME_LABEL]: node } : {}) },
      ...(annotations ? { annotations } : {}),
      ownerReferences: [
        { apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", name: name!, uid: uid!, controller: true },
      ],
    },
    spec: vm.spec.template.spec,
    status: node ? { phase: "Running", nodeName: node } : { phase: "Pending" },
  };
}

const ownerUid = (vmi: Vmi): string | undefined =>
  vmi.metadata.ownerReferences?.find((r) => r.controller && r.kind === "VirtualMachine")?.uid;

function printableStatus(wants: boolean, vmi: Vmi | undefined): string {
  if (!vmi) return wants ? "Starting" : "Stopped";
  if (!wants) return "Stopping";
  return vmi.status?.phase === "Running" ? "Running" : "Starting";
}

const isReady = (node: Node): boolean =>
  !node.spec?.unschedulable && !!node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");

export class SimulatedVmController {
  private readonly vms: Informer<VirtualMachine>;
  private readonly vmis: Informer<Vmi>;
  private readonly migrations: Informer<Migration>;
  private readonly nodes: Informer<Node>;
  private readonly log = createLogger("kubevirt-vms", process.env.FEDBACKUP_TEST_LOG_LEVEL ?? "error");
  private readonly abort = new AbortController();
  private readonly opts: Required<SimulatedVmOptions>;
  /** Per VM (namespace/name): the tail of its chain of actions, so that two never overlap. */
  private readonly queues = new Map<string, Promise<void>>();
  /** VMs with a reconcile queued and not yet begun: more events for them need no second one. */
  private readonly dirty = new Set<string>();
  /** By VM uid: the node its VMI was last seen on, where a restart goes back to. */
  private readonly lastNode = new Map<string, string>();
  private readonly handledMigrations = new Set<string>();
  private readonly events = new Map<string, VmHistoryEntry[]>();
  private writes = 0;

  constructor(
    private readonly client: KubeClient,
    options: SimulatedVmOptions = {},
  ) {
    this.opts = { stopDelayMs: 100, startDelayMs: 50, migrationDelayMs: 200, failMigrationsTo: new Set(), ...options };
    this.nodes = new Informer<Node>(client, Resources.Node, {}, this.log);
    this.vms = new Informer<VirtualMachine>(client, Resources.VirtualMachine, {}, this.log).on((_, vm) =>
      this.enqueue(objectKey(vm)),
    );
    this.vmis = new Informer<Vmi>(client, Resources.VirtualMachineInstance, {}, this.log).on((event, vmi) => {
      const owner = ownerUid(vmi);
      if (!owner) return;
      const key = objectKey(vmi);
      if (event === "delete") this.record(key, { event: "Stopped", node: vmi.status?.nodeName });
      else if (vmi.status?.nodeName) this.lastNode.set(owner, vmi.status.nodeName);
      this.enqueue(key);
    });
    this.migrations = new Informer<Migration>(client, Resources.VirtualMachineInstanceMigration, {}, this.log).on(
      (event, m) => {
        const uid = m.metadata.uid!;
        if (event === "delete" || m.status?.phase || this.handledMigrations.has(uid)) return;
        this.handledMigrations.add(uid);
        this.serialize(`${m.metadata.namespace}/${m.spec.vmiName}`, () => this.migrate(m));
      },
    );
  }

  /** Resolves once the nodes, VMIs, VMs and migrations are listed and what they asked for is done. */
  async start(): Promise<void> {
    for (const informer of [this.nodes, this.vmis, this.vms, this.migrations]) await informer.start();
    await this.waitIdle();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all([this.nodes, this.vmis, this.vms, this.migrations].map((i) => i.stop()));
    await this.waitIdle();
  }

  /** Resolves when no action is queued or running (for events the watches have delivered so far). */
  async waitIdle(): Promise<void> {
    while (this.queues.size) await Promise.all(this.queues.values());
  }

  /** Write requests (create, patch, delete) made so far. */
  get calls(): number {
    return this.writes;
  }

  history(namespace: string, name: string): VmHistoryEntry[] {
    return [...(this.events.get(`${namespace}/${name}`) ?? [])];
  }

  private record(key: string, entry: Omit<VmHistoryEntry, "at">): void {
    this.events.set(key, [...(this.events.get(key) ?? []), { at: Date.now(), ...entry }]);
  }

  private counted<T>(request: Promise<T>): Promise<T> {
    this.writes++;
    return request;
  }

  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.abort.signal });
  }

  private serialize(key: string, task: () => Promise<void>): void {
    const next = (this.queues.get(key) ?? Promise.resolve())
      .then(() => (this.abort.signal.aborted ? undefined : task()))
      .catch((err: unknown) => {
        if (!this.abort.signal.aborted) this.log.warn("simulated KubeVirt action failed", { key, error: String(err) });
      });
    this.queues.set(key, next);
    void next.then(() => {
      if (this.queues.get(key) === next) this.queues.delete(key);
    });
  }

  private enqueue(key: string): void {
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    this.serialize(key, async () => {
      this.dirty.delete(key);
      try {
        await this.reconcile(key);
      } catch (err) {
        if (this.abort.signal.aborted) return;
        // Level-based: another pass later converges whatever failed (a conflict, a watch lagging behind).
        this.log.warn("simulated VM reconcile failed; retrying", { key, error: String(err) });
        await this.pause(RETRY_MS);
        this.enqueue(key);
      }
    });
  }

  private readyNodes(): string[] {
    return this.nodes
      .list(isReady)
      .map((n) => n.metadata.name!)
      .sort();
  }

  private ready(name: string | undefined): name is string {
    const node = name === undefined ? undefined : this.nodes.get(name);
    return !!node && isReady(node);
  }

  private async reconcile(key: string): Promise<void> {
    const vm = this.vms.get(key);
    if (!vm || vm.metadata.deletionTimestamp) return;
    const vmi = this.vmis.get(key);
    if (wantsToRun(vm) && !vmi) {
      await this.syncStatus(key);
      await this.pause(this.opts.startDelayMs);
      const latest = this.vms.get(key);
      if (latest && wantsToRun(latest) && !this.vmis.get(key)) await this.startInstance(latest);
    } else if (!wantsToRun(vm) && vmi && ownerUid(vmi) === vm.metadata.uid) {
      await this.syncStatus(key);
      await this.pause(this.opts.stopDelayMs);
      const latest = this.vms.get(key);
      if (latest && !wantsToRun(latest)) {
        try {
          await this.counted(
            this.client.delete(Resources.VirtualMachineInstance, vm.metadata.namespace, vm.metadata.name!, {
              uid: vmi.metadata.uid,
            }),
          );
        } catch (err) {
          // Gone already, or replaced by a VMI this pass has not seen (the next pass will).
          if (!isNotFound(err) && !isConflict(err)) throw err;
        }
      }
    }
    await this.syncStatus(key);
  }

  private async startInstance(vm: VirtualMachine): Promise<void> {
    const pinned = vm.spec.template.spec.nodeSelector?.[HOSTNAME];
    // A VM the test created together with its VMI may be seen before that VMI: the annotation names its node.
    const last = this.lastNode.get(vm.metadata.uid!) ?? vm.metadata.annotations?.[FIRST_NODE_ANNOTATION];
    const node =
      pinned !== undefined ? (this.ready(pinned) ? pinned : undefined) : this.ready(last) ? last : this.readyNodes()[0];
    try {
      this.vmis.observe(await this.counted(this.client.create(Resources.VirtualMachineInstance, instanceOf(vm, node))));
      this.record(objectKey(vm), { event: "Started", ...(node ? { node } : {}) });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  private async syncStatus(key: string): Promise<void> {
    const vm = this.vms.get(key);
    if (!vm || vm.metadata.deletionTimestamp) return;
    const vmi = this.vmis.get(key);
    const own = vmi && ownerUid(vmi) === vm.metadata.uid ? vmi : undefined;
    const status = {
      printableStatus: printableStatus(wantsToRun(vm), own),
      ready: own?.status?.phase === "Running",
      created: !!own,
    };
    const current = vm.status ?? {};
    if (Object.entries(status).every(([k, v]) => current[k as keyof typeof status] === v)) return;
    try {
      const patched = await this.counted(
        this.client.patch<VirtualMachine>(
          Resources.VirtualMachine,
          vm.metadata.namespace,
          vm.metadata.name!,
          { status },
          { subresource: "status" },
        ),
      );
      this.vms.observe(patched);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async migrate(m: Migration): Promise<void> {
    const { namespace, name, uid } = m.metadata;
    const key = `${namespace}/${m.spec.vmiName}`;
    const setPhase = (phase: string) =>
      this.counted(
        this.client.patch(
          Resources.VirtualMachineInstanceMigration,
          namespace,
          name!,
          { status: { phase } },
          { subresource: "status" },
        ),
      );
    const patchVmi = (patch: unknown) =>
      this.counted(this.client.patch<Vmi>(Resources.VirtualMachineInstance, namespace, m.spec.vmiName, patch));
    // Read fresh: the migration's watch event may have overtaken the VMI's.
    const vmi = await this.client
      .get<Vmi>(Resources.VirtualMachineInstance, namespace, m.spec.vmiName)
      .catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
    const source = vmi?.status?.nodeName;
    const target = m.spec.addedNodeSelector?.[HOSTNAME] ?? this.readyNodes().find((n) => n !== source);
    const fail = async () => {
      await setPhase("Failed");
      this.record(key, {
        event: "MigrationFailed",
        ...(target ? { node: target } : {}),
        ...(source ? { from: source } : {}),
      });
    };
    if (
      vmi?.status?.phase !== "Running" ||
      !this.ready(target) ||
      this.opts.failMigrationsTo.has(target) ||
      target === source
    )
      return fail();
    try {
      const migrationState = {
        sourceNode: source,
        targetNode: target,
        startTimestamp: new Date().toISOString(),
        completed: false,
        failed: false,
        migrationUid: uid,
      };
      await setPhase("Running");
      await patchVmi({ metadata: { labels: { [MIGRATION_TARGET_LABEL]: target } }, status: { migrationState } });
      await this.pause(this.opts.migrationDelayMs);
      const moved = await patchVmi({
        metadata: { labels: { [NODE_NAME_LABEL]: target, [MIGRATION_TARGET_LABEL]: null } },
        status: {
          nodeName: target,
          migrationState: { ...migrationState, completed: true, endTimestamp: new Date().toISOString() },
        },
      });
      this.vmis.observe(moved);
      await setPhase("Succeeded");
      this.record(key, { event: "Migrated", node: target, ...(source ? { from: source } : {}) });
    } catch (err) {
      if (this.abort.signal.aborted) throw err;
      await fail();
    }
  }
}
