import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { BackupSchedule, FederatedBackup } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { KubeClient } from "../../src/k8s/client.js";
import { ApiError } from "../../src/k8s/errors.js";
import { AccessResources } from "../../src/k8s/access-review.js";
import { ANNOTATION_CREATED_BY, parseCreator } from "../../src/controllers/runtime/creator-access.js";
import { createVm, type VmFixture } from "../harness/workloads.js";
import { FREEZE_DELAY_ANNOTATION } from "../harness/kubevirt-double.js";
import {
  adminClient,
  backupEnv,
  backupManifest,
  creatorPoliciesSettled,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";
import { cluster, freshNamespace } from "./setup.js";

type Schedule = BackupSchedule & KubeObject;

const ROLE = { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true };

async function rejected(attempt: Promise<unknown>): Promise<ApiError> {
  try {
    await attempt;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  assert.fail("the API server accepted the request");
}
type Backup = FederatedBackup & KubeObject;

/** The long scenario's VMs, on two nodes; the short one backs up the first only (one node step per run). */
const VMS: VmFixture[] = [
  { name: "a1", node: "node-a" },
  { name: "b1", node: "node-b" },
];
const ONE_VM = VMS.slice(0, 1);

function scheduleManifest(env: BackupEnv, name: string, spec: Partial<Schedule["spec"]>): Schedule {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "BackupSchedule",
    metadata: { name, namespace: env.namespace },
    spec: { schedule: "*/10 * * * * *", template: backupManifest(env, "unused").spec, ...spec },
  };
}

async function backupsOf(env: BackupEnv, schedule: string): Promise<Backup[]> {
  const list = await adminClient().list<Backup>(Resources.FederatedBackup, {
    namespace: env.namespace,
    labelSelector: `fedbackup.io/schedule=${schedule}`,
  });
  return list.items.sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
}

/**
 * Deletes the schedules a test made: left behind, each keeps being reconciled at its times by the operators
 * of the tests that follow, which must see no writes of their own but those of their runs.
 */
async function deleteSchedules(env: BackupEnv): Promise<void> {
  const client = adminClient();
  const schedules = await client.list<Schedule>(Resources.BackupSchedule, { namespace: env.namespace });
  for (const s of schedules.items) await client.delete(Resources.BackupSchedule, env.namespace, s.metadata.name!);
}

const getSchedule = (env: BackupEnv, name: string) =>
  adminClient().get<Schedule>(Resources.BackupSchedule, env.namespace, name);

const setSuspend = (env: BackupEnv, name: string, suspend: boolean) =>
  adminClient().patch(Resources.BackupSchedule, env.namespace, name, { spec: { suspend } });

/** The backup directories at the location: one per backup, named after it, under the backups' common parent. */
function backupDirsAt(env: BackupEnv, backups: Backup[]): string[] {
  const parents = new Set(backups.map((b) => path.dirname(path.join(env.location.hostDir, b.status!.backupPath!))));
  return [...parents].flatMap((p) => (existsSync(p) ? readdirSync(p) : [])).sort();
}

/**
 * Lets the schedule make `runs` Completed backups, suspends it, waits until its last run is over and retention
 * has deleted what it does not keep, and returns every Completed backup seen and the ones that remain.
 */
async function runUntil(env: BackupEnv, name: string, runs: number, timeoutMs: number, keep: number) {
  const completed = new Map<string, Backup>();
  let concurrent = 0;
  await waitFor(`${runs} Completed backups of ${name}`, timeoutMs, async () => {
    const backups = await backupsOf(env, name);
    const running = backups.filter((b) => !["Completed", "PartiallyFailed", "Failed"].includes(b.status?.phase ?? ""));
    concurrent = Math.max(concurrent, running.filter((b) => !b.metadata.deletionTimestamp).length);
    for (const b of backups) if (b.status?.phase === "Completed") completed.set(b.metadata.name!, b);
    return completed.size >= runs ? true : undefined;
  });
  await setSuspend(env, name, true);
  const remaining = await waitFor(`${name}'s retention to settle`, 90_000, async () => {
    const backups = await backupsOf(env, name);
    for (const b of backups) if (b.status?.phase === "Completed") completed.set(b.metadata.name!, b);
    const settled =
      backups.every((b) => b.status?.phase === "Completed" && !b.metadata.deletionTimestamp) && backups.length === keep;
    return settled ? backups : undefined;
  });
  return { completed: [...completed.values()], remaining, concurrent };
}

function assertKeptNewest(
  env: BackupEnv,
  completed: Backup[],
  remaining: Backup[],
  keep: number,
  vms: VmFixture[],
): void {
  const newest = completed
    .map((b) => b.metadata.name!)
    .sort()
    .slice(-keep);
  assert.deepEqual(
    remaining.map((b) => b.metadata.name),
    newest,
    "the newest Completed backups remain",
  );
  // Exactly their files remain at the location: the deleted backups' directories are gone.
  assert.deepEqual(backupDirsAt(env, completed), remaining.map((b) => path.basename(b.status!.backupPath!)).sort());
  for (const b of remaining) {
    for (const vm of vms) {
      const manifest = path.join(env.location.hostDir, b.status!.backupPath!, env.namespace, vm.name, "manifest.json");
      assert.ok(existsSync(manifest), `${manifest} exists`);
    }
  }
}

describe("BackupSchedule controller", function () {
  this.timeout(240_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("every 10 s with keepLast 2: after 4 runs two backups and exactly their files remain; suspended, nothing starts [long]", async () => {
    const env = await backupEnv("bs");
    const operator = await startOperator();
    try {
      for (const vm of ONE_VM) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      await adminClient().create(
        Resources.BackupSchedule,
        scheduleManifest(env, "often", { retention: { keepLast: 2 } }),
      );
      const { completed, remaining, concurrent } = await runUntil(env, "often", 4, 150_000, 2);
      assert.ok(completed.length >= 4, `${completed.length} runs`);
      assert.equal(concurrent <= 1, true, "never two runs of the schedule at once");
      assertKeptNewest(env, completed, remaining, 2, ONE_VM);
      for (const b of completed) {
        assert.match(b.metadata.name!, /^often-\d{14}$/);
        assert.equal(b.metadata.ownerReferences, undefined, "a scheduled backup outlives its schedule");
      }

      const suspended = await getSchedule(env, "often");
      assert.equal(suspended.status?.conditions?.find((c) => c.type === "Ready")?.reason, "Suspended");
      assert.equal(suspended.status?.nextScheduleTime, undefined);
      assert.equal(suspended.status?.activeBackup, undefined);
      assert.equal(suspended.status?.lastSuccessfulBackup?.name, remaining.at(-1)?.metadata.name);
      // Suspended: more than one period passes and nothing new starts.
      await sleep(12_000);
      assert.deepEqual(
        (await backupsOf(env, "often")).map((b) => b.metadata.name),
        remaining.map((b) => b.metadata.name),
      );

      // Deleting the schedule keeps its backups.
      await adminClient().delete(Resources.BackupSchedule, env.namespace, "often");
      await sleep(1_000);
      assert.equal((await backupsOf(env, "often")).length, 2);
    } finally {
      await deleteSchedules(env);
      await operator.stop();
      env.cleanup();
    }
  });

  it("skips a time while its previous backup still runs, and reports it in status and as an Event", async () => {
    const env = await backupEnv("bs-skip");
    const operator = await startOperator();
    try {
      // Freezing the VM takes 5 s: every run lasts longer than the schedule's 2 s period.
      await createVm(adminClient(), env.namespace, env.shared.hostDir, {
        name: "slow",
        node: "node-a",
        annotations: { [FREEZE_DELAY_ANNOTATION]: "5000" },
      });
      await adminClient().create(
        Resources.BackupSchedule,
        scheduleManifest(env, "busy", { schedule: "*/2 * * * * *" }),
      );
      const skipped = await waitFor("a skipped time", 60_000, async () => {
        const s = await getSchedule(env, "busy");
        return s.status?.lastSkipped ? s : undefined;
      });
      assert.equal(skipped.status?.lastSkipped?.reason, "ConcurrentRunActive");
      const active = skipped.status?.activeBackup;
      assert.ok(active, "the run that was going on is named");
      assert.match(skipped.status?.lastSkipped?.message ?? "", new RegExp(active));
      const backups = await backupsOf(env, "busy");
      assert.equal(
        backups.filter((b) => !["Completed", "PartiallyFailed", "Failed"].includes(b.status?.phase ?? "")).length,
        1,
        "one run at a time",
      );
      const event = await waitFor("the Skipped Event", 10_000, async () => {
        const events = await adminClient().list<KubeObject & { reason?: string; regarding?: { name?: string } }>(
          Resources.Event,
          { namespace: env.namespace },
        );
        return events.items.find((e) => e.reason === "Skipped" && e.regarding?.name === "busy");
      });
      assert.ok(event);
      await setSuspend(env, "busy", true);
      await waitFor("the last run to finish", 60_000, async () => {
        const s = await getSchedule(env, "busy");
        return s.status?.activeBackup === undefined ? true : undefined;
      });
    } finally {
      await deleteSchedules(env);
      await operator.stop();
      env.cleanup();
    }
  });

  it("refuses a malformed schedule or time zone at admission, and reports ones the operator cannot read", async () => {
    const env = await backupEnv("bs-invalid");
    const operator = await startOperator();
    try {
      for (const [spec, message] of [
        [{ schedule: "every day" }, /spec\.schedule must be a cron expression of 5 fields/],
        [{ schedule: "0 0 0 * * * 2030" }, /spec\.schedule must be a cron expression of 5 fields/],
        [{ timeZone: "../etc/passwd" }, /spec\.timeZone in body should match/],
        [{ retention: { maxAge: "30d" } }, /spec\.retention\.maxAge must be a duration/],
      ] as const) {
        const err = await rejected(adminClient().create(Resources.BackupSchedule, scheduleManifest(env, "bad", spec)));
        assert.equal(err.status, 422, err.message);
        assert.match(err.message, message);
      }
      for (const [name, spec, reason] of [
        ["minute-99", { schedule: "99 * * * *" }, "InvalidSchedule"],
        ["atlantis", { timeZone: "Europe/Atlantis" }, "InvalidTimeZone"],
      ] as const) {
        await adminClient().create(Resources.BackupSchedule, scheduleManifest(env, name, spec));
        const ready = await waitFor(`${name} to be reported`, 20_000, async () => {
          const s = await getSchedule(env, name);
          return s.status?.conditions?.find((c) => c.type === "Ready");
        });
        assert.equal(ready.status, "False");
        assert.equal(ready.reason, reason, ready.message);
        assert.equal((await getSchedule(env, name)).status?.nextScheduleTime, undefined);
      }
    } finally {
      await deleteSchedules(env);
      await operator.stop();
      env.cleanup();
    }
  });

  it("[long] every minute with keepLast 3: after five runs three backups and exactly their files remain", async function () {
    this.timeout(9 * 60_000);
    const env = await backupEnv("bs-minute");
    const operator = await startOperator();
    try {
      for (const vm of VMS) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      await adminClient().create(
        Resources.BackupSchedule,
        scheduleManifest(env, "minutely", { schedule: "* * * * *", retention: { keepLast: 3 } }),
      );
      const { completed, remaining, concurrent } = await runUntil(env, "minutely", 5, 7 * 60_000, 3);
      assert.equal(completed.length, 5);
      assert.equal(concurrent <= 1, true);
      assertKeptNewest(env, completed, remaining, 3, VMS);
    } finally {
      await deleteSchedules(env);
      await operator.stop();
      env.cleanup();
    }
  });

  describe("who may schedule what", () => {
    const NAMESPACE_ACCESS = "fedbackup.io-namespace-access";
    let env: BackupEnv;
    let other: string;
    let tenant: KubeClient;

    before(async function () {
      this.timeout(60_000);
      env = await backupEnv("bs-tenant");
      other = await freshNamespace("bs-other");
      // A ServiceAccount that may manage schedules and backups, and freeze VMs, in its own namespace only.
      const admin = adminClient();
      await admin.create(Resources.ServiceAccount, {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "tenant", namespace: env.namespace },
      });
      await admin.create(ROLE, {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "tenant", namespace: env.namespace },
        rules: [
          {
            apiGroups: ["fedbackup.io"],
            resources: ["federatedbackups", "backupschedules"],
            verbs: ["get", "list", "create", "update", "patch", "delete"],
          },
          { apiGroups: ["subresources.kubevirt.io"], resources: ["virtualmachineinstances/freeze"], verbs: ["update"] },
        ],
      } as KubeObject);
      await admin.create(Resources.RoleBinding, {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "tenant", namespace: env.namespace },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "tenant" },
        subjects: [{ kind: "ServiceAccount", name: "tenant", namespace: env.namespace }],
      } as KubeObject);
      tenant = new KubeClient(await cluster().serviceAccountKubeConfig(env.namespace, "tenant"));
      await creatorPoliciesSettled();
    });

    after(async () => {
      tenant?.close();
      if (env) await deleteSchedules(env);
      env?.cleanup();
    });

    const selecting = (name: string, namespaces: string[]) =>
      scheduleManifest(env, name, { template: { ...backupManifest(env, "unused").spec, workloads: { namespaces } } });

    it("refuses a tenant a schedule whose template selects another namespace, at creation and when the template changes", async () => {
      const denied = await rejected(tenant.create(Resources.BackupSchedule, selecting("sneak", [other])));
      assert.equal(denied.status, 403, denied.message);
      assert.match(denied.message, new RegExp(`ValidatingAdmissionPolicy '${NAMESPACE_ACCESS}'`));
      assert.match(denied.message, new RegExp(`a BackupSchedule in ${env.namespace} may only select VMs`));
      assert.match(denied.message, new RegExp(`may not do so in namespace ${other}$`));

      const own = await tenant.create<Schedule>(Resources.BackupSchedule, selecting("own", [env.namespace]));
      const creator = parseCreator(own.metadata.annotations?.[ANNOTATION_CREATED_BY]);
      assert.ok(!("error" in creator) && creator.username === `system:serviceaccount:${env.namespace}:tenant`);
      const changed = await rejected(
        tenant.patch(Resources.BackupSchedule, env.namespace, "own", {
          spec: { template: { workloads: { namespaces: [env.namespace, other] } } },
        }),
      );
      assert.equal(changed.status, 403, changed.message);
      assert.match(changed.message, new RegExp(`may not do so in namespace ${other}$`));
      // A change that leaves the template alone is not checked.
      await tenant.patch(Resources.BackupSchedule, env.namespace, "own", { spec: { suspend: true } });
      const forged = await rejected(
        tenant.patch(Resources.BackupSchedule, env.namespace, "own", {
          metadata: { annotations: { [ANNOTATION_CREATED_BY]: JSON.stringify({ username: "admin" }) } },
        }),
      );
      assert.equal(forged.status, 403, forged.message);
    });

    it("creates no backup for a schedule whose creator may not back up the namespaces it selects", async () => {
      const operator = await startOperator();
      try {
        // Created while the namespace-access policy was not bound: only the operator's check is left.
        const binding = await adminClient().get(
          AccessResources.ValidatingAdmissionPolicyBinding,
          undefined,
          NAMESPACE_ACCESS,
        );
        await adminClient().delete(AccessResources.ValidatingAdmissionPolicyBinding, undefined, NAMESPACE_ACCESS);
        try {
          await waitFor("the API server to stop enforcing the namespace-access policy", 20_000, () =>
            tenant
              .create(Resources.BackupSchedule, {
                ...selecting("sneak", [other]),
                spec: { ...selecting("sneak", [other]).spec, schedule: "*/2 * * * * *" },
              })
              .then(
                () => true,
                () => undefined,
              ),
          );
        } finally {
          await adminClient().create(AccessResources.ValidatingAdmissionPolicyBinding, {
            apiVersion: binding.apiVersion,
            kind: binding.kind,
            metadata: { name: NAMESPACE_ACCESS, labels: binding.metadata.labels },
            spec: (binding as KubeObject & { spec: unknown }).spec,
          } as KubeObject);
        }
        const refused = await waitFor("the schedule to be refused", 30_000, async () => {
          const s = await getSchedule(env, "sneak");
          const ready = s.status?.conditions?.find((c) => c.type === "Ready");
          return ready?.reason === "NamespaceNotPermitted" ? ready : undefined;
        });
        assert.match(
          refused.message,
          new RegExp(`tenant, who created it, may not freeze VMs .* in namespace ${other}\\.`),
        );
        await sleep(3_000);
        assert.deepEqual(await backupsOf(env, "sneak"), [], "no backup was created");
      } finally {
        await adminClient()
          .delete(Resources.BackupSchedule, env.namespace, "sneak")
          .catch(() => {});
        await operator.stop();
      }
    });
  });
});
