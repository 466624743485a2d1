import assert from "node:assert/strict";
import type {
  MissingWorkload,
  ObservedNode,
  ObservedWorkload,
  OrderingPolicy,
  ReconcileRoundPlan,
} from "../../../src/planning/index.js";
import { planReconcileRound, workloadKey } from "../../../src/planning/index.js";
import { keys, node, ref, vm } from "./fixtures.js";

const byCount: OrderingPolicy = { policy: "WorkloadCount" };

function summary(plan: ReconcileRoundPlan) {
  return {
    steps: plan.steps.map((s) => `${s.order}:${s.node}=[${keys(s.workloads).join(",")}]`),
    unresolved: plan.unresolved.map(
      (u) => `${workloadKey(u.workload)}:${u.reason}${u.lastNode ? `@${u.lastNode}` : ""}`,
    ),
  };
}

const missing = (key: string, fields: Omit<MissingWorkload, "workload"> = {}): MissingWorkload => ({
  workload: ref(key),
  ...fields,
});

describe("planReconcileRound", () => {
  interface Case {
    title: string;
    missing: MissingWorkload[];
    observed: ObservedWorkload[];
    nodes?: ObservedNode[];
    ordering?: OrderingPolicy;
    steps: string[];
    unresolved?: string[];
  }
  const nodes = [node("n1"), node("n2"), node("n3")];
  const cases: Case[] = [
    {
      title: "a VM that migrated is captured on the node it runs on now",
      missing: [missing("ns/a", { lastNode: "n1" })],
      observed: [vm("ns/a", { node: "n2" })],
      steps: ["1:n2=[ns/a]"],
    },
    {
      title: "several missing VMs on one node share one step",
      missing: [missing("ns/b"), missing("ns/a"), missing("ns/c")],
      observed: [vm("ns/a", { node: "n2" }), vm("ns/b", { node: "n2" }), vm("ns/c", { node: "n1" })],
      steps: ["1:n2=[ns/a,ns/b]", "2:n1=[ns/c]"],
    },
    {
      title: "steps are ordered over the missing VMs only, not every VM on the node",
      missing: [missing("ns/a"), missing("ns/b"), missing("ns/c")],
      observed: [
        vm("ns/a", { node: "n1" }),
        vm("ns/x1", { node: "n1" }),
        vm("ns/x2", { node: "n1" }),
        vm("ns/x3", { node: "n1" }),
        vm("ns/b", { node: "n2" }),
        vm("ns/c", { node: "n2" }),
      ],
      steps: ["1:n2=[ns/b,ns/c]", "2:n1=[ns/a]"],
    },
    {
      title: "steps follow the backup's ordering policy",
      missing: [missing("ns/a"), missing("ns/b")],
      observed: [vm("ns/a", { node: "n1" }), vm("ns/b", { node: "n2" })],
      ordering: { policy: "Explicit", nodes: ["n2", "n1"] },
      steps: ["1:n2=[ns/b]", "2:n1=[ns/a]"],
    },
    {
      title: "NotFound: gone from the cluster, last node kept from the input",
      missing: [missing("ns/gone", { lastNode: "n1" }), missing("ns/gone2")],
      observed: [],
      steps: [],
      unresolved: ["ns/gone:NotFound@n1", "ns/gone2:NotFound"],
    },
    {
      title: "NotRunning: stopped; last node from the VMI, else from the input",
      missing: [missing("ns/a", { lastNode: "n1" }), missing("ns/b", { lastNode: "n1" })],
      observed: [vm("ns/a", { phase: "Succeeded", node: "n3" }), vm("ns/b", { phase: "Pending" })],
      steps: [],
      unresolved: ["ns/a:NotRunning@n3", "ns/b:NotRunning@n1"],
    },
    {
      title: "NodeNotReady: running on a node that is not Ready",
      missing: [missing("ns/a")],
      observed: [vm("ns/a", { node: "down" })],
      nodes: [node("down", { ready: false })],
      steps: [],
      unresolved: ["ns/a:NodeNotReady@down"],
    },
    {
      title: "NodeNotReady: running on an unknown node",
      missing: [missing("ns/a")],
      observed: [vm("ns/a", { node: "ghost" })],
      steps: [],
      unresolved: ["ns/a:NodeNotReady@ghost"],
    },
    {
      title: "NoSharedDisk: no file on the shared volume",
      missing: [missing("ns/a")],
      observed: [vm("ns/a", { node: "n1", files: [] })],
      steps: [],
      unresolved: ["ns/a:NoSharedDisk@n1"],
    },
    {
      title: "Migrating: left for a later round instead of racing the migration on the source node",
      missing: [missing("ns/a", { lastNode: "n1" }), missing("ns/b")],
      observed: [vm("ns/a", { node: "n1", migrating: true }), vm("ns/b", { node: "n1" })],
      steps: ["1:n1=[ns/b]"],
      unresolved: ["ns/a:Migrating@n1"],
    },
    {
      title: "NodeSkipped: control-plane node with controlPlaneNode Skip",
      missing: [missing("ns/a"), missing("ns/b")],
      observed: [vm("ns/a", { node: "cp" }), vm("ns/b", { node: "n1" })],
      nodes: [node("cp", { controlPlane: true }), node("n1")],
      ordering: { policy: "WorkloadCount", controlPlaneNode: "Skip" },
      steps: ["1:n1=[ns/b]"],
      unresolved: ["ns/a:NodeSkipped@cp"],
    },
    {
      title: "NoSharedDisk wins over Migrating",
      missing: [missing("ns/a")],
      observed: [vm("ns/a", { node: "n1", files: [], migrating: true })],
      steps: [],
      unresolved: ["ns/a:NoSharedDisk@n1"],
    },
    {
      title: "Migrating wins over a not-Ready source node: the VM is about to leave it",
      missing: [missing("ns/a")],
      observed: [vm("ns/a", { node: "down", migrating: true })],
      nodes: [node("down", { ready: false })],
      steps: [],
      unresolved: ["ns/a:Migrating@down"],
    },
    {
      title: "NotRunning wins over NoSharedDisk",
      missing: [missing("ns/a")],
      observed: [vm("ns/a", { phase: "Pending", files: [] })],
      steps: [],
      unresolved: ["ns/a:NotRunning"],
    },
    {
      title: "a VM listed as missing twice is placed once",
      missing: [missing("ns/a"), missing("ns/a")],
      observed: [vm("ns/a", { node: "n1" })],
      steps: ["1:n1=[ns/a]"],
    },
    {
      title: "nothing missing: nothing to do",
      missing: [],
      observed: [vm("ns/a", { node: "n1" })],
      steps: [],
    },
    {
      title: "unresolved VMs are sorted by key",
      missing: [missing("z/a"), missing("a/z"), missing("a/b")],
      observed: [],
      steps: [],
      unresolved: ["a/b:NotFound", "a/z:NotFound", "z/a:NotFound"],
    },
  ];

  for (const c of cases) {
    it(c.title, () => {
      const plan = planReconcileRound(c.missing, c.observed, c.nodes ?? nodes, c.ordering ?? byCount, 2);
      assert.deepEqual(summary(plan), { steps: c.steps, unresolved: c.unresolved ?? [] });
    });
  }

  it("puts the observed VM (current node, files) into the step", () => {
    const observed = vm("ns/a", { node: "n2", files: ["ns/a/new.img"] });
    const plan = planReconcileRound([missing("ns/a", { lastNode: "n1" })], [observed], nodes, byCount, 2);
    assert.deepEqual(plan.steps, [{ node: "n2", order: 1, workloads: [observed] }]);
  });

  describe("messages", () => {
    const plan = (m: MissingWorkload, observed: ObservedWorkload[], round = 3) =>
      planReconcileRound([m], observed, nodes, byCount, round).unresolved[0];

    it("mention the round for Migrating", () => {
      const u = plan(missing("ns/a"), [vm("ns/a", { node: "n1", migrating: true })]);
      assert.equal(u?.reason, "Migrating");
      assert.match(u?.message ?? "", /ns\/a.*node n1.*round 3/);
    });

    it("mention the previous reason when it changed", () => {
      const u = plan(missing("ns/a", { previousReason: "Migrating" }), [vm("ns/a", { phase: "Succeeded" })]);
      assert.match(u?.message ?? "", /not running \(phase Succeeded\).*previous round: Migrating/);
    });

    it("do not repeat the previous reason when it is the same", () => {
      const u = plan(missing("ns/a", { previousReason: "NotFound" }), []);
      assert.doesNotMatch(u?.message ?? "", /previous round/);
    });

    it("say when the Node object does not exist", () => {
      const u = plan(missing("ns/a"), [vm("ns/a", { node: "ghost" })]);
      assert.match(u?.message ?? "", /Node object was not found/);
    });
  });

  it("does not depend on the order of its inputs", () => {
    const m = [missing("ns/a"), missing("ns/b"), missing("ns/c"), missing("ns/d")];
    const observed = [
      vm("ns/a", { node: "n1" }),
      vm("ns/b", { node: "n2" }),
      vm("ns/c", { node: "n2", migrating: true }),
      vm("ns/d", { node: "n3" }),
    ];
    const ordering: OrderingPolicy = { policy: "Random", seed: 5 };
    assert.deepEqual(
      planReconcileRound([...m].reverse(), [...observed].reverse(), [...nodes].reverse(), ordering, 2),
      planReconcileRound(m, observed, nodes, ordering, 2),
    );
  });
});
