// WorkloadRestore reconciler: gather (informer caches, a few reads) → decide (pure) → act (API calls),
// then write the status if it changed. It keeps nothing between passes that the cluster does not hold:
// the plan is in the NodeRestores and the status, a stopped VM's former state in its hold annotation.
import { isFinished } from "../../api/phases.js";
import type {
  NodeObject,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
} from "../../api/kubevirt.js";
import type { FederatedBackup, NodeRestore, NodeSnapshot, WorkloadRestore } from "../../api/v1alpha1/index.js";
import { FINALIZER_RELEASE_VMS, LABEL_RESTORE } from "../../api/labels.js";
import type { KubeClient } from "../../k8s/client.js";
import type { EventSink } from "../../k8s/events.js";
import type { Informer } from "../../k8s/informer.js";
import { Resources, type ResourceType } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import { storageLeaseName, type LeaseObject, type VolumeLeases } from "../../k8s/volume-lease.js";
import { workloadKey, type PlannedClaim, type WorkloadRef } from "../../planning/index.js";
import type { Logger } from "../../telemetry/logger.js";
import type { OperatorMetrics } from "../../telemetry/metrics.js";
import type { OperatorSettings } from "../runtime/agent-job.js";
import { grantStepAccess, revokeStepAccess } from "../runtime/step-access.js";
import { fileClaimants, ownedFilesNow } from "../runtime/file-claims.js";
import { isForbidden, isNotFound } from "../../k8s/errors.js";
import { mayI } from "../../k8s/access-review.js";
import { observeClaim, restorableClaimsNow, vmNamesClaims, type ClaimObject } from "../runtime/claim-disks.js";
import { claimFilesystemIdentity } from "../runtime/volume-identity.js";
import { requestsByNode, type PodObject } from "../runtime/node-requests.js";
import { observeNode, observeWorkload } from "../runtime/observe.js";
import { viewJob } from "../runtime/job-view.js";
import { jsonEqual } from "../runtime/conditions.js";
import { RESTORE_ACCESS, restoreNamespaces } from "../runtime/creator-access.js";
import { checkCreatorAccess } from "../runtime/creator-check.js";
import { claimStorageLeases, leaseSetStateOf, releaseStorageLeases, type OwnerActive } from "../runtime/lease-state.js";
import { ClaimClasses } from "../runtime/claim-classes.js";
import { runStorageKeys } from "../runtime/storage-keys.js";
import { logAction, logPhase } from "../runtime/log-action.js";
import { createIfAbsent, deleteIfExists, setFinalizer, tryGet, writeStatus } from "../runtime/objects.js";
import type { ReconcileResult } from "../runtime/work-queue.js";
import { buildMigration, buildRestoreJob, migrationName, restoreOwnerId, stepAccessOf } from "./builders.js";
import { decideRestore, type RestoreAction, type RestoreWorld } from "./decide.js";
import { resolveWorkloads, type ResolvedWorkload } from "./resolve.js";
import { claimsNamedBy, createdClaim } from "./created-claims.js";
import { createdDisks, type CreatedDisks, type CreatedDisksProblem } from "./created-disks.js";
import { reportedDefinition } from "./vm-object-actions.js";
import { restoreTransition } from "./transitions.js";
import {
  ANNOTATION_RESTORE_HOLD,
  effectiveRunStrategy,
  holdPatch,
  pinnedNodeOf,
  readHold,
  releasePatch,
  startPatch,
  type VmView,
} from "./vm-hold.js";

export interface RestoreInformers {
  restores: Informer<WorkloadRestore & KubeObject>;
  restoreSteps: Informer<NodeRestore & KubeObject>;
  backups: Informer<FederatedBackup & KubeObject>;
  /** The backups' steps (NodeSnapshots): what each backup captured. */
  steps: Informer<NodeSnapshot & KubeObject>;
  jobs: Informer<KubeObject & { status?: unknown }>;
  vms: Informer<VirtualMachine & KubeObject>;
  vmis: Informer<VirtualMachineInstance & KubeObject>;
  migrations: Informer<VirtualMachineInstanceMigration & KubeObject>;
  nodes: Informer<NodeObject & KubeObject>;
  /** Bound, unfinished pods, slimmed to their node and request (runtime/node-requests.ts). */
  pods: Informer<PodObject>;
  leases: Informer<LeaseObject>;
}

export interface RestoreReconcilerDeps {
  client: KubeClient;
  informers: RestoreInformers;
  leases: VolumeLeases;
  events: EventSink;
  log: Logger;
  clock: { now(): number };
  settings: OperatorSettings & { leaseRenewMs: number; nodeFailures?: () => Map<string, number> };
  ownerActive: OwnerActive;
  metrics?: Pick<OperatorMetrics, "recordRestore">;
}

export function restoreIsActive(r: WorkloadRestore | undefined): boolean {
  return !!r && !r.metadata.deletionTimestamp && !isFinished(r.status?.phase);
}

type World = RestoreWorld & { storageKeys: string[]; leaseObject?: LeaseObject };

export class WorkloadRestoreReconciler {
  /** Restore UID → the shared volume's identity (a bound claim's volume does not change). */
  private readonly volumeIds = new Map<string, string>();
  private readonly claimClasses: ClaimClasses;

  constructor(private readonly deps: RestoreReconcilerDeps) {
    this.claimClasses = new ClaimClasses(deps.client);
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { informers, client } = this.deps;
    const cached = informers.restores.get(key);
    if (!cached) return;
    const restore = structuredClone(cached);
    if (restore.metadata.deletionTimestamp) return this.finalize(restore);
    const finalizers = restore.metadata.finalizers ?? [];
    const running = restoreIsActive(restore) && !restore.spec.dryRun;
    if (running !== finalizers.includes(FINALIZER_RELEASE_VMS)) {
      // Held while VMs may be stopped by this run; dropped once it is over, so a finished restore (or a
      // dry run) is deleted at once, even without an operator.
      await setFinalizer(client, Resources.WorkloadRestore, restore, FINALIZER_RELEASE_VMS, running);
      return; // the update event brings us back
    }
    const world = await this.gather(restore);
    const decision = decideRestore(world, { leaseRenewMs: this.deps.settings.leaseRenewMs });
    for (const action of decision.actions) {
      logAction(this.deps.log, restore, action, { object: world.leaseObject, owner: restoreOwnerId(restore) });
      await this.act(restore, world, action);
    }
    if (!jsonEqual(restore.status, decision.status)) {
      informers.restores.observe(await writeStatus(client, Resources.WorkloadRestore, restore, decision.status));
      logPhase(this.deps.log, restore, restore.status?.phase, decision.status.phase);
      const steps = informers.restoreSteps.list((s) => s.spec.restoreUID === restore.metadata.uid);
      const record = restoreTransition(restore, restore.status, decision.status, steps);
      if (record) this.deps.metrics?.recordRestore(record);
    }
    // Only once the status they report is written: a write that fails leaves them to the next pass.
    for (const event of decision.statusEvents) await this.act(restore, world, event);
    return decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs } : undefined;
  }

  /**
   * Deleted while it ran: the restore Jobs are stopped (and waited for: their pods may be writing), then every
   * VM the run holds is given back as it was, run strategy and node selector, and the Lease released.
   */
  private async finalize(restore: WorkloadRestore): Promise<ReconcileResult | void> {
    const { client, informers } = this.deps;
    if (!restore.metadata.finalizers?.includes(FINALIZER_RELEASE_VMS)) return;
    const ns = restore.metadata.namespace!;
    const jobs = informers.jobs.list(
      (j) => j.metadata.namespace === ns && j.metadata.labels?.[LABEL_RESTORE] === restore.metadata.name,
    );
    for (const job of jobs) {
      // Asked once; a Job already being deleted is only waited for.
      if (!job.metadata.deletionTimestamp)
        await deleteIfExists(client, Resources.Job, ns, job.metadata.name!, "Foreground");
    }
    if (jobs.length > 0) return { requeueAfterMs: 1_000 };
    // Nothing granted outlives the run: the grants in other namespaces have no owner to go with.
    // A step whose end is recorded was revoked before it was recorded: only the others still hold access.
    for (const step of informers.restoreSteps.list(
      (s) =>
        s.metadata.namespace === ns &&
        s.spec.restoreUID === restore.metadata.uid &&
        s.status?.phase !== "Succeeded" &&
        s.status?.phase !== "Failed",
    )) {
      await revokeStepAccess(client, stepAccessOf(step));
    }
    const me = restoreOwnerId(restore);
    for (const vm of informers.vms.list((v) => readHold(v)?.owner === me)) {
      const hold = readHold(vm)!;
      informers.vms.observe(
        await client.patch<VirtualMachine & KubeObject>(
          Resources.VirtualMachine,
          vm.metadata.namespace,
          vm.metadata.name!,
          releasePatch(hold, hold.runStrategy),
        ),
      );
    }
    const steps = informers.restoreSteps.list(
      (s) => s.metadata.namespace === ns && s.spec.restoreUID === restore.metadata.uid,
    );
    await releaseStorageLeases(this.deps.leases, await this.storageKeys(restore, steps), me);
    await setFinalizer(client, Resources.WorkloadRestore, restore, FINALIZER_RELEASE_VMS, false);
    this.claimClasses.forget(restore.metadata.uid!);
  }

  private async gather(restore: WorkloadRestore): Promise<World> {
    const { informers, client, clock } = this.deps;
    const ns = restore.metadata.namespace!;
    const phase = restore.status?.phase ?? "New";
    const now = clock.now();
    const owns = (s: NodeRestore) => s.metadata.namespace === ns && s.spec.restoreUID === restore.metadata.uid;
    // While New, steps may have been created an instant ago: read them rather than trust the cache; later
    // too while the cache holds fewer than the plan made (a run not started would look finished).
    const cached = phase === "New" ? [] : informers.restoreSteps.list(owns);
    const planned = new Set((restore.status?.plan ?? []).flatMap((e) => (e.restoreNode ? [e.restoreNode] : [])));
    const stepObjects =
      phase === "New" || cached.length < planned.size
        ? (await client.list<NodeRestore & KubeObject>(Resources.NodeRestore, { namespace: ns })).items.filter(owns)
        : cached;
    const steps = stepObjects.map((step) => {
      const job = informers.jobs.get(`${ns}/${step.metadata.name}`);
      return { step, ...(job ? { job: viewJob(job as Parameters<typeof viewJob>[0]) } : {}) };
    });
    // What the FreeResources, MostFreeResources and FailureRate policies rank by.
    const requested = requestsByNode(informers.pods.list());
    const failures = this.deps.settings.nodeFailures?.() ?? new Map<string, number>();
    const nodes = informers.nodes
      .list()
      .map((n) => observeNode(n, requested.get(n.metadata.name!), failures.get(n.metadata.name!) ?? 0));

    const world: World = {
      now,
      restore,
      steps,
      vms: new Map(),
      nodes,
      lease: { ours: false, free: true },
      storageKeys: [],
    };
    if (phase === "New") {
      // The plan is made once and rests on what the backups captured and where the VMs run: read them, do
      // not trust a cache that may not have caught up (with a backup that finished an instant ago, say).
      const [backups, backupSteps, vmis] = await Promise.all([
        client.list<FederatedBackup & KubeObject>(Resources.FederatedBackup, { namespace: ns }),
        client.list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, { namespace: ns }),
        client.list<VirtualMachineInstance & KubeObject>(Resources.VirtualMachineInstance),
      ]);
      world.resolution = resolveWorkloads(restore, backups.items, backupSteps.items, now);
      // Who created the run may reach into every namespace it selects (before anything is touched).
      const selected = [...world.resolution.workloads, ...world.resolution.unrestorable];
      const refused = await checkCreatorAccess(
        client,
        restore,
        "WorkloadRestore",
        restoreNamespaces(restore, selected),
        RESTORE_ACCESS,
      );
      if (refused) world.resolution = { workloads: [], unrestorable: [], invalid: refused };
      world.observed = vmis.items.map((v) => observeWorkload(v, "/"));
      // One restore Job mounts one shared volume, so the resolved VMs share its mount path.
      const mount = world.resolution.workloads[0]?.nodeMountPath;
      if (mount) world.ownedFiles = ownedFilesNow(vmis.items, informers.vms.list(), mount);
      world.ownedClaims = await this.ownedClaims(ns, world.resolution.workloads);
      world.missingVms = await this.missingVms(restore, world.resolution.workloads, vmis.items);
      return world;
    }
    const current = steps
      .map((s) => s.step)
      .sort((a, b) => a.spec.order - b.spec.order)
      .find((s) => s.status?.phase !== "Succeeded" && s.status?.phase !== "Failed");
    if (current) {
      const preparing = ["Pending", "Preparing", undefined].includes(current.status?.phase);
      const views = await Promise.all(current.spec.workloads.map((w) => this.viewVm(restore, w, preparing)));
      world.vms = new Map(current.spec.workloads.map((w, i) => [workloadKey(w), views[i]!]));
      if (preparing) world.claimsNow = await this.claimsToCreateNow(current);
      // The Job's report can end Restoring and begin Starting in one pass: looked at as soon as results are in.
      if (current.status?.results?.length) {
        world.missingReferences = await this.missingReferences(current, (key) => !!world.vms.get(key)?.exists);
      }
    }
    world.storageKeys = await this.storageKeys(restore, stepObjects);
    world.lease = leaseSetStateOf(
      world.storageKeys,
      (key) => this.leaseObject(key),
      restoreOwnerId(restore),
      now,
      this.deps.ownerActive,
    );
    const first = world.storageKeys[0];
    if (first !== undefined) {
      const leaseObject = this.leaseObject(first);
      if (leaseObject) world.leaseObject = leaseObject;
    }
    return world;
  }

  /**
   * The storage back ends of the VMs the run restores (every step): the shared volume when files are
   * restored, each claim's StorageClass, or the group spec.storageGroup names. Recomputed on every pass.
   */
  private async storageKeys(restore: WorkloadRestore, steps: readonly NodeRestore[]): Promise<string[]> {
    const withFiles = steps.find(
      (s) => !!s.spec.sharedVolume?.claimName && s.spec.workloads.some((w) => w.files?.length),
    );
    const volumeId = withFiles ? await this.volumeId(restore, withFiles) : undefined;
    const workloads = steps.flatMap((s) => s.spec.workloads);
    const classes = await this.claimClasses.of(restore.metadata.uid!, workloads);
    return runStorageKeys(workloads, classes, {
      ...(restore.spec.storageGroup ? { group: restore.spec.storageGroup } : {}),
      ...(volumeId ? { sharedVolumeIdentity: volumeId } : {}),
    });
  }

  private leaseObject(key: string): LeaseObject | undefined {
    return this.deps.informers.leases.get(`${this.deps.leases.namespace}/${storageLeaseName(key)}`);
  }

  /**
   * The claims each VM may be restored to. Captures with claims are only of VMs of the backup's namespace
   * (a backup Job mounts no other namespace's claims), which is the restore's: its Job mounts them there.
   * The claims are read only when a VM to restore names one.
   */
  private async ownedClaims(ns: string, workloads: readonly WorkloadRef[]): Promise<Map<string, PlannedClaim[]>> {
    const vms = this.deps.informers.vms.list((vm) => vm.metadata.namespace === ns);
    const wanted = new Set(workloads.map(workloadKey));
    if (!vms.some((vm) => wanted.has(workloadKey({ namespace: ns, name: vm.metadata.name! })) && vmNamesClaims(vm)))
      return new Map();
    const claims = await this.deps.client.list<KubeObject & ClaimObject>(Resources.PersistentVolumeClaim, {
      namespace: ns,
    });
    return restorableClaimsNow(vms, ns, claims.items.map(observeClaim));
  }

  /**
   * The VMs to restore whose VirtualMachine does not exist, with the disks each would be created with (or why it
   * cannot be). A VM the cache lacks is read before its absence is trusted.
   */
  private async missingVms(
    restore: WorkloadRestore,
    workloads: readonly ResolvedWorkload[],
    vmis: readonly VirtualMachineInstance[],
  ): Promise<Map<string, CreatedDisks | CreatedDisksProblem>> {
    const { informers, client } = this.deps;
    const missing: ResolvedWorkload[] = [];
    for (const w of workloads) {
      const key = workloadKey(w);
      if (!informers.vms.get(key) && !(await this.confirm(informers.vms, Resources.VirtualMachine, w))) missing.push(w);
    }
    const result = new Map<string, CreatedDisks | CreatedDisksProblem>();
    if (missing.length === 0) return result;
    const ns = restore.metadata.namespace!;
    const vms = informers.vms.list();
    const existingClaims = missing.some((w) => w.capture.claims.length > 0)
      ? new Map(
          (await client.list<KubeObject & ClaimObject>(Resources.PersistentVolumeClaim, { namespace: ns })).items
            // A claim being deleted is as good as gone: it is created anew once it is.
            .filter((c) => !c.metadata.deletionTimestamp)
            .map((c) => [c.metadata.name!, { ...(c.spec?.volumeMode ? { volumeMode: c.spec.volumeMode } : {}) }]),
        )
      : new Map<string, { volumeMode?: string }>();
    const namedClaims = claimsNamedBy(vms);
    // What every VM names on the shared volume, once per mount path (the resolved VMs share one).
    const namedFilesByMount = new Map<string, Set<string>>();
    const namedFilesAt = (mount: string) => {
      if (!namedFilesByMount.has(mount)) {
        namedFilesByMount.set(mount, new Set(fileClaimants(vmis, vms, mount).flatMap((c) => [...c.disks, ...c.extra])));
      }
      return namedFilesByMount.get(mount)!;
    };
    for (const w of missing) {
      const namedFiles = w.nodeMountPath ? namedFilesAt(w.nodeMountPath) : new Set<string>();
      result.set(
        workloadKey(w),
        createdDisks({
          restoreNamespace: ns,
          source: w.source ?? w,
          target: w,
          capture: w.capture,
          existingClaims,
          namedFiles,
          namedClaims,
          ...(restore.spec.storageClassName ? { storageClassName: restore.spec.storageClassName } : {}),
        }),
      );
    }
    return result;
  }

  /**
   * The claims the step creates as they are now (read, not cached: they are created an instant before): present,
   * or still being deleted (the deleted VM's, held by kubernetes.io/pvc-protection while a pod uses it).
   */
  private async claimsToCreateNow(step: NodeRestore): Promise<Map<string, "Present" | "Deleting">> {
    const wanted = step.spec.workloads.flatMap((w) =>
      (w.claims ?? []).filter((c) => c.create).map((c) => ({ namespace: w.namespace, name: c.claimName })),
    );
    const found = await Promise.all(
      wanted.map((c) => tryGet(this.deps.client, Resources.PersistentVolumeClaim, c.namespace, c.name)),
    );
    // One still being deleted is not the claim to write: it is waited out, then created anew.
    const states = new Map<string, "Present" | "Deleting">();
    wanted.forEach((c, i) => {
      const claim = found[i];
      if (claim) states.set(`${c.namespace}/${c.name}`, claim.metadata.deletionTimestamp ? "Deleting" : "Present");
    });
    return states;
  }

  /**
   * The Secrets and ConfigMaps that the reported definitions of the step's VMs still to create reference and that
   * do not exist. Only their metadata is read: their data never reaches the operator.
   */
  private async missingReferences(step: NodeRestore, exists: (key: string) => boolean): Promise<Map<string, string[]>> {
    const results = new Map((step.status?.results ?? []).map((r) => [workloadKey(r), r]));
    const missing = new Map<string, string[]>();
    // Secrets only where the operator may read them (chart value restore.checkSecretReferences), asked first:
    // no request is made only to be denied.
    const secretsReadable = new Map<string, Promise<boolean>>();
    const maySeeSecrets = (namespace: string) => {
      if (!secretsReadable.has(namespace)) {
        secretsReadable.set(
          namespace,
          mayI(this.deps.client, { verb: "get", group: "", resource: "secrets", namespace }),
        );
      }
      return secretsReadable.get(namespace)!;
    };
    for (const w of step.spec.workloads) {
      // Only before it is created: afterwards what it lacks is already decided.
      if (w.definition !== "Create" || exists(workloadKey(w))) continue;
      const definition = reportedDefinition(results.get(workloadKey(w)));
      if (!definition || "error" in definition) continue;
      const lacking: string[] = [];
      const kinds = [
        ["Secret", Resources.Secret, definition.references.secrets],
        ["ConfigMap", Resources.ConfigMap, definition.references.configMaps],
      ] as const;
      for (const [kind, type, references] of kinds) {
        if (kind === "Secret" && references.length > 0 && !(await maySeeSecrets(w.namespace))) continue;
        for (const reference of references) {
          const present = await this.deps.client.getMetadata(type, w.namespace, reference.name).then(
            () => true,
            (err: unknown) => {
              if (isNotFound(err)) return false;
              // Taken away since it was asked: not checked rather than the restore stopped.
              if (isForbidden(err)) return true;
              throw err;
            },
          );
          if (!present) lacking.push(`${kind} ${reference.name} (${reference.usedBy})`);
        }
      }
      if (lacking.length > 0) missing.set(workloadKey(w), lacking);
    }
    return missing;
  }

  /**
   * The VM as the caches see it. What the caches do not hold is read from the API server before anything
   * rests on its absence: a VM that does not exist fails its restore, and while the step prepares, a VMI
   * that is gone lets the restore Job start (a cache can lag behind a watch that was just opened).
   */
  private async viewVm(
    restore: WorkloadRestore,
    w: { namespace: string; name: string },
    confirmStopped: boolean,
  ): Promise<VmView> {
    const { informers } = this.deps;
    const key = `${w.namespace}/${w.name}`;
    const vm = informers.vms.get(key) ?? (await this.confirm(informers.vms, Resources.VirtualMachine, w));
    const vmi =
      informers.vmis.get(key) ??
      (confirmStopped ? await this.confirm(informers.vmis, Resources.VirtualMachineInstance, w) : undefined);
    const migration = informers.migrations.get(`${w.namespace}/${migrationName(restore, w)}`);
    const hold = vm ? readHold(vm) : undefined;
    const pinned = vm ? pinnedNodeOf(vm) : undefined;
    const m = vmi?.status?.migrationState;
    return {
      exists: !!vm,
      runStrategy: vm ? effectiveRunStrategy(vm) : "Halted",
      ...(hold ? { hold } : {}),
      ...(pinned ? { pinnedNode: pinned } : {}),
      ...(vm?.spec ? { spec: vm.spec } : {}),
      ...(vmi
        ? {
            vmi: {
              ...(vmi.status?.nodeName ? { node: vmi.status.nodeName } : {}),
              phase: vmi.status?.phase ?? "",
              migrating: !!m && !m.completed && !m.failed,
            },
          }
        : {}),
      ...(migration ? { migration: { phase: migration.status?.phase ?? "" } } : {}),
    };
  }

  /** Reads an object the cache does not hold; one that exists goes into the cache. */
  private async confirm<T extends KubeObject>(
    cache: Informer<T>,
    type: ResourceType,
    w: { namespace: string; name: string },
  ): Promise<T | undefined> {
    const found = await tryGet<T>(this.deps.client, type, w.namespace, w.name);
    if (found) {
      this.deps.log.warn("the cache lacked an object the API server has", {
        resource: type.plural,
        object: `${w.namespace}/${w.name}`,
      });
      cache.observe(found);
    }
    return found;
  }

  private async volumeId(restore: WorkloadRestore, step: NodeRestore): Promise<string> {
    const known = this.volumeIds.get(restore.metadata.uid!);
    if (known) return known;
    // The filesystem behind the claim keys the Lease: backups and restores of one filesystem share it,
    // whichever claim or namespace they reach it through.
    const claim = step.spec.sharedVolume?.claimName ?? "";
    const identity = await claimFilesystemIdentity(this.deps.client, step.metadata.namespace!, claim);
    if (!identity) return `unbound:${step.metadata.namespace}/${claim}`;
    this.volumeIds.set(restore.metadata.uid!, identity);
    return identity;
  }

  private async act(restore: WorkloadRestore, world: World, action: RestoreAction): Promise<void> {
    const { client, informers, leases, events, clock } = this.deps;
    const owner = restoreOwnerId(restore);
    const patchVm = async (vm: { namespace: string; name: string }, patch: Record<string, unknown>) => {
      informers.vms.observe(
        await client.patch<VirtualMachine & KubeObject>(Resources.VirtualMachine, vm.namespace, vm.name, patch),
      );
    };
    switch (action.kind) {
      case "CreateStep": {
        const created = await createIfAbsent(client, Resources.NodeRestore, action.step);
        if (created) informers.restoreSteps.observe(created);
        return;
      }
      case "DeleteStep":
        await deleteIfExists(client, Resources.NodeRestore, action.step.metadata.namespace, action.step.metadata.name!);
        return;
      case "ClaimLease":
        for (const lease of await claimStorageLeases(
          leases,
          world.storageKeys,
          (key) => this.leaseObject(key),
          { owner, node: action.node, step: action.step, now: clock.now() },
          this.deps.ownerActive,
        ))
          informers.leases.observe(lease);
        return;
      case "ReleaseLease":
        await releaseStorageLeases(leases, world.storageKeys, owner);
        return;
      case "HoldVm": {
        const vm = informers.vms.get(workloadKey(action.vm));
        if (vm) await patchVm(action.vm, holdPatch(vm, action.hold));
        return;
      }
      case "StartVm":
        await patchVm(action.vm, startPatch(action.node, action.runStrategy));
        return;
      case "ReleaseVm":
        await patchVm(action.vm, releasePatch(action.hold, action.runStrategy));
        return;
      case "CreateMigration": {
        const created = await createIfAbsent(
          client,
          Resources.VirtualMachineInstanceMigration,
          buildMigration(restore, action.vm, action.node),
        );
        if (created) informers.migrations.observe(created);
        return;
      }
      case "CreateClaim":
        await createIfAbsent(
          client,
          Resources.PersistentVolumeClaim,
          createdClaim(restore, action.vm, action.claim, action.node),
        );
        return;
      case "CreateVm": {
        // The standalone DataVolumes first: the VirtualMachine waits for them.
        for (const dv of action.objects.dataVolumes) {
          await createIfAbsent(client, Resources.DataVolume, dv as unknown as KubeObject);
        }
        const created = await createIfAbsent(
          client,
          Resources.VirtualMachine,
          action.objects.virtualMachine as unknown as VirtualMachine & KubeObject,
        );
        if (created) informers.vms.observe(created);
        return;
      }
      case "ReplaceSpec": {
        // The whole spec, not a merge: a field the captured spec lacks must go.
        const vm = informers.vms.get(workloadKey(action.vm));
        if (!vm) return;
        informers.vms.observe(
          await client.replace<VirtualMachine & KubeObject>(Resources.VirtualMachine, {
            ...vm,
            metadata: {
              ...vm.metadata,
              annotations: { ...vm.metadata.annotations, [ANNOTATION_RESTORE_HOLD]: JSON.stringify(action.hold) },
            },
            spec: action.spec,
          }),
        );
        return;
      }
      case "StartJob": {
        await grantStepAccess(client, stepAccessOf(action.step));
        const job = await createIfAbsent(
          client,
          Resources.Job,
          buildRestoreJob(restore, action.step, this.deps.settings),
        );
        // Seen at once, so that the next pass does not take the Job for one that disappeared.
        if (job) informers.jobs.observe(job);
        return;
      }
      case "DeleteJob":
        // Foreground: the Job stays until its pod is gone, and the VMs are started only after that.
        await deleteIfExists(
          client,
          Resources.Job,
          action.step.metadata.namespace,
          action.step.metadata.name!,
          "Foreground",
        );
        return;
      case "RecordStep":
        // The agent's access ends with its step (revoked first: an interrupted pass revokes again).
        if (action.status.phase === "Succeeded" || action.status.phase === "Failed") {
          await revokeStepAccess(client, stepAccessOf(action.step));
        }
        informers.restoreSteps.observe(
          await client.patch<NodeRestore & KubeObject>(
            Resources.NodeRestore,
            action.step.metadata.namespace,
            action.step.metadata.name!,
            { status: action.status },
            { subresource: "status" },
          ),
        );
        return;
      case "Event":
        events.record(restore, action.type, action.reason, action.message);
        return;
    }
  }
}
