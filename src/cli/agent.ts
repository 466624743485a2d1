// `fedbackup agent backup|restore --step NS/NAME`: the program of a node step's Job.
// backup reads its NodeSnapshot, captures the VMs active on this node (freeze → snapshot → thaw →
// extract with checksums) and reports into the NodeSnapshot's status. Rerun after a crash, it does not
// redo VMs whose manifest for this round is complete.
// restore reads its NodeRestore, writes the stopped VMs' disks back from their backups (each verified
// first) and reports into status.results. Rerun, it does not redo VMs an earlier attempt restored.
import { parseDuration } from "../api/duration.js";
import {
  AGENT_CLAIM_DEVICES,
  AGENT_CLAIMS_MOUNT,
  AGENT_LOCATION_MOUNT,
  AGENT_S3_CREDENTIALS_MOUNT,
  AGENT_SHARED_MOUNT,
} from "../api/labels.js";
import { objectStoreOf, parseLocationArgument } from "../agent/object-store-credentials.js";
import type { NodeRestore, NodeRestoreStatus, NodeSnapshot } from "../api/v1alpha1/index.js";
import { runNodeBackup, type NodeBackupResult } from "../agent/backup.js";
import { apiVmObjectReader } from "../agent/definition-capture.js";
import { runNodeRestore } from "../agent/node-restore.js";
import { restoredClaimSnapshotName } from "../planning/claim-snapshot-names.js";
import { freezeReportsOf, isCutWithCsi, RestoredVolumeSnapshotProvider, takeVolumeSnapshot } from "../agent/csi.js";
import { cleanupBackup } from "../agent/cleanup.js";
import { FreezeError, type Freezer, type IsActiveOnNode } from "../agent/quiesce.js";
import { vmKey } from "../agent/types.js";
import { API_USAGE_MESSAGE } from "../k8s/api-usage.js";
import { KubeClient } from "../k8s/client.js";
import { KubeVirtClient, type FreezeCallError } from "../k8s/kubevirt.js";
import { Resources } from "../k8s/resources.js";
import { parseTurnLease, waitForTurn, type TurnLease } from "../k8s/lease-turn.js";
import type { KubeObject } from "../k8s/types.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import path from "node:path";
import { parseFlags, stdio, UsageError, type Io } from "./flags.js";

export const agentUsage = `Usage: fedbackup agent backup --step NAMESPACE/NAME [flags]
       fedbackup agent restore --step NAMESPACE/NAME [flags]
       fedbackup agent cleanup --backup-path PATH [--snapshots-path PATH] [flags]

backup runs one node step of a FederatedBackup; restore writes back the disks of one node step of a
WorkloadRestore; cleanup removes a deleted backup's files at the location and its kept snapshots on the
shared volume. All normally run inside Jobs the operator creates.

Flags:
  --step NS/NAME          the NodeSnapshot (backup) or NodeRestore (restore) to carry out
  --from-snapshot         CSI method: extract from the claim restored from the step's VolumeSnapshot,
                          mounted as the shared volume, without freezing (backup)
  --backup-path PATH      the backup's directory, relative to the location root (cleanup)
  --snapshots-path PATH   the backup's snapshots, relative to the shared volume root (cleanup; none
                          for a backup without a shared volume)
  --shared-root DIR       where the shared volume is mounted (default ${AGENT_SHARED_MOUNT})
  --location-root DIR     where the backup location is mounted (default ${AGENT_LOCATION_MOUNT})
  --location JSON         the backup location, as the steps spell it (cleanup; default: the claim
                          mounted at --location-root)
  --credentials-dir DIR   where an S3 location's Secret is mounted (default ${AGENT_S3_CREDENTIALS_MOUNT})
  --claims-root DIR       where each Filesystem-mode claim is mounted, as DIR/CLAIM (backup, restore;
                          default ${AGENT_CLAIMS_MOUNT})
  --devices-root DIR      where each Block-mode claim is attached, as the device DIR/CLAIM (backup,
                          restore; default ${AGENT_CLAIM_DEVICES})
  --turn-lease NS/NAME    a pipelined backup step: cut only once this Lease names the step (repeatable,
                          one per storage Lease of the run); then report the cut made before extracting
  --kubeconfig PATH       kubeconfig (default: the pod's ServiceAccount)
  -h, --help              print this help

Bad flags exit with code 2, a step or cleanup that fails with code 1.
`;

const COMMANDS = ["backup", "restore", "cleanup"] as const;
/** Flags that only some commands take. */
const FLAG_COMMANDS: Record<string, readonly string[]> = {
  step: ["backup", "restore"],
  "from-snapshot": ["backup"],
  "turn-lease": ["backup"],
  "backup-path": ["cleanup"],
  location: ["cleanup"],
  "snapshots-path": ["cleanup"],
  "claims-root": ["backup", "restore"],
  "devices-root": ["backup", "restore"],
};

/**
 * Runs `fedbackup agent COMMAND [flags]`. Bad flags throw a UsageError before anything starts; a step
 * that fails is logged and exits 1.
 */
export async function runAgent(argv: string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h") {
    io.out(agentUsage);
    return 0;
  }
  if (command === undefined || command.startsWith("-"))
    throw new UsageError("a command is needed first: backup, restore or cleanup");
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new UsageError(`unknown command "${command}": use backup, restore or cleanup`);
  const usage = (message: string) => new UsageError(message, `agent ${command}`);
  let values;
  try {
    ({ values } = parseFlags({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        step: { type: "string" },
        "from-snapshot": { type: "boolean" },
        "turn-lease": { type: "string", multiple: true },
        "backup-path": { type: "string" },
        "snapshots-path": { type: "string" },
        "shared-root": { type: "string", default: AGENT_SHARED_MOUNT },
        "location-root": { type: "string", default: AGENT_LOCATION_MOUNT },
        location: { type: "string" },
        "credentials-dir": { type: "string", default: AGENT_S3_CREDENTIALS_MOUNT },
        // No default here, so that giving them to another command is refused; the defaults apply in backup and restore.
        "claims-root": { type: "string" },
        "devices-root": { type: "string" },
        kubeconfig: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw err instanceof UsageError ? usage(err.message) : err;
  }
  if (values.help) {
    io.out(agentUsage);
    return 0;
  }
  for (const [flag, commands] of Object.entries(FLAG_COMMANDS)) {
    if (values[flag as keyof typeof values] !== undefined && !commands.includes(command))
      throw usage(`--${flag} is not a flag of agent ${command}`);
  }
  if (command === "cleanup") {
    // Without --snapshots-path (a backup without a shared volume) nothing on a shared volume is touched.
    if (!values["backup-path"]) throw usage("--backup-path is required");
    let location;
    try {
      location = values.location ? parseLocationArgument(values.location) : undefined;
    } catch (err) {
      throw usage(err instanceof Error ? err.message : String(err));
    }
    const objectStore = location && (await objectStoreOf(location, values["credentials-dir"]));
    const removed = await cleanupBackup({
      locationRoot: values["location-root"],
      ...(objectStore ? { objectStore } : {}),
      sharedRoot: values["shared-root"],
      backupPath: values["backup-path"],
      ...(values["snapshots-path"] ? { snapshotsPath: values["snapshots-path"] } : {}),
    });
    createLogger("agent").info("backup files removed", { removed });
    return 0;
  }
  if (values.step === undefined) throw usage("--step NAMESPACE/NAME is required");
  if (!/^[^/]+\/[^/]+$/.test(values.step)) throw usage(`--step: "${values.step}" is not NAMESPACE/NAME`);
  const [namespace, name] = values.step.split("/") as [string, string];
  let turnLeases: TurnLease[];
  try {
    turnLeases = (values["turn-lease"] ?? []).map(parseTurnLease);
  } catch (err) {
    throw usage(`--turn-lease: ${err instanceof Error ? err.message : String(err)}`);
  }
  const log = createLogger("agent").child({ step: values.step });
  const client = KubeClient.load(values.kubeconfig);
  const ctx: StepContext = {
    client,
    namespace,
    name,
    log,
    sharedRoot: values["shared-root"],
    locationRoot: values["location-root"],
    credentialsDir: values["credentials-dir"],
    claimsRoot: values["claims-root"] ?? AGENT_CLAIMS_MOUNT,
    devicesRoot: values["devices-root"] ?? AGENT_CLAIM_DEVICES,
    fromSnapshot: values["from-snapshot"] ?? false,
    turnLeases,
  };
  try {
    await (command === "backup" ? backupStep : restoreStep)(ctx);
    return 0;
  } catch (err) {
    log.error("step failed", { error: err instanceof Error ? err.message : String(err) });
    return 1;
  } finally {
    log.info(API_USAGE_MESSAGE, { requests: client.usage.summary() });
    client.close();
  }
}

interface StepContext {
  client: KubeClient;
  /** The step object's namespace and name. */
  namespace: string;
  name: string;
  log: Logger;
  sharedRoot: string;
  locationRoot: string;
  /** Where an S3 location's credentials Secret is mounted. */
  credentialsDir: string;
  /** Where the step's Job mounts Filesystem-mode claims and attaches Block-mode ones. */
  claimsRoot: string;
  devicesRoot: string;
  fromSnapshot: boolean;
  /** The Leases that say when this pipelined step may cut (none: it cuts at once). */
  turnLeases: TurnLease[];
}

// FEDBACKUP_NODE comes from the pod's spec.nodeName: a Job scheduled elsewhere must not act for the step's node.
function stepNode(specNode: string | undefined): string {
  const node = process.env.FEDBACKUP_NODE || specNode!;
  if (specNode && node !== specNode) throw new Error(`this step belongs to node ${specNode}, not ${node}`);
  return node;
}

async function backupStep(ctx: StepContext): Promise<void> {
  const { client, namespace, name, log } = ctx;
  const step = await client.get<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, namespace, name);
  const node = stepNode(step.spec.node);
  const objectStore = await objectStoreOf(step.spec.location, ctx.credentialsDir);
  const store = objectStore ? { objectStore } : {};
  const kubevirt = new KubeVirtClient(client);
  const freezer: Freezer = {
    freeze: async (vm, unfreezeTimeoutSeconds) => {
      try {
        await kubevirt.freeze(vm.namespace, vm.name, unfreezeTimeoutSeconds);
      } catch (err) {
        const e = err as FreezeCallError;
        throw new FreezeError(e.failure === "NotFound" ? "NotRunning" : e.failure, e.message);
      }
    },
    unfreeze: (vm) => kubevirt.unfreeze(vm.namespace, vm.name),
  };
  const isActiveOnNode: IsActiveOnNode = async (vm) => {
    const vmi = await kubevirt.getInstance(vm.namespace, vm.name);
    if (!vmi) return { active: false, reason: "NotRunning", message: "the VirtualMachineInstance no longer exists" };
    if (vmi.status?.phase !== "Running")
      return { active: false, reason: "NotRunning", message: `phase ${vmi.status?.phase ?? "unknown"}` };
    if (vmi.status.nodeName !== node)
      return { active: false, reason: "Migrated", message: `now active on node ${vmi.status.nodeName}` };
    const m = vmi.status.migrationState;
    if (m && !m.completed && !m.failed && m.targetNode && m.targetNode !== node) {
      return { active: false, reason: "Migrated", message: `migrating to node ${m.targetNode}` };
    }
    return { active: true };
  };
  const s = step.spec;
  const timing = {
    freezeTimeoutMs: parseDuration(s.snapshot.freezeTimeout),
    maxFreezeMs: parseDuration(s.snapshot.maxFreeze),
  };
  const fromSnapshot = ctx.fromSnapshot;
  // A pipelined step waits for its turn (the run's Leases naming it) before it freezes anything, and says
  // when its cut is made, so that the operator hands the turn on while this step extracts.
  const turn =
    ctx.turnLeases.length > 0 && !fromSnapshot
      ? {
          wait: async () => {
            log.info("waiting for this node's turn to cut", { leases: ctx.turnLeases.map((l) => l.name) });
            await waitForTurn(client, ctx.turnLeases, node, name);
            log.info("this node's turn to cut has come");
          },
          cutMade: async () => {
            await client.patch(
              Resources.NodeSnapshot,
              namespace,
              name,
              { status: { cutCompletionTime: new Date().toISOString() } },
              { subresource: "status" },
            );
            log.info("cut made; the turn is handed on while this step extracts");
          },
        }
      : undefined;
  const clock = { now: () => Date.now() };
  // Each VM's definition is read with this step's token (get by name on what the step names).
  const vmObjects = apiVmObjectReader(client);
  // What every runNodeBackup of this step is given (the CSI extract adds its snapshot provider).
  const backupDeps = { freezer, isActiveOnNode, clock, log, vmObjects, ...store, ...(turn ? { turn } : {}) };
  const plannedOf = (w: NonNullable<typeof s.workloads>[number], readFrom?: (claim: string) => string | undefined) => ({
    namespace: w.namespace,
    name: w.name,
    uid: w.uid ?? "",
    files: w.files,
    ...(w.skippedVolumes?.length ? { skippedVolumes: w.skippedVolumes } : {}),
    ...(w.dataVolumes?.length ? { dataVolumes: w.dataVolumes } : {}),
    ...(s.includeSecrets && w.secrets?.length ? { secrets: w.secrets } : {}),
    ...(w.claims?.length
      ? {
          claims: w.claims.map((c) => {
            const from = readFrom?.(c.claimName);
            return {
              volume: c.volume,
              claimName: c.claimName,
              ...(c.sourceKind ? { sourceKind: c.sourceKind } : {}),
              volumeMode: c.volumeMode,
              // With method CSI every claim is cut with CSI (the operator left out those that cannot be).
              snapshotMethod: s.snapshot.method === "CSI" ? ("CSI" as const) : (c.snapshotMethod ?? "Copy"),
              ...(c.why ? { why: c.why } : {}),
              ...(from ? { readFrom: from } : {}),
              ...(c.accessModes ? { accessModes: c.accessModes } : {}),
              ...(c.storageClassName ? { storageClassName: c.storageClassName } : {}),
              ...(c.sizeBytes !== undefined ? { sizeBytes: c.sizeBytes } : {}),
            };
          }),
        }
      : {}),
  });
  const plan = (
    workloads: NonNullable<typeof s.workloads>,
    extractAt: typeof s.extractAt,
    readFrom?: (ns: string, vm: string, claim: string) => string | undefined,
  ) => ({
    // The step lives in its backup's namespace; namespace, name and uid key the backup's snapshots.
    backup: { namespace, name: s.backupName, uid: s.backupUID },
    node,
    round: s.round,
    method: s.snapshot.method === "CSI" ? ("Auto" as const) : s.snapshot.method,
    quiesce: s.snapshot.quiesce,
    ...timing,
    extractAt,
    sharedRoot: ctx.sharedRoot,
    locationRoot: ctx.locationRoot,
    claimsRoot: ctx.claimsRoot,
    devicesRoot: ctx.devicesRoot,
    backupPath: s.location.path,
    ...(s.includeSecrets ? { includeSecrets: true } : {}),
    workloads: workloads.map((w) => plannedOf(w, readFrom && ((claim) => readFrom(w.namespace, w.name, claim)))),
  });
  const locationPath = (p: string) => path.posix.join(s.location.path, p);
  const capturedEntries = (result: NodeBackupResult) =>
    result.captured.map((c) => ({
      namespace: c.namespace,
      name: c.name,
      uid: c.uid,
      bytes: c.bytes,
      files: c.files,
      indication: c.indication,
      freezeWindowMs: c.freezeWindowMs,
      manifest: locationPath(c.manifestPath),
      ...(c.sha256 ? { sha256: c.sha256 } : {}),
      definition: c.definition,
      ...(c.secrets !== undefined ? { secrets: c.secrets } : {}),
    }));
  const failedEntries = (failed: readonly { namespace: string; name: string; reason: string; message?: string }[]) =>
    failed.map((f) => ({ namespace: f.namespace, name: f.name, reason: f.reason, message: f.message }));
  const cutVms = (s.workloads ?? []).filter((w) => isCutWithCsi(step, w));

  if (!fromSnapshot && cutVms.length > 0) {
    // First Job of a CSI step (see src/agent/csi.ts): the cut points of the VMs cut with CSI; the step's
    // other VMs are captured here as any step's are. The extract Job reports the rest, and `capturedCount`.
    await turn?.wait();
    const taken = await takeVolumeSnapshot(step, timing, { client, freezer, isActiveOnNode, clock, log });
    const others = (s.workloads ?? []).filter((w) => !isCutWithCsi(step, w));
    const rest = others.length > 0 ? await runNodeBackup(plan(others, s.extractAt), backupDeps) : undefined;
    const captured = rest ? capturedEntries(rest) : [];
    await client.patch(
      Resources.NodeSnapshot,
      namespace,
      name,
      {
        status: {
          snapshotMethod: s.snapshot.method === "CSI" || !rest ? "CSI" : rest.method,
          failed: failedEntries([...taken.failed, ...(rest?.failed ?? [])]),
          captured,
          // Nothing to extract: this Job's report is the step's whole report.
          ...(taken.volumeSnapshot
            ? { volumeSnapshot: taken.volumeSnapshot, claimSnapshots: taken.claimSnapshots }
            : { capturedCount: captured.length }),
        },
      },
      { subresource: "status" },
    );
    log.info("snapshot taken", {
      volumeSnapshot: taken.volumeSnapshot?.name,
      claimSnapshots: taken.claimSnapshots.length,
      failed: taken.failed.length,
      captured: captured.length,
    });
    return;
  }
  const taken = fromSnapshot ? step.status?.volumeSnapshot : undefined;
  const claimSnapshots = fromSnapshot ? (step.status?.claimSnapshots ?? []) : [];
  if (fromSnapshot && !taken?.name && claimSnapshots.length === 0)
    throw new Error("the step reports no VolumeSnapshot to extract from");
  const inSnapshot = new Set((taken?.workloads ?? []).map((w) => `${w.namespace}/${w.name}`));
  // Each CSI claim is read from the claim restored from its snapshot, mounted under that claim's name.
  const restoredOf = new Map(
    claimSnapshots.map((c) => [`${c.namespace}/${c.name}/${c.claimName}`, restoredClaimSnapshotName(c.volumeSnapshot)]),
  );
  const result: NodeBackupResult = await runNodeBackup(
    plan(
      (s.workloads ?? []).filter((w) => !taken || inSnapshot.has(`${w.namespace}/${w.name}`)),
      // Claims are always extracted at once; only the shared volume's snapshot can be kept for a restore.
      taken && !taken.name ? "Backup" : s.extractAt,
      taken ? (ns, vm, claim) => restoredOf.get(`${ns}/${vm}/${claim}`) : undefined,
    ),
    {
      ...backupDeps,
      ...(taken
        ? {
            snapshotProvider: new RestoredVolumeSnapshotProvider(
              { namespace, name: taken.name ?? name },
              ctx.sharedRoot,
            ),
            frozenReports: freezeReportsOf(taken),
          }
        : {}),
    },
  );
  // The snapshot Job's report (the VMs it captured or failed) is kept beside the extract Job's.
  const before = taken ? step.status : undefined;
  const captured = [...(before?.captured ?? []), ...capturedEntries(result)];
  await client.patch(
    Resources.NodeSnapshot,
    namespace,
    name,
    {
      status: {
        snapshotMethod: result.method,
        capturedCount: captured.length,
        captured,
        failed: failedEntries([...(before?.failed ?? []), ...result.failed]),
      },
    },
    { subresource: "status" },
  );
  log.info("step done", { captured: result.captured.length, failed: result.failed.length, method: result.method });
}

async function restoreStep(ctx: StepContext): Promise<void> {
  const { client, namespace, name, log } = ctx;
  const step = await client.get<NodeRestore & KubeObject>(Resources.NodeRestore, namespace, name);
  const node = stepNode(step.spec.node);
  const objectStore = await objectStoreOf(step.spec.location, ctx.credentialsDir);
  // VMs with an outcome are the operator's to decide: a rerun of the Job must not write them again.
  const decided = new Set((step.status?.outcomes ?? []).map(vmKey));
  const previous = step.status?.results ?? [];
  // status.results is replaced as a whole: the decided VMs keep their entries.
  const kept = previous.filter((r) => decided.has(vmKey(r)));
  const kubevirt = new KubeVirtClient(client);
  const abort = new AbortController();
  const stop = (signal: NodeJS.Signals) => abort.abort(new Error(`interrupted by ${signal}`));
  process.on("SIGTERM", stop).on("SIGINT", stop);
  try {
    const results = await runNodeRestore(
      {
        node,
        sharedRoot: ctx.sharedRoot,
        locationRoot: ctx.locationRoot,
        ...(objectStore ? { objectStore } : {}),
        claimsRoot: ctx.claimsRoot,
        devicesRoot: ctx.devicesRoot,
        workloads: step.spec.workloads
          .filter((w) => !decided.has(vmKey(w)))
          // No `files` or `claims`: nothing may be written there for that VM (a backup that has some fails
          // with ForeignFile).
          .map((w) => ({
            namespace: w.namespace,
            name: w.name,
            backupPath: w.backupPath,
            files: w.files ?? [],
            claims: (w.claims ?? []).map((c) => ({
              volume: c.volume,
              claimName: c.claimName,
              volumeMode: c.volumeMode,
              ...(c.capturedClaimName ? { capturedClaimName: c.capturedClaimName } : {}),
            })),
            ...(w.source ? { source: { namespace: w.source.namespace, name: w.source.name } } : {}),
            ...(w.renamedFiles?.length ? { renamedFiles: w.renamedFiles } : {}),
            ...(w.reportDefinition ? { reportDefinition: true } : {}),
          })),
        previous,
        signal: abort.signal,
      },
      {
        runningOn: async (vm) => {
          const vmi = await kubevirt.getInstance(vm.namespace, vm.name);
          return vmi && (vmi.status?.nodeName ?? "");
        },
        report: async (results) => {
          const status: NodeRestoreStatus = { results: [...kept, ...results] };
          await client.patch(Resources.NodeRestore, namespace, name, { status }, { subresource: "status" });
        },
        log,
      },
    );
    log.info("step done", {
      restored: results.filter((r) => r.restored).length,
      failed: results.filter((r) => !r.restored).length,
    });
  } finally {
    process.off("SIGTERM", stop).off("SIGINT", stop);
  }
}
