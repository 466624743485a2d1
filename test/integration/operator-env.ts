// What the operator's integration tests share: the operator's RBAC from deploy/, the KubeVirt
// subresource double behind the aggregation layer, the pod runner that executes agent pods, and an
// operator started in-process as its own ServiceAccount (so RBAC applies to everything it does).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isFinished } from "../../src/api/phases.js";
import type { FederatedBackup } from "../../src/api/v1alpha1/index.js";
import { Manager } from "../../src/controllers/manager.js";
import { CREATOR_POLICY_GRACE_MS, CREATOR_POLICY_NAME } from "../../src/controllers/runtime/creator-access.js";
import { AccessResources } from "../../src/k8s/access-review.js";
import { KubeClient } from "../../src/k8s/client.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { OperatorMetrics } from "../../src/telemetry/metrics.js";
import { REPO_ROOT } from "../harness/binaries.js";
import { applyOperatorRbac } from "../harness/operator-rbac.js";
import { CsiDouble } from "../harness/csi-double.js";
import { KubeVirtDouble } from "../harness/kubevirt-double.js";
import { PodRunner } from "../harness/pod-runner.js";
import { createVolume, NODE_MOUNT_PATH, type VolumeFixture } from "../harness/workloads.js";
import type { ControlPlane } from "../harness/control-plane.js";
import { cluster, freshNamespace, onTeardown } from "./setup.js";

export const OPERATOR_NAMESPACE = "fedbackup-system";

let admin: KubeClient | undefined;
export function adminClient(): KubeClient {
  if (!admin) {
    admin = new KubeClient(cluster().kubeConfig);
    const client = admin;
    onTeardown(() => Promise.resolve(client.close()));
  }
  return admin;
}

let rbacApplied = false;
export async function ensureOperatorRbac(): Promise<void> {
  if (rbacApplied) return;
  await applyOperatorRbac(adminClient());
  rbacApplied = true;
}

let double: KubeVirtDouble | undefined;
export async function kubevirtDouble(): Promise<KubeVirtDouble> {
  if (!double) {
    const d = new KubeVirtDouble(cluster());
    await d.start();
    onTeardown(() => d.stop());
    double = d;
  }
  return double;
}

let csi: CsiDouble | undefined;
/** The snapshot controller and CSI provisioner double for hostPath volumes (test/harness/csi-double.ts). */
export async function csiDouble(): Promise<CsiDouble> {
  if (!csi) {
    const d = new CsiDouble(cluster());
    await d.start();
    onTeardown(() => d.stop());
    csi = d;
  }
  return csi;
}

let runner: PodRunner | undefined;
export async function podRunner(): Promise<PodRunner> {
  if (!runner) {
    const r = new PodRunner(cluster());
    await r.start();
    onTeardown(() => r.stop());
    runner = r;
  }
  return runner;
}

export interface RunningOperator {
  client: KubeClient;
  manager: Manager;
  /** Its metrics registry, as /metrics serves it. */
  metrics: OperatorMetrics;
  stop(): Promise<void>;
}

export async function startOperator(
  options: {
    leaseDurationSeconds?: number;
    migrationWaitMs?: number;
    /** Another control plane than the shared one (its operator RBAC applied by the caller). */
    controlPlane?: ControlPlane;
  } = {},
): Promise<RunningOperator> {
  if (!options.controlPlane) await ensureOperatorRbac();
  const kc = await (options.controlPlane ?? cluster()).serviceAccountKubeConfig(
    OPERATOR_NAMESPACE,
    "fedbackup-operator",
  );
  const metrics = new OperatorMetrics(false);
  const client = new KubeClient(kc, metrics.observeRequest);
  const manager = new Manager({
    client,
    log: createLogger("operator", process.env.FEDBACKUP_TEST_LOG_LEVEL ?? "error"),
    metrics,
    namespace: OPERATOR_NAMESPACE,
    settings: { agentImage: "fedbackup:test", imagePullPolicy: "Never" },
    leaseDurationSeconds: options.leaseDurationSeconds ?? 15,
    migrationWaitMs: options.migrationWaitMs ?? 10_000,
  });
  await manager.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await manager.stop();
    client.close();
  };
  onTeardown(stop);
  return { client, manager, metrics, stop };
}

/**
 * The operator as a separate process (`fedbackup operator`, from source) running as its ServiceAccount,
 * so a test can SIGKILL it at any moment, the way a node failure or an OOM kill would.
 */
export async function startOperatorProcess(
  extra: { args?: string[]; env?: Record<string, string> } = {},
): Promise<{ kill(): Promise<void>; child: ChildProcess }> {
  await ensureOperatorRbac();
  const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-operator-"));
  const kubeconfig = path.join(dir, "kubeconfig");
  writeFileSync(kubeconfig, await cluster().serviceAccountKubeconfigYaml(OPERATOR_NAMESPACE, "fedbackup-operator"), {
    mode: 0o600,
  });
  const child = spawn(
    "setpriv",
    [
      "--pdeathsig",
      "KILL",
      "--",
      process.execPath,
      "--import",
      "tsx",
      path.join(REPO_ROOT, "src/cli/main.ts"),
      "operator",
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${OPERATOR_NAMESPACE}`,
      "--agent-image=fedbackup:test",
      "--metrics-bind-address=0",
      "--health-bind-address=0",
      "--lease-duration=15",
      ...(extra.args ?? []),
    ],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "ignore", process.env.FEDBACKUP_TEST_LOG_LEVEL ? "inherit" : "ignore"],
      env: { ...process.env, FEDBACKUP_LOG_LEVEL: process.env.FEDBACKUP_TEST_LOG_LEVEL ?? "error", ...extra.env },
    },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  onTeardown(kill);
  return { kill, child };
}

export interface BackupEnv {
  namespace: string;
  shared: VolumeFixture;
  location: VolumeFixture;
  cleanup(): void;
}

/** A namespace with a shared volume and a backup location, both real directories. */
export async function backupEnv(prefix: string): Promise<BackupEnv> {
  const namespace = await freshNamespace(prefix);
  const root = mkdtempSync(path.join(os.tmpdir(), `fedbackup-${prefix}-`));
  const shared = await createVolume(adminClient(), namespace, "vmdisks", path.join(root, "shared"));
  const location = await createVolume(adminClient(), namespace, "backups", path.join(root, "location"));
  return { namespace, shared, location, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * The claims of a namespace whose names match, once none is left or `timeoutMs` has passed; at once if a
 * matching claim is not being deleted (nobody deleted it: waiting would not make it go). The operator deletes a finished step's restored claims in the
 * pass that records the release, but the API server removes a claim only once no pod uses it
 * (pvc-protection), and the extract Job's pod goes with the Job through the garbage collector, later.
 */
export async function claimsLeftAfterRelease(
  namespace: string,
  match: (name: string) => boolean,
  timeoutMs = 60_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = (await adminClient().list(Resources.PersistentVolumeClaim, { namespace })).items.filter((c) =>
      match(c.metadata.name!),
    );
    const kept = left.filter((c) => !c.metadata.deletionTimestamp).map((c) => c.metadata.name!);
    if (kept.length > 0 || left.length === 0 || Date.now() > deadline) return left.map((c) => c.metadata.name!);
    await sleep(200);
  }
}

/** Fails a kwok node (kwok stops keeping it Ready, its Ready condition turns False), or brings it back. */
export async function setNodeReady(node: string, ready: boolean): Promise<void> {
  await adminClient().patch(Resources.Node, undefined, node, {
    metadata: { labels: { "fedbackup.test/condition": ready ? null : "down" } },
  });
  if (ready) return cluster().waitForNodeReady(node);
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await adminClient().patch(
    Resources.Node,
    undefined,
    node,
    {
      status: {
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "NodeStatusUnknown",
            message: "simulated failure",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    },
    { subresource: "status" },
  );
}

/**
 * A FederatedBackup of the test namespace's volumes: the shared claim at NODE_MOUNT_PATH and the location
 * claim that backupEnv creates (or, given a namespace, its claims vmdisks and backups).
 */
export function backupManifest(
  where: BackupEnv | string,
  name: string,
  spec: Partial<FederatedBackup["spec"]> = {},
): FederatedBackup & KubeObject {
  const env = typeof where === "string" ? undefined : where;
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name, namespace: env?.namespace ?? (where as string) },
    spec: {
      sharedVolume: { claimName: env?.shared.claimName ?? "vmdisks", nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: env?.location.claimName ?? "backups" } },
      ...spec,
    },
  };
}

/** Waits until the FederatedBackup is in a finished phase, and returns it. */
export function backupFinished(
  namespace: string,
  name: string,
  timeoutMs = 120_000,
): Promise<FederatedBackup & KubeObject> {
  return waitFor(`FederatedBackup ${namespace}/${name} to finish`, timeoutMs, async () => {
    const fb = await adminClient().get<FederatedBackup & KubeObject>(Resources.FederatedBackup, namespace, name);
    return isFinished(fb.status?.phase) ? fb : undefined;
  });
}

/**
 * Waits until the creator policies (crds/fedbackup.io_admission-policies.yaml, installed with the control
 * plane) are older than the operator's grace period, so that a run naming other namespaces created now
 * has a creator it trusts (a fresh control plane's runs would otherwise fail with CreatorUnknown).
 */
export async function creatorPoliciesSettled(client: KubeClient = adminClient()): Promise<void> {
  const types = [
    AccessResources.MutatingAdmissionPolicy,
    AccessResources.MutatingAdmissionPolicyBinding,
    AccessResources.ValidatingAdmissionPolicy,
    AccessResources.ValidatingAdmissionPolicyBinding,
  ];
  let newest = 0;
  for (const type of types) {
    const policy = await client.get(type, undefined, CREATOR_POLICY_NAME);
    newest = Math.max(newest, Date.parse(policy.metadata.creationTimestamp ?? ""));
  }
  // Whole seconds: one more for the rounding.
  const wait = newest + CREATOR_POLICY_GRACE_MS + 1_000 - Date.now();
  if (wait > 0) await sleep(wait);
}

const clusterRbac = (plural: string, kind: string) => ({
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced: false,
});

/**
 * Grants the operator's ServiceAccount get on Secrets in every namespace, as the chart's backup.includeSecrets
 * and restore.checkSecretReferences do; returns what takes it back.
 */
export async function grantOperatorSecretReads(
  name: string,
  client: KubeClient = adminClient(),
): Promise<() => Promise<void>> {
  await client.apply(clusterRbac("clusterroles", "ClusterRole"), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name },
    rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }],
  } as KubeObject);
  await client.apply(clusterRbac("clusterrolebindings", "ClusterRoleBinding"), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
    subjects: [{ kind: "ServiceAccount", name: "fedbackup-operator", namespace: OPERATOR_NAMESPACE }],
  } as KubeObject);
  return async () => {
    await client.delete(clusterRbac("clusterrolebindings", "ClusterRoleBinding"), undefined, name).catch(() => {});
    await client.delete(clusterRbac("clusterroles", "ClusterRole"), undefined, name).catch(() => {});
  };
}

/**
 * Request counts (RequestStats.snapshot) less those of BackupLocation validations. The operator watches every
 * namespace, so other tests' locations are validated now and then, whatever a test does. Each validation of a
 * location writes its status once and makes, at most once each, the reads and the SubjectAccessReview below.
 */
export function withoutLocationValidations(counts: Record<string, number>): Record<string, number> {
  const validations = counts["PATCH backuplocations/status"] ?? 0;
  const rest: Record<string, number> = {};
  for (const [key, n] of Object.entries(counts)) {
    const left = LOCATION_VALIDATION_REQUESTS.includes(key) ? n - validations : n;
    if (left > 0) rest[key] = left;
  }
  return rest;
}

const LOCATION_VALIDATION_REQUESTS = [
  "PATCH backuplocations/status",
  "GET persistentvolumeclaims",
  "GET mutatingadmissionpolicies",
  "GET mutatingadmissionpolicybindings",
  "GET validatingadmissionpolicies",
  "GET validatingadmissionpolicybindings",
  "POST subjectaccessreviews",
  "GET secrets",
];
