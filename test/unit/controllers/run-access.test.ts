import assert from "node:assert/strict";
import {
  buildRunAccess,
  runAgentServiceAccountName,
  type AccessObject,
  type RunAccessRequest,
  type StepAccessRequest,
} from "../../../src/controllers/runtime/agent-access.js";
import { accessChanges, RunAccessGrants } from "../../../src/controllers/runtime/step-access.js";
import type { KubeClient } from "../../../src/k8s/client.js";
import { ApiError } from "../../../src/k8s/errors.js";
import type { ResourceType } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";

const run = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  namespace: "team-a",
  name: "nightly",
  uid: "0123abcd-1111",
};

const step = (
  name: string,
  workloads: StepAccessRequest["workloads"],
  more: Partial<StepAccessRequest> = {},
): StepAccessRequest => ({
  kind: "NodeSnapshot",
  step: { namespace: "team-a", name, uid: `uid-${name}` },
  workloads,
  ...more,
});

const round1 = [
  step("nightly-r1-node-2", [
    { namespace: "team-a", name: "web" },
    { namespace: "team-b", name: "db" },
  ]),
  step("nightly-r1-node-1", [{ namespace: "team-a", name: "api", secrets: ["api-keys"] }], {
    volumeSnapshot: "nightly-r1-node-1",
  }),
];

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
const rulesOf = (o: AccessObject) =>
  (o.rules as Rule[]).map(
    (r) =>
      `${r.apiGroups[0] || "core"}/${r.resources.join(",")}:${r.verbs.join(",")}:${(r.resourceNames ?? ["*"]).join(",")}`,
  );

describe("buildRunAccess", () => {
  it("grants one ServiceAccount and, per namespace, one Role naming the union of what the run's steps touch", () => {
    const access = buildRunAccess({ run, steps: round1 });
    const sa = runAgentServiceAccountName(run);
    assert.equal(sa, "fedbackup-run-agent-nightly-0123abcd");
    assert.deepEqual(
      [access.serviceAccount, ...access.roles, ...access.bindings].map(
        (o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`,
      ),
      [
        `ServiceAccount team-a/${sa}`,
        `Role team-a/${sa}`,
        `Role team-a/${sa}-workloads`,
        "Role team-b/fedbackup-run-agent.team-a.nightly-0123abcd",
        `RoleBinding team-a/${sa}`,
        `RoleBinding team-a/${sa}-workloads`,
        "RoleBinding team-b/fedbackup-run-agent.team-a.nightly-0123abcd",
      ],
    );
    assert.deepEqual(rulesOf(access.roles[0]!), [
      "fedbackup.io/nodesnapshots:get:nightly-r1-node-1,nightly-r1-node-2",
      "fedbackup.io/nodesnapshots/status:patch:nightly-r1-node-1,nightly-r1-node-2",
      "snapshot.storage.k8s.io/volumesnapshots:create:*",
      "snapshot.storage.k8s.io/volumesnapshots:get,delete:nightly-r1-node-1",
    ]);
    assert.deepEqual(rulesOf(access.roles[1]!), [
      "kubevirt.io/virtualmachineinstances:get:api,web",
      "subresources.kubevirt.io/virtualmachineinstances/freeze,virtualmachineinstances/unfreeze:update:api,web",
      "kubevirt.io/virtualmachines:get:api,web",
      "core/secrets:get:api-keys",
    ]);
    assert.deepEqual(rulesOf(access.roles[2]!), [
      "kubevirt.io/virtualmachineinstances:get:db",
      "subresources.kubevirt.io/virtualmachineinstances/freeze,virtualmachineinstances/unfreeze:update:db",
      "kubevirt.io/virtualmachines:get:db",
    ]);
    // The run owns what lives in its namespace; an owner cannot be in another namespace.
    assert.deepEqual(
      [access.serviceAccount, ...access.roles].map((o) => o.metadata.ownerReferences?.[0]?.uid),
      [run.uid, run.uid, run.uid, undefined],
    );
    for (const b of access.bindings)
      assert.deepEqual(b.subjects, [{ kind: "ServiceAccount", name: sa, namespace: "team-a" }]);
  });

  it("builds the same objects whatever the order of the steps", () => {
    assert.deepEqual(buildRunAccess({ run, steps: [...round1].reverse() }), buildRunAccess({ run, steps: round1 }));
  });

  it("grants get, list and watch on the run's Leases by name, in their namespace, for agents that wait for their turn", () => {
    const req: RunAccessRequest = {
      run,
      steps: round1,
      turnLeases: { namespace: "fedbackup-system", names: ["fedbackup-volume-b", "fedbackup-volume-a"] },
    };
    const access = buildRunAccess(req);
    const leases = access.roles.at(-1)!;
    assert.equal(leases.metadata.namespace, "fedbackup-system");
    assert.equal(leases.metadata.name, "fedbackup-run-agent.team-a.nightly-0123abcd-leases");
    assert.deepEqual(rulesOf(leases), [
      "coordination.k8s.io/leases:get,list,watch:fedbackup-volume-a,fedbackup-volume-b",
    ]);
    assert.equal(access.bindings.at(-1)!.metadata.name, leases.metadata.name);
  });

  it("keeps two runs of one name apart by their uid", () => {
    const again = { ...run, uid: "99999999-2222" };
    assert.notEqual(runAgentServiceAccountName(again), runAgentServiceAccountName(run));
  });
});

describe("accessChanges", () => {
  it("applies everything the first time, nothing for the same steps, only the grown Roles for a new round", () => {
    const first = buildRunAccess({ run, steps: round1 });
    const applied = new Map<string, string>();
    const changes = accessChanges(first, applied);
    assert.equal(changes.length, 7);
    for (const o of changes) applied.set(`${o.kind}/${o.metadata.namespace}/${o.metadata.name}`, JSON.stringify(o));
    assert.deepEqual(accessChanges(buildRunAccess({ run, steps: [...round1].reverse() }), applied), []);

    // Round 2 retries db in team-b on another node: the run's own Role names the new step, team-b's Role
    // is unchanged (db again), nothing else is applied again.
    const round2 = [...round1, step("nightly-r2-node-3", [{ namespace: "team-b", name: "db" }])];
    assert.deepEqual(
      accessChanges(buildRunAccess({ run, steps: round2 }), applied).map((o) => `${o.kind} ${o.metadata.name}`),
      ["Role fedbackup-run-agent-nightly-0123abcd"],
    );
  });
});

describe("RunAccessGrants", () => {
  function recordingClient(failing?: string) {
    const calls: string[] = [];
    const fail = { on: failing };
    const client = {
      apply: (type: ResourceType, obj: KubeObject) => {
        if (obj.metadata.name === fail.on) return Promise.reject(new ApiError(500, "InternalError", "boom"));
        calls.push(`apply ${type.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
        return Promise.resolve(obj);
      },
      delete: (type: ResourceType, namespace: string, name: string) => {
        calls.push(`delete ${type.kind} ${namespace}/${name}`);
        return Promise.reject(new ApiError(404, "NotFound", "gone already"));
      },
    } as unknown as KubeClient;
    return { client, calls, fail };
  }

  it("applies a run's access once for all its steps, ServiceAccount and Roles before their bindings", async () => {
    const { client, calls } = recordingClient();
    const grants = new RunAccessGrants(client);
    const access = buildRunAccess({ run, steps: round1 });
    assert.equal(await grants.grant(run.uid, access), 7);
    for (let i = 0; i < 1000; i++) assert.equal(await grants.grant(run.uid, buildRunAccess({ run, steps: round1 })), 0);
    assert.equal(calls.length, 7);
    assert.match(calls[0]!, /^apply ServiceAccount /);
    assert.ok(calls.findIndex((c) => c.includes("RoleBinding")) > calls.findLastIndex((c) => c.includes(" Role ")));
  });

  it("grants the very object it granted before without a request, but not one whose grant failed", async () => {
    const { client, calls, fail } = recordingClient("fedbackup-run-agent.team-a.nightly-0123abcd");
    const grants = new RunAccessGrants(client);
    const access = buildRunAccess({ run, steps: round1 });
    await assert.rejects(grants.grant(run.uid, access));
    fail.on = undefined;
    assert.equal(await grants.grant(run.uid, access), 4);
    assert.equal(await grants.grant(run.uid, access), 0);
    assert.equal(calls.length, 7, calls.join("\n"));
  });

  it("applies a run's access once when several of its Jobs start at once", async () => {
    const { client, calls } = recordingClient();
    const grants = new RunAccessGrants(client);
    const access = buildRunAccess({ run, steps: round1 });
    const applied = await Promise.all(Array.from({ length: 5 }, () => grants.grant(run.uid, access)));
    assert.deepEqual(applied, [7, 0, 0, 0, 0]);
    assert.equal(calls.length, 7, calls.join("\n"));
  });

  it("lets a grant waiting behind a failed one apply it again", async () => {
    const { client, calls, fail } = recordingClient("fedbackup-run-agent.team-a.nightly-0123abcd");
    const grants = new RunAccessGrants(client);
    const access = buildRunAccess({ run, steps: round1 });
    const first = grants.grant(run.uid, access);
    const second = grants.grant(run.uid, access);
    await assert.rejects(first);
    fail.on = "still-failing";
    assert.equal(await second, 4);
    assert.equal(calls.length, 7, calls.join("\n"));
  });

  it("applies again what a failed grant did not get to", async () => {
    const { client, calls, fail } = recordingClient("fedbackup-run-agent.team-a.nightly-0123abcd");
    const grants = new RunAccessGrants(client);
    const access = buildRunAccess({ run, steps: round1 });
    await assert.rejects(grants.grant(run.uid, access));
    assert.equal(calls.length, 3, calls.join("\n"));
    fail.on = undefined;
    assert.equal(await grants.grant(run.uid, access), 4);
    assert.match(calls[3]!, /Role team-b\/fedbackup-run-agent\.team-a\.nightly-0123abcd$/);
  });

  it("revokes the ServiceAccount first, then every binding and Role, and forgets the run", async () => {
    const { client, calls } = recordingClient();
    const grants = new RunAccessGrants(client);
    const access = buildRunAccess({ run, steps: round1 });
    await grants.grant(run.uid, access);
    calls.length = 0;
    await grants.revoke(run.uid, access);
    assert.equal(calls.length, 7);
    assert.match(calls[0]!, /^delete ServiceAccount team-a\/fedbackup-run-agent-nightly-0123abcd$/);
    assert.equal(await grants.grant(run.uid, access), 7, "granted again from scratch after a revoke");
  });
});
