// Who may back up or restore what, against the real API server: the admission policies shipped in crds/
// (the CEL authorizer on creation, the creator recorded by a mutating policy and kept unchanged) and the
// operator's own re-check with SubjectAccessReviews, as ServiceAccounts with real tokens.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as yaml from "js-yaml";
import type { FederatedBackup, WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import {
  ANNOTATION_CREATED_BY,
  CREATOR_POLICY_GRACE_MS,
  CREATOR_POLICY_NAME,
  lastWritten,
  parseCreator,
  type PolicyObject,
} from "../../src/controllers/runtime/creator-access.js";
import { ANNOTATION_RESTORE_HOLD } from "../../src/controllers/workloadrestore/vm-hold.js";
import { AccessResources } from "../../src/k8s/access-review.js";
import { KubeClient } from "../../src/k8s/client.js";
import { ApiError } from "../../src/k8s/errors.js";
import { Resources, resourcePath, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { REPO_ROOT } from "../harness/binaries.js";
import { SimulatedVmController, type VirtualMachine } from "../harness/kubevirt-vms.js";
import { createVirtualMachine, NODE_MOUNT_PATH } from "../harness/workloads.js";
import {
  adminClient,
  backupEnv,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
  type RunningOperator,
} from "./operator-env.js";
import { cluster, freshNamespace } from "./setup.js";

type Backup = FederatedBackup & KubeObject;
type Restore = WorkloadRestore & KubeObject;
type Condition = { type: string; status: string; reason: string; message: string };
const FINISHED = ["Completed", "PartiallyFailed", "Failed"];
const NAMESPACE_ACCESS = "fedbackup.io-namespace-access";

const POLICIES = yaml.loadAll(
  readFileSync(path.join(REPO_ROOT, "crds/fedbackup.io_admission-policies.yaml"), "utf8"),
) as KubeObject[];
const ROLE: ResourceType = {
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural: "roles",
  kind: "Role",
  namespaced: true,
};
const TYPES: Record<string, ResourceType> = {
  MutatingAdmissionPolicy: AccessResources.MutatingAdmissionPolicy,
  MutatingAdmissionPolicyBinding: AccessResources.MutatingAdmissionPolicyBinding,
  ValidatingAdmissionPolicy: AccessResources.ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding: AccessResources.ValidatingAdmissionPolicyBinding,
};

function policyObject(kind: string, name: string): KubeObject {
  const found = POLICIES.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `crds/ has no ${kind} ${name}`);
  return found;
}

/** Removes a binding shipped in crds/ for the duration of `body`, then puts it back as crds/ has it. */
async function withoutBindings(bindings: Array<[kind: string, name: string]>, body: () => Promise<void>) {
  for (const [kind, name] of bindings) await adminClient().delete(TYPES[kind]!, undefined, name);
  try {
    await body();
  } finally {
    for (const [kind, name] of bindings) {
      await adminClient().apply(TYPES[kind]!, policyObject(kind, name), { fieldManager: "fedbackup-harness" });
    }
  }
}

/** The user's kubeconfig's client, for a ServiceAccount of `namespace` with a token minted for the test. */
async function serviceAccountClient(namespace: string, name: string): Promise<KubeClient> {
  return new KubeClient(await cluster().serviceAccountKubeConfig(namespace, name));
}

/**
 * A ServiceAccount `name` of `home` that may, in each of `namespaces`, create FederatedBackups and
 * WorkloadRestores, freeze VMs and update VirtualMachines (a Role and RoleBinding in each).
 */
async function tenantUser(home: string, name: string, namespaces: string[]): Promise<KubeClient> {
  const admin = adminClient();
  await admin.create(Resources.ServiceAccount, {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name, namespace: home },
  });
  for (const namespace of namespaces) {
    await admin.apply(ROLE, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: `${name}-vm-admin`, namespace },
      rules: [
        {
          apiGroups: ["fedbackup.io"],
          resources: ["federatedbackups", "workloadrestores"],
          verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {
          apiGroups: ["subresources.kubevirt.io"],
          resources: ["virtualmachineinstances/freeze", "virtualmachineinstances/unfreeze"],
          verbs: ["update"],
        },
        { apiGroups: ["kubevirt.io"], resources: ["virtualmachines"], verbs: ["get", "list", "update", "patch"] },
        { apiGroups: ["kubevirt.io"], resources: ["virtualmachineinstances"], verbs: ["get", "list"] },
      ],
    } as KubeObject);
    await admin.apply(Resources.RoleBinding, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: `${name}-vm-admin`, namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${name}-vm-admin` },
      subjects: [{ kind: "ServiceAccount", name, namespace: home }],
    } as KubeObject);
  }
  return serviceAccountClient(home, name);
}

function backupManifest(
  env: BackupEnv,
  name: string,
  spec: Partial<FederatedBackup["spec"]>,
  annotations?: Record<string, string>,
): Backup {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name, namespace: env.namespace, ...(annotations ? { annotations } : {}) },
    spec: {
      sharedVolume: { claimName: env.shared.claimName, nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: env.location.claimName } },
      snapshot: { method: "Copy" },
      ...spec,
    },
  };
}

function restoreManifest(env: BackupEnv, name: string, spec: Partial<WorkloadRestore["spec"]>): Restore {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "WorkloadRestore",
    metadata: { name, namespace: env.namespace },
    spec: { backupRef: { name: "cross" }, ...spec },
  };
}

/** Creates the object; with `dryRun` the API server admits it (every admission policy runs) but stores nothing. */
function create<T extends KubeObject>(client: KubeClient, type: ResourceType, obj: T, dryRun = false): Promise<T> {
  return client.request<T>("POST", resourcePath(type, obj.metadata.namespace), {
    body: obj,
    ...(dryRun ? { query: { dryRun: "All" } } : {}),
  });
}

async function rejected(attempt: Promise<unknown>): Promise<ApiError> {
  try {
    await attempt;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  assert.fail("the API server accepted the request");
}

async function finished<T extends Backup | Restore>(type: ResourceType, namespace: string, name: string): Promise<T> {
  return waitFor(`${type.kind} ${namespace}/${name} to finish`, 120_000, async () => {
    const o = await adminClient().get<T>(type, namespace, name);
    return FINISHED.includes(o.status?.phase ?? "") ? o : undefined;
  });
}

const condition = (o: Backup | Restore, type: string): Condition | undefined =>
  (o.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

/** The Warning Events the operator recorded for the object, by reason, once there is one (and a second later). */
async function warnings(o: KubeObject): Promise<string[]> {
  const read = async () => {
    const events = await adminClient().list<
      KubeObject & { type: string; reason: string; regarding?: { uid?: string } }
    >(Resources.Event, { namespace: o.metadata.namespace });
    return events.items.filter((e) => e.regarding?.uid === o.metadata.uid && e.type === "Warning").map((e) => e.reason);
  };
  await waitFor(`a Warning Event for ${o.metadata.name}`, 10_000, async () =>
    (await read()).length ? true : undefined,
  );
  await sleep(1_000);
  return read();
}

describe("Who may back up or restore what", function () {
  let env: BackupEnv;
  /** Another tenant's namespace, with VMs whose disks are on the same shared volume. */
  let other: string;
  /** May freeze and update VMs in env.namespace only. */
  let tenant: KubeClient;
  /** May freeze and update VMs in env.namespace and in other. */
  let ops: KubeClient;
  let sim: SimulatedVmController;
  let operator: RunningOperator | undefined;

  before(async function () {
    this.timeout(120_000);
    env = await backupEnv("own");
    other = await freshNamespace("other");
    await kubevirtDouble();
    await podRunner();
    sim = new SimulatedVmController(adminClient());
    await sim.start();
    await createVirtualMachine(adminClient(), env.namespace, env.shared.hostDir, { name: "web", node: "node-b" });
    await createVirtualMachine(adminClient(), other, env.shared.hostDir, { name: "db", node: "node-b" });
    await createVirtualMachine(adminClient(), other, env.shared.hostDir, { name: "cache", node: "node-c" });
    tenant = await tenantUser(env.namespace, "tenant", [env.namespace]);
    ops = await tenantUser(env.namespace, "ops", [env.namespace, other]);
    // The operator trusts the creator record of resources created well after the creator policies were
    // installed (CREATOR_POLICY_GRACE_MS): the control plane may have started an instant ago.
    const written = await Promise.all(
      (
        [
          "MutatingAdmissionPolicy",
          "MutatingAdmissionPolicyBinding",
          "ValidatingAdmissionPolicy",
          "ValidatingAdmissionPolicyBinding",
        ] as const
      ).map(
        async (kind) =>
          lastWritten(
            await adminClient().get<KubeObject & PolicyObject>(TYPES[kind]!, undefined, CREATOR_POLICY_NAME),
          ) ?? 0,
      ),
    );
    const settled = Math.max(...written) + CREATOR_POLICY_GRACE_MS + 2_000;
    await waitFor("the creator policies to be older than the grace", 30_000, () =>
      Date.now() > settled ? true : undefined,
    );
  });

  after(async function () {
    this.timeout(60_000);
    await operator?.stop();
    await sim?.stop();
    tenant?.close();
    ops?.close();
    env?.cleanup();
  });

  /** VMs of a namespace that no run has stopped, held or frozen since `since`. */
  async function assertUntouched(namespace: string, names: string[], since: number): Promise<void> {
    const double = await kubevirtDouble();
    assert.deepEqual(
      double.callsFor(namespace).filter((c) => c.at >= since),
      [],
      `VMs of ${namespace} were frozen or thawed`,
    );
    for (const name of names) {
      const vm = await adminClient().get<VirtualMachine>(Resources.VirtualMachine, namespace, name);
      assert.equal(vm.spec.runStrategy, "Always", `${namespace}/${name} was stopped`);
      assert.equal(vm.metadata.annotations?.[ANNOTATION_RESTORE_HOLD], undefined, `${namespace}/${name} is held`);
      assert.deepEqual(
        sim.history(namespace, name).filter((h) => h.at >= since),
        [],
        `${namespace}/${name} was stopped or moved`,
      );
      await adminClient().get(Resources.VirtualMachineInstance, namespace, name);
    }
  }

  it("refuses a user with rights in their namespace only a FederatedBackup that selects another's VMs, naming it", async () => {
    for (const workloads of [
      { namespaces: [other] },
      { namespaces: [env.namespace, other], selector: { matchLabels: { app: "demo" } } },
      { names: [{ name: "web" }, { namespace: other, name: "db" }] },
    ]) {
      const err = await rejected(
        create(tenant, Resources.FederatedBackup, backupManifest(env, "sneak", { workloads })),
      );
      assert.equal(err.status, 403, err.message);
      assert.match(err.message, new RegExp(`ValidatingAdmissionPolicy '${NAMESPACE_ACCESS}'`));
      assert.match(
        err.message,
        new RegExp(`system:serviceaccount:${env.namespace}:tenant may not do so in namespace ${other}$`),
      );
      assert.match(err.message, /may only select VMs in namespaces where the user who creates it may freeze them/);
    }
  });

  it("refuses them a WorkloadRestore that names another namespace's VMs, in workloads or in groups", async () => {
    for (const spec of [
      { workloads: [{ namespace: other, name: "db" }] },
      {
        workloads: [{ namespace: env.namespace, name: "web" }],
        groups: [
          {
            name: "app",
            workloads: [
              { namespace: env.namespace, name: "web" },
              { namespace: other, name: "db" },
            ],
          },
        ],
      },
    ]) {
      const err = await rejected(create(tenant, Resources.WorkloadRestore, restoreManifest(env, "sneak", spec)));
      assert.equal(err.status, 403, err.message);
      assert.match(err.message, new RegExp(`tenant may not do so in namespace ${other}$`));
      assert.match(err.message, /update VirtualMachines \(update virtualmachines in kubevirt\.io\)/);
    }
  });

  it("lets them select the VMs of their own namespace, and a cluster admin those of any namespace", async () => {
    const accepted: Array<[ResourceType, KubeObject]> = [];
    try {
      for (const [client, type, obj] of [
        [
          tenant,
          Resources.FederatedBackup,
          backupManifest(env, "own-ns", { workloads: { namespaces: [env.namespace] } }),
        ],
        [
          tenant,
          Resources.FederatedBackup,
          backupManifest(env, "own-names", { workloads: { names: [{ name: "web" }] } }),
        ],
        [tenant, Resources.FederatedBackup, backupManifest(env, "own-default", {})],
        [
          tenant,
          Resources.WorkloadRestore,
          restoreManifest(env, "own", { workloads: [{ namespace: env.namespace, name: "web" }] }),
        ],
        [
          adminClient(),
          Resources.FederatedBackup,
          backupManifest(env, "admin", { workloads: { namespaces: [other, "a-third"] } }),
        ],
        [
          adminClient(),
          Resources.WorkloadRestore,
          restoreManifest(env, "admin", { workloads: [{ namespace: other, name: "db" }] }),
        ],
      ] as Array<[KubeClient, ResourceType, KubeObject]>) {
        accepted.push([type, await create(client, type, obj)]);
      }
    } finally {
      // No operator runs yet: nothing holds them.
      for (const [type, o] of accepted) await adminClient().delete(type, o.metadata.namespace, o.metadata.name!);
    }
    assert.equal(accepted.length, 6);
  });

  it("checks up to 16 other namespaces one by one, naming the first refused; more need the right everywhere", async () => {
    const zz = Array.from({ length: 16 }, (_, i) => `zz-${String(i).padStart(2, "0")}`);
    // ops may freeze VMs in `other`, in none of the zz-* namespaces.
    await create(
      ops,
      Resources.FederatedBackup,
      backupManifest(env, "both", { workloads: { namespaces: [other] } }),
      true,
    );
    const sixteen = [other, ...zz.slice(0, 15)];
    const partly = await rejected(
      create(
        ops,
        Resources.FederatedBackup,
        backupManifest(env, "partly", { workloads: { namespaces: sixteen } }),
        true,
      ),
    );
    assert.equal(partly.status, 403, partly.message);
    assert.match(
      partly.message,
      new RegExp(
        `:ops may not do so in namespace zz-00 \\(the first refused of the namespaces it selects besides its own: ` +
          `${[...sixteen].sort().join(", ")}\\)$`,
      ),
    );
    const seventeen = [other, ...zz];
    const many = await rejected(
      create(
        ops,
        Resources.FederatedBackup,
        backupManifest(env, "many", { workloads: { namespaces: seventeen } }),
        true,
      ),
    );
    assert.match(many.message, /may not do so in every namespace, which is needed to select more than 16 namespaces/);
    await create(
      adminClient(),
      Resources.FederatedBackup,
      backupManifest(env, "many", { workloads: { namespaces: seventeen } }),
      true,
    );
  });

  it("records who created a resource whatever the request says, and the record cannot be changed", async () => {
    const forged = JSON.stringify({ username: "fedbackup-admin", groups: ["system:masters"] });
    const fb = await create(
      tenant,
      Resources.FederatedBackup,
      backupManifest(env, "forged-own", {}, { [ANNOTATION_CREATED_BY]: forged, "example.com/note": "mine" }),
    );
    try {
      const sa = await adminClient().get(Resources.ServiceAccount, env.namespace, "tenant");
      const creator = parseCreator(fb.metadata.annotations?.[ANNOTATION_CREATED_BY]);
      assert.ok(!("error" in creator), JSON.stringify(creator));
      assert.equal(creator.username, `system:serviceaccount:${env.namespace}:tenant`);
      assert.equal(creator.uid, sa.metadata.uid);
      assert.deepEqual(
        [...creator.groups].sort(),
        ["system:authenticated", "system:serviceaccounts", `system:serviceaccounts:${env.namespace}`].sort(),
      );
      assert.ok(
        Object.keys(creator.extra).includes("authentication.kubernetes.io/credential-id"),
        JSON.stringify(creator.extra),
      );
      assert.equal(fb.metadata.annotations?.["example.com/note"], "mine");

      for (const [client, value] of [
        [tenant, forged],
        [tenant, null],
        [adminClient(), forged],
      ] as Array<[KubeClient, string | null]>) {
        const err = await rejected(
          client.patch(Resources.FederatedBackup, env.namespace, "forged-own", {
            metadata: { annotations: { [ANNOTATION_CREATED_BY]: value } },
          }),
        );
        assert.equal(err.status, 403, err.message);
        assert.match(
          err.message,
          /fedbackup\.io\/created-by\] records who created this FederatedBackup and cannot be changed/,
        );
      }
      // Other annotations stay the user's.
      await tenant.patch(Resources.FederatedBackup, env.namespace, "forged-own", {
        metadata: { annotations: { "example.com/note": "still mine" } },
      });

      const byAdmin = await create(
        adminClient(),
        Resources.WorkloadRestore,
        restoreManifest(env, "by-admin", {}),
        true,
      );
      const admin = parseCreator(byAdmin.metadata.annotations?.[ANNOTATION_CREATED_BY]);
      assert.ok(!("error" in admin) && admin.username === "fedbackup-admin" && admin.groups.includes("system:masters"));
    } finally {
      await adminClient().delete(Resources.FederatedBackup, env.namespace, "forged-own");
    }
  });

  it("runs a backup across namespaces for a user with rights in both", async () => {
    operator = await startOperator();
    const since = Date.now();
    await create(
      ops,
      Resources.FederatedBackup,
      backupManifest(env, "cross", { workloads: { namespaces: [env.namespace, other] } }),
    );
    const fb = await finished<Backup>(Resources.FederatedBackup, env.namespace, "cross");
    assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.conditions));
    assert.equal(fb.status?.progress?.workloadsCaptured, 3);
    const double = await kubevirtDouble();
    const frozen = double
      .callsFor(other)
      .filter((c) => c.op === "freeze" && c.at >= since)
      .map((c) => c.name)
      .sort();
    assert.deepEqual(frozen, ["cache", "db"]);
  });

  it("fails a restore whose backup holds another namespace's VMs when its creator has no rights there", async () => {
    // Admission cannot see which VMs a backup holds: an empty spec.workloads restores them all.
    const since = Date.now();
    const created = await create(tenant, Resources.WorkloadRestore, restoreManifest(env, "undo-all", {}));
    const wr = await finished<Restore>(Resources.WorkloadRestore, env.namespace, "undo-all");
    assert.equal(wr.status?.phase, "Failed");
    const failed = condition(wr, "Failed");
    assert.equal(failed?.reason, "NamespaceNotPermitted", JSON.stringify(wr.status?.conditions));
    assert.match(
      failed.message,
      new RegExp(`system:serviceaccount:${env.namespace}:tenant, who created it, may not update VirtualMachines`),
    );
    assert.match(failed.message, new RegExp(`in namespace ${other}\\. Nothing was touched\\.`));
    assert.equal(wr.status?.plan?.length ?? 0, 0);
    const steps = await adminClient().list(Resources.NodeRestore, { namespace: env.namespace });
    assert.equal(steps.items.length, 0, "no NodeRestore was created");
    await assertUntouched(other, ["db", "cache"], since);
    await assertUntouched(env.namespace, ["web"], since);
    assert.deepEqual(await warnings(created), ["NamespaceNotPermitted"]);
  });

  it("fails runs created while the namespace-access policy was unbound; nothing of the other namespace is frozen or stopped", async () => {
    const since = Date.now();
    const sneakBackup = backupManifest(env, "sneak", { workloads: { namespaces: [other] } });
    const sneakRestore = restoreManifest(env, "sneak", { workloads: [{ namespace: other, name: "db" }] });
    let backup: Backup | undefined;
    let restore: Restore | undefined;
    await withoutBindings([["ValidatingAdmissionPolicyBinding", NAMESPACE_ACCESS]], async () => {
      await waitFor("the API server to stop enforcing the namespace-access policy", 20_000, () =>
        create(tenant, Resources.FederatedBackup, sneakBackup, true).then(
          () => true,
          () => undefined,
        ),
      );
      backup = await create(tenant, Resources.FederatedBackup, sneakBackup);
      restore = await create(tenant, Resources.WorkloadRestore, sneakRestore);
    });
    await waitFor("the API server to enforce the namespace-access policy again", 20_000, () =>
      create(
        tenant,
        Resources.FederatedBackup,
        { ...sneakBackup, metadata: { ...sneakBackup.metadata, name: "again" } },
        true,
      ).then(
        () => undefined,
        () => true,
      ),
    );

    const fb = await finished<Backup>(Resources.FederatedBackup, env.namespace, "sneak");
    const wr = await finished<Restore>(Resources.WorkloadRestore, env.namespace, "sneak");
    for (const [o, what] of [
      [fb, "freeze VMs"],
      [wr, "update VirtualMachines"],
    ] as const) {
      assert.equal(o.status?.phase, "Failed");
      const failed = condition(o, "Failed");
      assert.equal(failed?.reason, "NamespaceNotPermitted", JSON.stringify(o.status?.conditions));
      assert.match(failed.message, new RegExp(`tenant, who created it, may not ${what} .* in namespace ${other}\\.`));
      assert.equal(condition(o, "Ready")?.reason, "NamespaceNotPermitted");
    }
    const snapshots = await adminClient().list(Resources.NodeSnapshot, {
      namespace: env.namespace,
      labelSelector: "fedbackup.io/backup=sneak",
    });
    assert.equal(snapshots.items.length, 0, "no NodeSnapshot was created");
    await assertUntouched(other, ["db", "cache"], since);
    assert.deepEqual(await warnings(backup!), ["NamespaceNotPermitted"]);
    assert.deepEqual(await warnings(restore!), ["NamespaceNotPermitted"]);
  });

  // Last: re-creating the creator policy's binding makes every resource created before it untrusted.
  it("fails a run whose creator record was forged while the creator policy was unbound (CreatorUnknown)", async () => {
    const since = Date.now();
    const forged = JSON.stringify({ username: "fedbackup-admin", groups: ["system:masters"] });
    const manifest = backupManifest(
      env,
      "forged",
      { workloads: { namespaces: [other] } },
      { [ANNOTATION_CREATED_BY]: forged },
    );
    await withoutBindings(
      [
        ["ValidatingAdmissionPolicyBinding", NAMESPACE_ACCESS],
        ["MutatingAdmissionPolicyBinding", CREATOR_POLICY_NAME],
      ],
      async () => {
        await waitFor("the API server to stop applying both policies", 20_000, async () => {
          const o = await create(tenant, Resources.FederatedBackup, manifest, true).catch(() => undefined);
          return o?.metadata.annotations?.[ANNOTATION_CREATED_BY] === forged ? true : undefined;
        });
        const created = await create(tenant, Resources.FederatedBackup, manifest);
        assert.equal(created.metadata.annotations?.[ANNOTATION_CREATED_BY], forged, "the forged record was stored");
      },
    );
    const fb = await finished<Backup>(Resources.FederatedBackup, env.namespace, "forged");
    assert.equal(fb.status?.phase, "Failed");
    const failed = condition(fb, "Failed");
    assert.equal(failed?.reason, "CreatorUnknown", JSON.stringify(fb.status?.conditions));
    assert.match(failed.message, new RegExp(`namespace ${other}, and the user who created it cannot be known`));
    assert.match(failed.message, /MutatingAdmissionPolicyBinding fedbackup\.io-created-by was created or changed at/);
    await assertUntouched(other, ["db", "cache"], since);
  });
});
