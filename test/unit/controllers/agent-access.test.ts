import assert from "node:assert/strict";
import { agentServiceAccountName, buildStepAccess } from "../../../src/controllers/runtime/agent-access.js";

const step = { namespace: "team-a", name: "nightly-r1-node-1", uid: "uid-1" };

describe("buildStepAccess", () => {
  it("grants a backup step's agent its own step, its VolumeSnapshot and its VMs, each by name", () => {
    const access = buildStepAccess({
      kind: "NodeSnapshot",
      step,
      workloads: [
        { namespace: "team-a", name: "web" },
        { namespace: "team-b", name: "db" },
        { namespace: "team-a", name: "api" },
      ],
      volumeSnapshot: "nightly-r1-node-1",
    });
    const sa = agentServiceAccountName(step);
    assert.equal(access.serviceAccount.metadata.name, sa);
    assert.equal(access.serviceAccount.metadata.namespace, "team-a");
    assert.deepEqual(
      access.roles.map((r) => [r.metadata.namespace, r.metadata.name]),
      [
        ["team-a", sa],
        ["team-a", `${sa}-workloads`],
        ["team-b", "fedbackup-agent.team-a.nightly-r1-node-1"],
      ],
    );
    const [own, ownVms, foreign] = access.roles as unknown as Array<{ rules: Array<Record<string, unknown>> }>;
    // Every rule but the VolumeSnapshot's create names its objects.
    for (const rule of [...own!.rules, ...ownVms!.rules, ...foreign!.rules]) {
      if (!(rule.verbs as string[]).includes("create")) assert.ok(rule.resourceNames, JSON.stringify(rule));
    }
    assert.deepEqual(own!.rules[1], {
      apiGroups: ["fedbackup.io"],
      resources: ["nodesnapshots/status"],
      verbs: ["patch"],
      resourceNames: ["nightly-r1-node-1"],
    });
    assert.deepEqual(
      ownVms!.rules.map((r) => r.resourceNames),
      [
        ["api", "web"],
        ["api", "web"],
        ["api", "web"],
      ],
    );
    assert.deepEqual(foreign!.rules[1], {
      apiGroups: ["subresources.kubevirt.io"],
      resources: ["virtualmachineinstances/freeze", "virtualmachineinstances/unfreeze"],
      verbs: ["update"],
      resourceNames: ["db"],
    });
    // Each Role has its binding to the step's ServiceAccount, and only objects in the step's namespace have
    // an owner (an owner must live in the same namespace).
    assert.deepEqual(
      access.bindings.map((b) => [b.metadata.namespace, (b.roleRef as { name: string }).name, b.subjects]),
      access.roles.map((r) => [
        r.metadata.namespace,
        r.metadata.name,
        [{ kind: "ServiceAccount", name: sa, namespace: "team-a" }],
      ]),
    );
    assert.deepEqual(
      access.roles.map((r) => !!r.metadata.ownerReferences),
      [true, true, false],
    );
  });

  it("grants a step cutting VMs in VolumeGroupSnapshots its groups by name, the label on their claims, and the list of snapshots", () => {
    const access = buildStepAccess({
      kind: "NodeSnapshot",
      step,
      workloads: [{ namespace: "team-a", name: "db" }],
      groupSnapshots: [{ name: "nightly-r1-node-1-db-0123abcd", claims: ["db-data", "db-root"] }],
    });
    const own = access.roles[0]!.rules as Array<Record<string, unknown>>;
    assert.deepEqual(own.slice(2), [
      { apiGroups: ["groupsnapshot.storage.k8s.io"], resources: ["volumegroupsnapshots"], verbs: ["create"] },
      {
        apiGroups: ["groupsnapshot.storage.k8s.io"],
        resources: ["volumegroupsnapshots"],
        verbs: ["get", "delete"],
        resourceNames: ["nightly-r1-node-1-db-0123abcd"],
      },
      { apiGroups: ["snapshot.storage.k8s.io"], resources: ["volumesnapshots"], verbs: ["list"] },
      {
        apiGroups: [""],
        resources: ["persistentvolumeclaims"],
        verbs: ["patch"],
        resourceNames: ["db-data", "db-root"],
      },
    ]);
  });

  it("grants a backup step's agent get on each VM's VirtualMachine, and on the DataVolumes and Secrets the step names, by name", () => {
    const access = buildStepAccess({
      kind: "NodeSnapshot",
      step,
      workloads: [
        { namespace: "team-a", name: "web", dataVolumes: ["web-data"], secrets: ["web-ci", "shared-keys"] },
        { namespace: "team-a", name: "api", secrets: ["shared-keys"] },
        { namespace: "team-b", name: "db" },
      ],
    });
    const rulesOf = (i: number) =>
      (
        access.roles[i]!.rules as Array<{
          apiGroups: string[];
          resources: string[];
          verbs: string[];
          resourceNames?: string[];
        }>
      ).map(
        (r) =>
          `${r.apiGroups[0] || "core"}/${r.resources.join(",")}:${r.verbs.join(",")}:${(r.resourceNames ?? ["*"]).join(",")}`,
      );
    assert.deepEqual(rulesOf(1), [
      "kubevirt.io/virtualmachineinstances:get:api,web",
      "subresources.kubevirt.io/virtualmachineinstances/freeze,virtualmachineinstances/unfreeze:update:api,web",
      "kubevirt.io/virtualmachines:get:api,web",
      "cdi.kubevirt.io/datavolumes:get:web-data",
      "core/secrets:get:shared-keys,web-ci",
    ]);
    // Nothing named, nothing granted: no DataVolume or Secret rule (a rule without names would grant all).
    assert.deepEqual(rulesOf(2), [
      "kubevirt.io/virtualmachineinstances:get:db",
      "subresources.kubevirt.io/virtualmachineinstances/freeze,virtualmachineinstances/unfreeze:update:db",
      "kubevirt.io/virtualmachines:get:db",
    ]);
  });

  it("grants a restore step's agent no freeze and no VolumeSnapshot", () => {
    const access = buildStepAccess({ kind: "NodeRestore", step, workloads: [{ namespace: "team-a", name: "web" }] });
    const verbs = access.roles.flatMap((r) =>
      (r.rules as Array<{ resources: string[]; verbs: string[] }>).map(
        (x) => `${x.resources.join(",")}:${x.verbs.join(",")}`,
      ),
    );
    assert.deepEqual(verbs, ["noderestores:get", "noderestores/status:patch", "virtualmachineinstances:get"]);
  });

  it("keeps long names within 253 characters and apart", () => {
    const long = { ...step, name: "x".repeat(253) };
    const a = buildStepAccess({ kind: "NodeRestore", step: long, workloads: [{ namespace: "other", name: "vm" }] });
    const b = buildStepAccess({
      kind: "NodeRestore",
      step: { ...long, name: `${"x".repeat(252)}y` },
      workloads: [{ namespace: "other", name: "vm" }],
    });
    for (const r of [...a.roles, ...b.roles]) assert.ok(r.metadata.name.length <= 253);
    assert.notEqual(a.roles[1]!.metadata.name, b.roles[1]!.metadata.name);
    assert.notEqual(a.serviceAccount.metadata.name, b.serviceAccount.metadata.name);
  });
});
