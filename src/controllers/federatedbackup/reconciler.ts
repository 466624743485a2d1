// FederatedBackup reconciler: gather (informer caches, a few reads) → decide (pure) → act (API calls),
// then write the status if it changed. Safe to kill at any moment: it keeps no state between passes
// that the cluster does not hold.
import { isFinished } from "../../api/phases.js";
import { rfc3339 } from "../../api/timestamps.js";
import { KubeVirtClient } from "../../k8s/kubevirt.js";
import type { NodeObject, VirtualMachine, VirtualMachineInstance } from "../../api/kubevirt.js";
import { FINALIZER_CLEANUP, LABEL_BACKUP } from "../../api/labels.js";
import type { BackupLocation, FederatedBackup, NodeSnapshot } from "../../api/v1alpha1/index.js";
import type { KubeClient } from "../../k8s/client.js";
import type { EventSink } from "../../k8s/events.js";
import type { Informer } from "../../k8s/informer.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import { storageLeaseName, type LeaseObject, type VolumeLeases } from "../../k8s/volume-lease.js";
import type { Logger } from "../../telemetry/logger.js";
import type { OperatorMetrics } from "../../telemetry/metrics.js";
import { resolveFileOwnership, restoredClaimSnapshotName } from "../../planning/index.js";
import { BACKUP_ACCESS, backupNamespaces } from "../runtime/creator-access.js";
import { checkCreatorAccess } from "../runtime/creator-check.js";
import { TerminalError, type ReconcileResult } from "../runtime/work-queue.js";
import {
  buildAgentJob,
  buildCleanupJob,
  buildExtractJob,
  buildRestoredClaim,
  buildRestoredClaimSnapshots,
  cleanupJobName,
  extractJobName,
  groupSnapshotsOf,
  restoredClaimName,
  type SourceClaim,
  usesCsiCut,
  volumeSnapshotName,
} from "./builders.js";
import type { OperatorSettings } from "../runtime/agent-job.js";
import { viewJob } from "../runtime/job-view.js";
import { decideBackup, pipelineSettingsOf, type BackupAction, type BackupWorld } from "./decide.js";
import {
  claimStorageLeases,
  leaseSetStateOf,
  releaseStorageLeases,
  type LeaseSetState,
  type OwnerActive,
} from "../runtime/lease-state.js";
import { ClaimClasses } from "../runtime/claim-classes.js";
import { runStorageKeys } from "../runtime/storage-keys.js";
import { logAction, logPhase } from "../runtime/log-action.js";
import { createIfAbsent, deleteIfExists, replaceStatus, setFinalizer, tryGet } from "../runtime/objects.js";
import { RunAccessGrants } from "../runtime/step-access.js";
import { RunMemo } from "../runtime/run-memo.js";
import { buildRunAccess, type StepAccess } from "../runtime/agent-access.js";
import { runAccessOf } from "./run-access.js";
import { claimFilesystemIdentity } from "../runtime/volume-identity.js";
import { fileClaimants, withOwnership, withoutSharedVolume } from "../runtime/file-claims.js";
import { requestsByNode, type PodObject } from "../runtime/node-requests.js";
import {
  boundVolumesOf,
  namesClaims,
  observeClaim,
  withClaims,
  withSkippedVolumes,
  type ClaimObject,
} from "../runtime/claim-disks.js";
import { withClaimMethods } from "../runtime/claim-methods.js";
import { observeNode, observeWorkload, stoppedWorkload } from "../runtime/observe.js";
import { withDefinitionReads } from "../runtime/definition-reads.js";
import { SECRETS_ACCESS, operatorSecretsRefusal } from "../runtime/secrets-permission.js";
import { inScope } from "./scope.js";
import { listSelectedVmis, withCached } from "./discovery.js";
import { actionBatches, STEPS_IN_FLIGHT } from "./action-batches.js";
import { mapBounded } from "../runtime/bounded.js";
import { decideThaws, withThawed, type FreezeView } from "./thaw.js";
import type { ObservedStep } from "./steps.js";
import { backupTransition } from "./transitions.js";
import { deferredProgressWrite, statusWriteDelay } from "./status-pace.js";
import { recordedLocation, resolveBackupLocation } from "./location.js";
import { describeLocation } from "../../storage/location.js";
import { isSynced } from "../runtime/synced-backups.js";

export interface BackupInformers {
  backups: Informer<FederatedBackup & KubeObject>;
  steps: Informer<NodeSnapshot & KubeObject>;
  jobs: Informer<KubeObject & { status?: unknown }>;
  vmis: Informer<VirtualMachineInstance & KubeObject>;
  /** VirtualMachines, running or not: their disks are theirs even while stopped. */
  vms: Informer<VirtualMachine & KubeObject>;
  nodes: Informer<NodeObject & KubeObject>;
  /** Bound, unfinished pods, slimmed to their node and request (runtime/node-requests.ts). */
  pods: Informer<PodObject>;
  leases: Informer<LeaseObject>;
  /** The BackupLocations runs reference (spec.locationRef). */
  locations: Informer<BackupLocation & KubeObject>;
}

export interface BackupReconcilerDeps {
  client: KubeClient;
  informers: BackupInformers;
  leases: VolumeLeases;
  events: EventSink;
  log: Logger;
  clock: { now(): number };
  settings: OperatorSettings & {
    leaseRenewMs: number;
    migrationWaitMs: number;
    nodeFailures?: () => Map<string, number>;
  };
  /** Is the run that owns a Lease still going? (backups here; restores register theirs.) */
  ownerActive: OwnerActive;
  metrics?: Pick<OperatorMetrics, "recordBackup">;
}

export const backupOwnerId = (b: FederatedBackup): string =>
  `FederatedBackup/${b.metadata.namespace}/${b.metadata.name}/${b.metadata.uid}`;

/**
 * Whether the run still works on its volume: until it finishes, and while it is deleted until its finalizer
 * is gone (its agents are being stopped, or its cleanup runs under the Lease).
 */
export function backupIsActive(b: FederatedBackup | undefined): boolean {
  if (!b) return false;
  if (b.metadata.deletionTimestamp) return !!b.metadata.finalizers?.includes(FINALIZER_CLEANUP);
  return !isFinished(b.status?.phase);
}

export class FederatedBackupReconciler {
  /** Backup UID → the shared volume's identity; a claim's bound volume does not change, so it is read once. */
  private readonly volumeIds = new Map<string, string>();
  /** PersistentVolume name → its CSI driver (null: none); a volume's driver does not change. */
  private readonly claimDrivers = new Map<string, string | null>();
  private readonly claimClasses: ClaimClasses;
  private readonly agentAccess: RunAccessGrants;
  /** Backup UID → when this process last wrote its status (status-pace.ts). */
  private readonly statusWrittenAt = new Map<string, number>();
  /** Backup UID → its storage keys and the node steps they were computed from (recomputed when those change). */
  private readonly storageKeysSeen = new RunMemo<string[]>();
  /** Backup UID → its agents' access and the steps it was built from (runAccess). */
  private readonly runAccessSeen = new RunMemo<StepAccess>();

  constructor(private readonly deps: BackupReconcilerDeps) {
    this.claimClasses = new ClaimClasses(deps.client);
    this.agentAccess = new RunAccessGrants(deps.client);
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { informers, client, clock } = this.deps;
    const cached = informers.backups.get(key);
    if (!cached) return;
    // Nothing to run, no finalizer: deleting a synced backup leaves its files to the cluster that made them
    // (its location's sync removes it once that cluster deletes the backup and its index).
    if (isSynced(cached)) return;
    const backup = structuredClone(cached);
    if (backup.metadata.deletionTimestamp) return this.finalize(backup);
    if (!backup.metadata.finalizers?.includes(FINALIZER_CLEANUP)) {
      await setFinalizer(client, Resources.FederatedBackup, backup, FINALIZER_CLEANUP, true);
      return; // the update event brings us back with the finalizer in place
    }

    const thawAgainMs = await this.thawLeftFrozen(backup);
    const world = await this.gather(backup);
    const decision = decideBackup(world, {
      leaseRenewMs: this.deps.settings.leaseRenewMs,
      migrationWaitMs: this.deps.settings.migrationWaitMs,
    });
    // Events last: they tell of the status this pass writes, and a status write refused on a conflict
    // makes the next pass decide (and tell) again, so told before it they would be told twice.
    // Different steps' actions side by side, each step's in order; the run's own in order (action-batches.ts).
    for (const batch of actionBatches(decision.actions.filter((a) => a.kind !== "Event"))) {
      await mapBounded(batch, STEPS_IN_FLIGHT, async (sequence) => {
        for (const action of sequence) {
          logAction(this.deps.log, backup, action, { object: world.leaseObject, owner: backupOwnerId(backup) });
          await this.act(backup, world, action);
        }
      });
    }
    const uid = backup.metadata.uid!;
    // The agents' access ends with the run; revoked before the finished status is written, so that a pass
    // interrupted in between revokes again.
    if (isFinished(decision.phase) && !isFinished(backup.status?.phase)) {
      await this.agentAccess.revoke(
        uid,
        this.runAccess(
          backup,
          world.steps.map((o) => o.step),
          world.storageKeys,
        ),
      );
    }
    const lastWriteAt = this.statusWrittenAt.get(uid);
    const writeIn =
      deferredProgressWrite(backup.status, decision.outline, lastWriteAt, clock.now()) ??
      statusWriteDelay(backup.status, decision.status, lastWriteAt, clock.now());
    if (writeIn === 0) {
      informers.backups.observe(await replaceStatus(client, Resources.FederatedBackup, backup, decision.status));
      this.statusWrittenAt.set(uid, clock.now());
      if (isFinished(decision.status.phase)) {
        this.statusWrittenAt.delete(uid);
        this.storageKeysSeen.forget(uid);
        this.runAccessSeen.forget(uid);
      }
      logPhase(this.deps.log, backup, backup.status?.phase, decision.status.phase);
      const steps = informers.steps.list((s) => s.spec.backupUID === backup.metadata.uid);
      const record = backupTransition(backup, backup.status, decision.status, steps);
      if (record) this.deps.metrics?.recordBackup(record);
    }
    for (const action of decision.actions) if (action.kind === "Event") await this.act(backup, world, action);
    const requeue = [decision.requeueAfterMs, thawAgainMs, writeIn || undefined].filter((ms) => ms !== undefined);
    return requeue.length ? { requeueAfterMs: Math.min(...requeue) } : undefined;
  }

  /**
   * Thaws the VMs a lost node may have left frozen, once they can be reached (see thaw.ts), whatever the
   * backup's phase; returns when to look again while some are not reachable yet.
   */
  private async thawLeftFrozen(backup: FederatedBackup): Promise<number | undefined> {
    const { informers, client, events, clock } = this.deps;
    const pending = informers.steps.list(
      (s) =>
        s.metadata.namespace === backup.metadata.namespace &&
        s.spec.backupUID === backup.metadata.uid &&
        !!s.status?.thawPending,
    );
    if (pending.length === 0) return undefined;
    const vmis = new Map<string, FreezeView>();
    for (const step of pending) {
      for (const w of step.spec.workloads ?? []) {
        const vmi = informers.vmis.get(`${w.namespace}/${w.name}`);
        if (vmi) {
          vmis.set(`${w.namespace}/${w.name}`, {
            namespace: w.namespace,
            name: w.name,
            frozen: vmi.status?.fsFreezeStatus === "frozen",
            phase: vmi.status?.phase ?? "",
            ...(vmi.status?.nodeName ? { node: vmi.status.nodeName } : {}),
          });
        }
      }
    }
    const nodes = informers.nodes.list().map((n) => observeNode(n));
    const decision = decideThaws(pending, vmis, nodes);
    const kubevirt = new KubeVirtClient(client);
    const thawedBy = new Map<string, Array<{ namespace: string; name: string; node: string }>>();
    let retry = decision.waiting;
    for (const vm of decision.thaw) {
      try {
        await kubevirt.unfreeze(vm.namespace, vm.name);
        thawedBy.set(vm.step, [...(thawedBy.get(vm.step) ?? []), vm]);
      } catch (err) {
        // One VM that cannot be thawed now must not hold up the others or the run: its step stays pending.
        this.deps.log.warn("could not thaw a VM left frozen", { vm: `${vm.namespace}/${vm.name}`, error: String(err) });
        decision.settled = decision.settled.filter((s) => s !== vm.step);
        retry = true;
      }
    }
    const now = rfc3339(clock.now());
    for (const step of pending) {
      const name = step.metadata.name!;
      const thawed = thawedBy.get(name) ?? [];
      const settled = decision.settled.includes(name);
      if (thawed.length === 0 && !settled) continue;
      informers.steps.observe(
        await client.patch<NodeSnapshot & KubeObject>(
          Resources.NodeSnapshot,
          step.metadata.namespace,
          name,
          {
            status: {
              thawed: withThawed(step.status?.thawed, thawed, now),
              ...(settled ? { thawPending: false } : {}),
            },
          },
          { subresource: "status" },
        ),
      );
      if (thawed.length > 0) {
        events.record(
          backup,
          "Warning",
          "Thawed",
          `node ${step.spec.node} was lost while its agent held VMs frozen; thawed ${thawed
            .map((t) => `${t.namespace}/${t.name} on ${t.node}`)
            .join(", ")}`,
        );
      }
    }
    return retry ? 10_000 : undefined;
  }

  // The filesystem behind the claim keys the Lease: two claims of one filesystem exclude each other.
  // Undefined for a backup without a shared volume.
  private async volumeId(backup: FederatedBackup): Promise<string | undefined> {
    if (!backup.spec.sharedVolume) return undefined;
    const known = this.volumeIds.get(backup.metadata.uid!);
    if (known) return known;
    const ns = backup.metadata.namespace!;
    const claim = backup.spec.sharedVolume.claimName;
    const identity = await claimFilesystemIdentity(this.deps.client, ns, claim);
    if (!identity) return `unbound:${ns}/${claim}`;
    this.volumeIds.set(backup.metadata.uid!, identity);
    return identity;
  }

  /**
   * The storage back ends of the backup's VMs (every step with a node, every round) and the state of their
   * Leases. Recomputed on every pass from the steps, so a restarted operator finds the Leases it holds.
   */
  private async storage(
    backup: FederatedBackup,
    steps: readonly NodeSnapshot[],
    volumeId: string | undefined,
  ): Promise<{ keys: string[]; lease: LeaseSetState }> {
    const nodeSteps = steps.filter((s) => !!s.spec.node);
    // A step's spec (its VMs and their claims' classes) does not change: the keys change only with the steps.
    const signature = `${volumeId ?? ""} ${backup.spec.storageGroup ?? ""} ${nodeSteps.map((s) => s.metadata.name).join(",")}`;
    const uid = backup.metadata.uid!;
    let keys = this.storageKeysSeen.cached(uid, signature);
    if (!keys) {
      const workloads = nodeSteps.flatMap((s) => s.spec.workloads ?? []);
      const classes = await this.claimClasses.of(uid, workloads);
      keys = runStorageKeys(workloads, classes, {
        ...(backup.spec.storageGroup ? { group: backup.spec.storageGroup } : {}),
        ...(volumeId ? { sharedVolumeIdentity: volumeId } : {}),
      });
      this.storageKeysSeen.remember(uid, signature, keys);
    }
    const lease = leaseSetStateOf(
      keys,
      (key) => this.leaseObject(key),
      backupOwnerId(backup),
      this.deps.clock.now(),
      this.deps.ownerActive,
    );
    return { keys, lease };
  }

  /** The Leases a pipelined step's agent watches for its turn. */
  private turnLeases(storageKeys: readonly string[]): { namespace: string; names: string[] } {
    return { namespace: this.deps.leases.namespace, names: storageKeys.map((key) => storageLeaseName(key)) };
  }

  /**
   * What the run's agents are granted: the union over its node steps (a pipelined run's also read its
   * Leases). Built again only when the steps change: it names every step and VM of the run, and each Job
   * started asks for it.
   */
  private runAccess(backup: FederatedBackup, steps: readonly NodeSnapshot[], storageKeys: readonly string[]) {
    const pipelined = pipelineSettingsOf(backup, storageKeys).lookAhead > 0;
    // A step object's spec never changes (a changed step is a new object, with a new uid).
    const signature = `${pipelined} ${storageKeys.join(",")} ${steps.map((s) => s.metadata.uid).join(",")}`;
    const uid = backup.metadata.uid!;
    return (
      this.runAccessSeen.cached(uid, signature) ??
      this.runAccessSeen.remember(
        uid,
        signature,
        buildRunAccess(runAccessOf(backup, steps, pipelined ? this.turnLeases(storageKeys) : undefined)),
      )
    );
  }

  private leaseObject(key: string): LeaseObject | undefined {
    return this.deps.informers.leases.get(`${this.deps.leases.namespace}/${storageLeaseName(key)}`);
  }

  private async gather(
    backup: FederatedBackup,
  ): Promise<BackupWorld & { storageKeys: string[]; leaseObject?: LeaseObject }> {
    const { informers, client, clock } = this.deps;
    const ns = backup.metadata.namespace!;
    const name = backup.metadata.name!;
    const phase = backup.status?.phase ?? "New";
    const ownsStep = (s: NodeSnapshot) =>
      s.metadata.namespace === ns &&
      s.metadata.labels?.[LABEL_BACKUP] === name &&
      s.spec.backupUID === backup.metadata.uid;
    // While the run is New its steps may have been created an instant ago: read them, do not trust the cache.
    // While New, steps may have been created an instant ago: read them, do not trust the cache. Later the
    // status says how many node steps exist; a cache that has not seen them all yet is not trusted either
    // (it would make a run that has not started look finished).
    const cached = phase === "New" ? [] : informers.steps.list(ownsStep);
    const known = backup.status?.progress?.nodesTotal ?? 0;
    const stepObjects =
      phase === "New" || cached.filter((s) => !!s.spec.node).length < known
        ? (
            await client.list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
              namespace: ns,
              labelSelector: `${LABEL_BACKUP}=${name}`,
            })
          ).items.filter(ownsStep)
        : cached;
    const steps: ObservedStep[] = stepObjects.map((step) => {
      const job = informers.jobs.get(`${ns}/${step.metadata.name}`);
      const extract = usesCsiCut(step) ? informers.jobs.get(`${ns}/${extractJobName(step)}`) : undefined;
      return {
        step,
        ...(job ? { job: viewJob(job as Parameters<typeof viewJob>[0]) } : {}),
        ...(extract ? { extract: viewJob(extract as Parameters<typeof viewJob>[0]) } : {}),
      };
    });

    let invalid: BackupWorld["invalid"];
    let missingNamespaces: string[] | undefined;
    if (phase === "New") {
      const sharedClaim = backup.spec.sharedVolume?.claimName;
      const sharedPvc = !sharedClaim || (await tryGet(client, Resources.PersistentVolumeClaim, ns, sharedClaim));
      // Who created the run may reach into every namespace it selects (before anything is touched).
      invalid =
        (await checkCreatorAccess(client, backup, "FederatedBackup", backupNamespaces(backup), BACKUP_ACCESS)) ??
        (backup.spec.includeSecrets
          ? ((await checkCreatorAccess(client, backup, "FederatedBackup", backupNamespaces(backup), SECRETS_ACCESS)) ??
            (await operatorSecretsRefusal(client, backupNamespaces(backup))))
          : undefined) ??
        (await this.validate(backup, !!sharedPvc));
      missingNamespaces = [];
      for (const name of new Set(backupNamespaces(backup))) {
        if (name !== ns && !(await tryGet(client, Resources.Namespace, undefined, name))) missingNamespaces.push(name);
      }
    }
    // Resolved while New; once steps exist, the location they recorded is the run's.
    const resolution =
      phase === "New" ? resolveBackupLocation(backup, (name) => informers.locations.get(`${ns}/${name}`)) : undefined;
    const recorded = recordedLocation(stepObjects);
    const location = recorded ?? (resolution && "location" in resolution ? resolution.location : undefined);
    const locationWaiting = !recorded && resolution && "waiting" in resolution ? resolution.waiting : undefined;
    const volumeId = await this.volumeId(backup);

    const mount = backup.spec.sharedVolume?.nodeMountPath;
    // The expected list is made once, at New, and everything is verified against it: read the VMIs from the
    // API server then rather than from a cache that may lag behind (a VMI it misses would never be expected).
    // Verification rounds locate missing VMs again and may use the cache.
    // Only the selected namespaces are listed, with the label selector when it can be sent.
    const vmis =
      phase === "New" ? await listSelectedVmis(client, backup) : phase === "Verifying" ? informers.vmis.list() : [];
    // Which file is whose is decided over every VM on the cluster, selected or not: a VM of another
    // namespace that names the same file makes it nobody's (see planning/file-ownership.ts). The ones
    // not listed are the cache's.
    const ownership = mount
      ? resolveFileOwnership(
          fileClaimants(
            phase === "New" ? withCached(vmis, informers.vmis.list()) : vmis,
            vmis.length ? informers.vms.list() : [],
            mount,
          ),
        )
      : new Map();
    const selected = vmis.filter((v) => inScope(v, backup.spec.workloads, ns));
    // The claims of the backup's namespace, read only when a VM of it names one (see claim-disks.ts).
    const claimObjects = selected.some((v) => v.metadata.namespace === ns && namesClaims(v))
      ? (await client.list<KubeObject & ClaimObject>(Resources.PersistentVolumeClaim, { namespace: ns })).items
      : [];
    const claims = claimObjects.map(observeClaim);
    // Without a shared volume no file is captured: a VM with hostDisks is NoSharedDisk (withoutSharedVolume).
    const workloads = selected.map((v) =>
      withDefinitionReads(
        withSkippedVolumes(
          withClaims(
            mount
              ? withOwnership(observeWorkload(v, mount), ownership)
              : withoutSharedVolume(observeWorkload(v, "/"), v),
            v,
            ns,
            claims,
          ),
          v,
        ),
        // The VirtualMachine of the instance (same name): what its agent may read for its definition.
        informers.vms.get(`${v.metadata.namespace}/${v.metadata.name}`),
        backup.spec.includeSecrets ?? false,
      ),
    );
    // Each claim's snapshot method is decided here, and recorded in the steps' specs that the agents execute.
    workloads.splice(
      0,
      workloads.length,
      ...(await withClaimMethods(client, backup, workloads, this.claimDrivers, boundVolumesOf(claimObjects))),
    );
    // VMs named explicitly without an instance: a stopped VirtualMachine is NotRunning, no VM at all NotFound.
    const absent: Array<{ namespace: string; name: string }> = [];
    if (phase === "New") {
      const running = new Set(workloads.map((w) => `${w.namespace}/${w.name}`));
      for (const n of backup.spec.workloads?.names ?? []) {
        const key = `${n.namespace ?? ns}/${n.name}`;
        if (running.has(key)) continue;
        const vm = informers.vms.get(key);
        if (vm) workloads.push(stoppedWorkload(vm));
        else absent.push({ namespace: n.namespace ?? ns, name: n.name });
      }
    }
    const failures = this.deps.settings.nodeFailures?.() ?? new Map<string, number>();
    const requested = requestsByNode(informers.pods.list());
    const nodes = informers.nodes
      .list()
      .map((n) => observeNode(n, requested.get(n.metadata.name!), failures.get(n.metadata.name!) ?? 0));

    const { keys: storageKeys, lease } = await this.storage(backup, stepObjects, volumeId);
    const leaseObject = storageKeys[0] !== undefined ? this.leaseObject(storageKeys[0]) : undefined;
    return {
      now: clock.now(),
      backup,
      steps,
      workloads,
      nodes,
      lease,
      ...(location ? { location } : {}),
      ...(locationWaiting ? { locationWaiting } : {}),
      ...(invalid ? { invalid } : {}),
      ...(missingNamespaces?.length ? { missingNamespaces } : {}),
      ...(absent.length ? { absent } : {}),
      storageKeys,
      ...(leaseObject ? { leaseObject } : {}),
    };
  }

  private async validate(backup: FederatedBackup, sharedFound: boolean): Promise<BackupWorld["invalid"]> {
    const ns = backup.metadata.namespace!;
    if (!sharedFound) {
      return {
        reason: "SharedVolumeClaimNotFound",
        message: `PersistentVolumeClaim ${ns}/${backup.spec.sharedVolume?.claimName} (spec.sharedVolume.claimName) does not exist`,
      };
    }
    // A BackupLocation's claim is checked by its controller (ClaimNotFound makes it Unavailable).
    const locationClaim = backup.spec.location?.persistentVolumeClaim?.claimName;
    if (locationClaim && !(await tryGet(this.deps.client, Resources.PersistentVolumeClaim, ns, locationClaim))) {
      return {
        reason: "LocationClaimNotFound",
        message: `PersistentVolumeClaim ${ns}/${locationClaim} (spec.location.persistentVolumeClaim.claimName) does not exist`,
      };
    }
    if (backup.spec.snapshot?.method === "CSI") {
      const cls = backup.spec.snapshot.volumeSnapshotClassName!;
      if (!(await tryGet(this.deps.client, Resources.VolumeSnapshotClass, undefined, cls))) {
        return {
          reason: "VolumeSnapshotClassNotFound",
          message: `VolumeSnapshotClass ${cls} (spec.snapshot.volumeSnapshotClassName) does not exist`,
        };
      }
    }
    return undefined;
  }

  private async act(
    backup: FederatedBackup,
    world: Awaited<ReturnType<FederatedBackupReconciler["gather"]>>,
    action: BackupAction,
  ): Promise<void> {
    const { client, leases, events, clock } = this.deps;
    const owner = backupOwnerId(backup);
    switch (action.kind) {
      case "CreateStep": {
        const created = await createIfAbsent<NodeSnapshot & KubeObject>(client, Resources.NodeSnapshot, action.step);
        if (created) {
          this.deps.informers.steps.observe(created);
          return;
        }
        const existing = await client.get<NodeSnapshot & KubeObject>(
          Resources.NodeSnapshot,
          action.step.metadata.namespace,
          action.step.metadata.name!,
        );
        if (existing.spec.backupUID !== backup.metadata.uid) {
          throw new TerminalError(`NodeSnapshot ${existing.metadata.name} belongs to another backup`);
        }
        return;
      }
      case "DeleteStep":
        await deleteIfExists(
          client,
          Resources.NodeSnapshot,
          action.step.metadata.namespace,
          action.step.metadata.name!,
        );
        return;
      case "ClaimLease":
        for (const lease of await claimStorageLeases(
          leases,
          world.storageKeys,
          (key) => this.leaseObject(key),
          { owner, node: action.node, step: action.step, now: clock.now() },
          this.deps.ownerActive,
        ))
          this.deps.informers.leases.observe(lease);
        return;
      case "ReleaseLease":
        await releaseStorageLeases(leases, world.storageKeys, owner);
        return;
      case "StartJob": {
        const turnLeases = action.waitsForTurn ? this.turnLeases(world.storageKeys) : undefined;
        // Once per run (and again only when a new round grows it), not per step: see runtime/step-access.ts.
        await this.agentAccess.grant(
          backup.metadata.uid!,
          this.runAccess(
            backup,
            world.steps.map((o) => o.step),
            world.storageKeys,
          ),
        );
        // Seen at once: a pass before the watch delivers it must not take the step's Job for one that vanished.
        // A pipelined step's agent waits for its turn: until every Lease of the run names its step.
        const turn = (turnLeases?.names ?? []).map((name) => `--turn-lease=${leases.namespace}/${name}`);
        const job = await createIfAbsent(
          client,
          Resources.Job,
          buildAgentJob(backup, action.step, this.deps.settings, turn.length > 0 ? { extraArgs: turn } : {}),
        );
        if (job) this.deps.informers.jobs.observe(job);
        return;
      }
      case "DeleteJob":
        for (const name of [action.step.metadata.name!, extractJobName(action.step)]) {
          await deleteIfExists(client, Resources.Job, action.step.metadata.namespace, name);
        }
        return;
      case "StartExtract": {
        // Restore the snapshots into claims like their sources, then extract from them on the step's node.
        const ns = action.step.metadata.namespace!;
        const claims: KubeObject[] = [];
        const sharedClaim = action.step.spec.sharedVolume?.claimName;
        if (action.step.status?.volumeSnapshot?.name && sharedClaim) {
          const shared = await client.get<KubeObject & SourceClaim>(Resources.PersistentVolumeClaim, ns, sharedClaim);
          claims.push(buildRestoredClaim(backup, action.step, shared));
        }
        const sources = new Map<string, SourceClaim>();
        for (const c of action.step.status?.claimSnapshots ?? []) {
          const source = await tryGet<KubeObject & SourceClaim>(
            client,
            Resources.PersistentVolumeClaim,
            ns,
            c.claimName,
          );
          if (source) sources.set(c.claimName, source);
        }
        claims.push(...buildRestoredClaimSnapshots(backup, action.step, sources));
        for (const claim of claims) await createIfAbsent(client, Resources.PersistentVolumeClaim, claim);
        await createIfAbsent(client, Resources.Job, buildExtractJob(backup, action.step, this.deps.settings));
        return;
      }
      case "ReleaseVolumeSnapshot": {
        const ns = action.step.metadata.namespace!;
        // The step's status holds the extract Job's report, so the Job goes too: its finished pod would
        // otherwise keep the restored claim (pvc-protection) until the backup is deleted. The snapshot first,
        // the claim last, and the step records the release after both: an interrupted pass does it again.
        // The claims' snapshots are always extracted at once, so they always go.
        const claimSnapshots = action.step.status?.claimSnapshots ?? [];
        if (action.step.spec.extractAt !== "Restore")
          await deleteIfExists(client, Resources.VolumeSnapshot, ns, volumeSnapshotName(action.step));
        // A group's members go with the group (a member alone cannot be deleted while its group exists).
        for (const g of groupSnapshotsOf(action.step))
          await deleteIfExists(client, Resources.VolumeGroupSnapshot, ns, g.name);
        for (const c of claimSnapshots) await deleteIfExists(client, Resources.VolumeSnapshot, ns, c.volumeSnapshot);
        await deleteIfExists(client, Resources.Job, ns, extractJobName(action.step));
        await deleteIfExists(client, Resources.PersistentVolumeClaim, ns, restoredClaimName(action.step));
        for (const c of claimSnapshots)
          await deleteIfExists(
            client,
            Resources.PersistentVolumeClaim,
            ns,
            restoredClaimSnapshotName(c.volumeSnapshot),
          );
        this.deps.informers.steps.observe(
          await client.patch<NodeSnapshot & KubeObject>(
            Resources.NodeSnapshot,
            ns,
            action.step.metadata.name!,
            { status: { volumeSnapshot: { released: true } } },
            { subresource: "status" },
          ),
        );
        return;
      }
      case "RecordStepPhase":
        this.deps.informers.steps.observe(
          await client.patch<NodeSnapshot & KubeObject>(
            Resources.NodeSnapshot,
            action.step.metadata.namespace,
            action.step.metadata.name!,
            {
              status: {
                phase: action.phase,
                workloads: action.step.spec.workloads?.length ?? 0,
                ...(action.step.spec.node ? { jobName: action.step.metadata.name } : {}),
                ...(action.message ? { message: action.message } : {}),
                ...(action.startTime ? { startTime: action.startTime } : {}),
                ...(action.completionTime ? { completionTime: action.completionTime } : {}),
                ...(action.thawPending ? { thawPending: true } : {}),
                ...(action.failed?.length ? { failed: action.failed } : {}),
              },
            },
            { subresource: "status" },
          ),
        );
        return;
      case "Event":
        events.record(backup, action.type, action.reason, action.message);
        return;
      case "DeleteBackup":
        await client.delete(Resources.FederatedBackup, backup.metadata.namespace, backup.metadata.name!, {
          uid: backup.metadata.uid!,
        });
        return;
    }
  }

  /**
   * The backup is being deleted. In this order, each step waiting for the one before:
   * 1. its agents stop: every Job of its steps is deleted in the foreground and waited for, since an agent
   *    may still be writing at the location or holding guests frozen;
   * 2. what its steps were granted is revoked;
   * 3. with deletionPolicy Delete, a Job removes its files at the location and its kept snapshots
   *    (ownerReferences cannot reach them), holding the shared volume's Lease like any step: no agent of
   *    another run works on the volume meanwhile;
   * 4. the Lease is given back and the finalizer removed. A cleanup that cannot run or fails is reported
   *    (FilesLeft) and does not block the deletion; FilesRemoved is said only after the Job succeeded.
   */
  private async finalize(backup: FederatedBackup): Promise<ReconcileResult | void> {
    if (!backup.metadata.finalizers?.includes(FINALIZER_CLEANUP)) return;
    const { client, informers, events, settings, clock } = this.deps;
    const ns = backup.metadata.namespace!;
    const steps = informers.steps.list(
      (s) => s.metadata.namespace === ns && s.spec.backupUID === backup.metadata.uid && !!s.spec.node,
    );
    const agentJobs = steps
      .flatMap((s) => [s.metadata.name!, extractJobName(s)])
      .flatMap((name) => informers.jobs.get(`${ns}/${name}`) ?? []);
    // Asked once; a Job already being deleted is only waited for (its pods go first, then the Job).
    for (const job of agentJobs) {
      if (!job.metadata.deletionTimestamp)
        await deleteIfExists(client, Resources.Job, ns, job.metadata.name!, "Foreground");
    }
    if (agentJobs.length > 0) return { requeueAfterMs: 1_000 };
    await this.agentAccess.revoke(
      backup.metadata.uid!,
      this.runAccess(backup, steps, backup.status?.storageBackends ?? []),
    );

    const volumeId = await this.volumeId(backup);
    const owner = backupOwnerId(backup);
    // The cleanup works on the location and the kept snapshots on the shared volume: it holds the shared
    // volume's Lease, when the backup has one.
    const cleanupKeys = volumeId ? [`volume/${volumeId}`] : [];
    if ((backup.spec.deletionPolicy ?? "Delete") === "Delete" && steps.length > 0) {
      const job = informers.jobs.get(`${ns}/${cleanupJobName(backup)}`);
      const view = job ? viewJob(job as Parameters<typeof viewJob>[0]) : undefined;
      // The location the steps recorded and wrote to (the BackupLocation may have changed or gone since).
      const location = recordedLocation(steps);
      const locationClaim = location?.source.persistentVolumeClaim?.claimName;
      const claims = await Promise.all(
        [backup.spec.sharedVolume?.claimName, locationClaim].map((c) =>
          c ? tryGet(client, Resources.PersistentVolumeClaim, ns, c) : Promise.resolve(undefined),
        ),
      );
      const claimsFound = claims.every(
        (c, i) => !!c || (i === 0 && !backup.spec.sharedVolume) || (i === 1 && !locationClaim),
      );
      if (!view && location && claimsFound) {
        const node = informers.nodes
          .list((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false)
          .map((n) => n.metadata.name!)
          .sort()[0];
        if (node) {
          const lease = leaseSetStateOf(
            cleanupKeys,
            (key) => this.leaseObject(key),
            owner,
            clock.now(),
            this.deps.ownerActive,
          );
          if (!lease.ours && !lease.free) return { requeueAfterMs: 5_000 }; // another run works on the volume
          await claimStorageLeases(
            this.deps.leases,
            cleanupKeys,
            (key) => this.leaseObject(key),
            { owner, node, step: cleanupJobName(backup), now: clock.now() },
            this.deps.ownerActive,
          );
          await createIfAbsent(client, Resources.Job, buildCleanupJob(backup, node, settings, location));
          return { requeueAfterMs: 60_000 };
        }
      }
      if (view && !view.complete && !view.failed) return { requeueAfterMs: 60_000 };
      if (view?.complete) {
        events.record(
          backup,
          "Normal",
          "FilesRemoved",
          `removed ${location?.path} at ${location ? describeLocation(location.source) : "the location"} and the kept snapshots`,
        );
      } else {
        const why = view?.failed
          ? `the cleanup Job failed: ${view.failureMessage ?? view.failureReason}`
          : "no claim, no recorded location or no Ready node to run the cleanup on";
        events.record(
          backup,
          "Warning",
          "FilesLeft",
          `${why}; ${location?.path ?? "the backup's directory"} is left at the location`,
        );
      }
    }
    // Every Lease the run may hold: its back ends' and the cleanup's.
    const { keys } = await this.storage(backup, steps, volumeId);
    await releaseStorageLeases(this.deps.leases, [...new Set([...keys, ...cleanupKeys])].sort(), owner);
    await setFinalizer(client, Resources.FederatedBackup, backup, FINALIZER_CLEANUP, false);
    this.claimClasses.forget(backup.metadata.uid!);
    this.statusWrittenAt.delete(backup.metadata.uid!);
    this.storageKeysSeen.forget(backup.metadata.uid!);
    this.runAccessSeen.forget(backup.metadata.uid!);
  }
}
