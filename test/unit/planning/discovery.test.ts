import assert from "node:assert/strict";
import type { DiscoveryPlan, ObservedNode, ObservedWorkload, OrderingPolicy } from "../../../src/planning/index.js";
import { planDiscovery, workloadKey } from "../../../src/planning/index.js";
import { keys, node, vm } from "./fixtures.js";

const byCount: OrderingPolicy = { policy: "WorkloadCount" };

/** The plan in a compact form: steps as "order:node=[keys]" and unplaced as "key:reason@lastNode". */
function summary(plan: DiscoveryPlan) {
  return {
    steps: plan.steps.map((s) => `${s.order}:${s.node}=[${keys(s.workloads).join(",")}]`),
    unplaced: plan.unplaced.map((u) => `${workloadKey(u.workload)}:${u.reason}${u.lastNode ? `@${u.lastNode}` : ""}`),
  };
}

describe("planDiscovery", () => {
  interface Case {
    title: string;
    workloads: ObservedWorkload[];
    nodes: ObservedNode[];
    ordering?: OrderingPolicy;
    steps: string[];
    unplaced?: string[];
  }
  const cases: Case[] = [
    {
      title: "one step per node with active VMs, in policy order, VMs sorted by key, order from 1",
      workloads: [
        vm("ns/c", { node: "n2" }),
        vm("ns/a", { node: "n1" }),
        vm("ns/b", { node: "n2" }),
        vm("other/a", { node: "n2" }),
      ],
      nodes: [node("n1"), node("n2")],
      steps: ["1:n2=[ns/b,ns/c,other/a]", "2:n1=[ns/a]"],
    },
    {
      title: "nodes without an active in-scope VM get no step",
      workloads: [vm("ns/a", { node: "n1" })],
      nodes: [node("n1"), node("idle"), node("n3")],
      steps: ["1:n1=[ns/a]"],
    },
    {
      title: "no workloads: an empty plan",
      workloads: [],
      nodes: [node("n1")],
      steps: [],
    },
    {
      title: "NotRunning: not active anywhere (lastNode only when the VMI names a node)",
      workloads: [
        vm("ns/pending", { phase: "Pending" }),
        vm("ns/stopped", { phase: "Succeeded", node: "n1" }),
        vm("ns/ok", { node: "n1" }),
      ],
      nodes: [node("n1")],
      steps: ["1:n1=[ns/ok]"],
      unplaced: ["ns/pending:NotRunning", "ns/stopped:NotRunning@n1"],
    },
    {
      title: "NoSharedDisk: active but no file on the shared volume is reported, not dropped",
      workloads: [vm("ns/nodisk", { node: "n1", files: [] }), vm("ns/ok", { node: "n2" })],
      nodes: [node("n1"), node("n2")],
      steps: ["1:n2=[ns/ok]"],
      unplaced: ["ns/nodisk:NoSharedDisk@n1"],
    },
    {
      title: "NodeNotReady: the node is not Ready",
      workloads: [vm("ns/a", { node: "down" }), vm("ns/b", { node: "up" })],
      nodes: [node("down", { ready: false }), node("up")],
      steps: ["1:up=[ns/b]"],
      unplaced: ["ns/a:NodeNotReady@down"],
    },
    {
      title: "NodeNotReady: the node is unknown",
      workloads: [vm("ns/a", { node: "ghost" })],
      nodes: [node("n1")],
      steps: [],
      unplaced: ["ns/a:NodeNotReady@ghost"],
    },
    {
      title: "NodeSkipped: control-plane node with controlPlaneNode Skip",
      workloads: [vm("ns/a", { node: "cp" }), vm("ns/b", { node: "cp" }), vm("ns/c", { node: "w" })],
      nodes: [node("cp", { controlPlane: true }), node("w")],
      ordering: { policy: "WorkloadCount", controlPlaneNode: "Skip" },
      steps: ["1:w=[ns/c]"],
      unplaced: ["ns/a:NodeSkipped@cp", "ns/b:NodeSkipped@cp"],
    },
    {
      title: "controlPlaneNode First puts the control-plane step first",
      workloads: [vm("ns/a", { node: "cp" }), vm("ns/b", { node: "w" }), vm("ns/c", { node: "w" })],
      nodes: [node("cp", { controlPlane: true }), node("w")],
      ordering: { policy: "WorkloadCount", controlPlaneNode: "First" },
      steps: ["1:cp=[ns/a]", "2:w=[ns/b,ns/c]"],
    },
    {
      title: "NoSharedDisk wins over a not-Ready node: no retry would help",
      workloads: [vm("ns/a", { node: "down", files: [] })],
      nodes: [node("down", { ready: false })],
      steps: [],
      unplaced: ["ns/a:NoSharedDisk@down"],
    },
    {
      title: "NodeNotReady wins over Skip: readiness is checked before ordering",
      workloads: [vm("ns/a", { node: "cp" })],
      nodes: [node("cp", { controlPlane: true, ready: false })],
      ordering: { policy: "WorkloadCount", controlPlaneNode: "Skip" },
      steps: [],
      unplaced: ["ns/a:NodeNotReady@cp"],
    },
    {
      title: "a migrating VM is placed on its source node in the first pass",
      workloads: [vm("ns/a", { node: "src", migrating: true })],
      nodes: [node("src"), node("dst")],
      steps: ["1:src=[ns/a]"],
    },
    {
      title: "a cordoned node is still processed",
      workloads: [vm("ns/a", { node: "cordoned" })],
      nodes: [node("cordoned", { schedulable: false })],
      steps: ["1:cordoned=[ns/a]"],
    },
    {
      title: "only capturable VMs count for the order (NoSharedDisk VMs do not)",
      workloads: [
        vm("ns/a1", { node: "a", files: [] }),
        vm("ns/a2", { node: "a", files: [] }),
        vm("ns/a3", { node: "a", files: [] }),
        vm("ns/a4", { node: "a" }),
        vm("ns/b1", { node: "b" }),
        vm("ns/b2", { node: "b" }),
      ],
      nodes: [node("a"), node("b")],
      steps: ["1:b=[ns/b1,ns/b2]", "2:a=[ns/a4]"],
      unplaced: ["ns/a1:NoSharedDisk@a", "ns/a2:NoSharedDisk@a", "ns/a3:NoSharedDisk@a"],
    },
    {
      title: "CriticalWorkload uses the critical flag and priority of the VMs on each node",
      workloads: [
        vm("ns/a1", { node: "a" }),
        vm("ns/a2", { node: "a" }),
        vm("ns/b1", { node: "b", critical: true, priority: 1 }),
        vm("ns/c1", { node: "c", critical: true, priority: 7 }),
      ],
      nodes: [node("a"), node("b"), node("c")],
      ordering: { policy: "CriticalWorkload" },
      steps: ["1:c=[ns/c1]", "2:b=[ns/b1]", "3:a=[ns/a1,ns/a2]"],
    },
    {
      title: "FailureRate reads recentFailures from the nodes",
      workloads: [vm("ns/a", { node: "a" }), vm("ns/b", { node: "b" })],
      nodes: [node("a", { recentFailures: 0 }), node("b", { recentFailures: 3 })],
      ordering: { policy: "FailureRate" },
      steps: ["1:b=[ns/b]", "2:a=[ns/a]"],
    },
    {
      title: "FreeResources reads free memory from the nodes",
      workloads: [vm("ns/a", { node: "a" }), vm("ns/b", { node: "b" })],
      nodes: [node("a", { freeMemoryBytes: 10 }), node("b", { freeMemoryBytes: 20 })],
      ordering: { policy: "FreeResources" },
      steps: ["1:b=[ns/b]", "2:a=[ns/a]"],
    },
    {
      title: "Explicit order",
      workloads: [vm("ns/a", { node: "a" }), vm("ns/b", { node: "b" }), vm("ns/c", { node: "c" })],
      nodes: [node("a"), node("b"), node("c")],
      ordering: { policy: "Explicit", nodes: ["c", "a"] },
      steps: ["1:c=[ns/c]", "2:a=[ns/a]", "3:b=[ns/b]"],
    },
    {
      title: "steps are numbered without gaps when nodes are left out",
      workloads: [vm("ns/a", { node: "a" }), vm("ns/b", { node: "down" }), vm("ns/c", { node: "c" })],
      nodes: [node("a"), node("down", { ready: false }), node("c")],
      ordering: { policy: "Explicit", nodes: ["a", "down", "c"] },
      steps: ["1:a=[ns/a]", "2:c=[ns/c]"],
      unplaced: ["ns/b:NodeNotReady@down"],
    },
    {
      title: "a VM listed twice is planned once",
      workloads: [vm("ns/a", { node: "n1" }), vm("ns/a", { node: "n1" })],
      nodes: [node("n1")],
      steps: ["1:n1=[ns/a]"],
    },
  ];

  for (const { title, workloads, nodes, ordering = byCount, steps, unplaced = [] } of cases) {
    it(title, () => {
      const plan = planDiscovery(workloads, nodes, ordering);
      assert.deepEqual(summary(plan), { steps, unplaced });
    });
  }

  describe("on a mixed cluster", () => {
    const workloads = [
      vm("b/run1", { node: "w1", critical: true }),
      vm("a/run2", { node: "w2" }),
      vm("a/run3", { node: "w2", migrating: true }),
      vm("c/stopped", { phase: "Succeeded" }),
      vm("c/nodisk", { node: "w1", files: [] }),
      vm("a/down", { node: "w3" }),
      vm("b/cp", { node: "cp1" }),
      vm("a/ghost", { node: "gone" }),
    ];
    const nodes = [node("w1"), node("w2"), node("w3", { ready: false }), node("cp1", { controlPlane: true })];
    const ordering: OrderingPolicy = { policy: "WorkloadCount", controlPlaneNode: "Skip" };
    const plan = planDiscovery(workloads, nodes, ordering);

    it("expects every in-scope VM, sorted by key", () => {
      assert.deepEqual(keys(plan.expected), [
        "a/down",
        "a/ghost",
        "a/run2",
        "a/run3",
        "b/cp",
        "b/run1",
        "c/nodisk",
        "c/stopped",
      ]);
    });

    it("puts every expected VM in exactly one step or in unplaced", () => {
      const placed = plan.steps.flatMap((s) => keys(s.workloads));
      const unplaced = keys(plan.unplaced.map((u) => u.workload));
      assert.deepEqual([...placed, ...unplaced].sort(), keys(plan.expected));
    });

    it("lists unplaced VMs sorted by key with a one-line message naming VM and node", () => {
      assert.deepEqual(summary(plan).unplaced, [
        "a/down:NodeNotReady@w3",
        "a/ghost:NodeNotReady@gone",
        "b/cp:NodeSkipped@cp1",
        "c/nodisk:NoSharedDisk@w1",
        "c/stopped:NotRunning",
      ]);
      for (const u of plan.unplaced) {
        assert.ok(u.message.includes(workloadKey(u.workload)), u.message);
        assert.ok(!u.message.includes("\n"), u.message);
        if (u.lastNode) assert.ok(u.message.includes(u.lastNode), u.message);
      }
      const ghost = plan.unplaced.find((u) => u.workload.name === "ghost");
      assert.match(ghost?.message ?? "", /Node object was not found/);
    });

    it("returns bare refs in expected and unplaced", () => {
      for (const r of [...plan.expected, ...plan.unplaced.map((u) => u.workload)]) {
        assert.deepEqual(Object.keys(r).sort(), ["name", "namespace"]);
      }
    });

    it("does not depend on the order of its inputs", () => {
      const again = planDiscovery([...workloads].reverse(), [...nodes].reverse(), ordering);
      assert.deepEqual(again, plan);
    });
  });

  it("a not-Ready node does not change the Random order of the others", () => {
    const names = ["n1", "n2", "n3", "n4", "n5", "n6"];
    const workloads = names.map((n) => vm(`ns/${n}`, { node: n }));
    const nodes = names.map((n) => node(n));
    const ordering: OrderingPolicy = { policy: "Random", seed: 11 };
    const healthy = planDiscovery(workloads, nodes, ordering).steps.map((s) => s.node);
    const withBroken = planDiscovery(
      [...workloads, vm("ns/x", { node: "broken" })],
      [...nodes, node("broken", { ready: false })],
      ordering,
    ).steps.map((s) => s.node);
    assert.deepEqual(withBroken, healthy);
  });

  it("keeps the observed VM objects in the steps", () => {
    const a = vm("ns/a", { node: "n1", files: ["x.img", "y.img"], uid: "u-1" });
    const plan = planDiscovery([a], [node("n1")], byCount);
    assert.deepEqual(plan.steps[0]?.workloads, [a]);
  });

  it("expects a VM named explicitly that does not exist, and reports it NotFound, once", () => {
    const plan = planDiscovery([vm("ns/a", { node: "n1" })], [node("n1")], byCount, [
      { namespace: "ns", name: "typo" },
      { namespace: "ns", name: "typo" },
      { namespace: "ns", name: "a" },
    ]);
    assert.deepEqual(keys(plan.expected), ["ns/a", "ns/typo"]);
    assert.deepEqual(summary(plan), { steps: ["1:n1=[ns/a]"], unplaced: ["ns/typo:NotFound"] });
    assert.match(plan.unplaced[0]!.message, /there is no such VM/);
  });

  it("reports a VM SharedFile or UnsafeFile with the detail that names the path", () => {
    const plan = planDiscovery(
      [
        vm("ns/a", {
          node: "n1",
          fileProblem: { reason: "SharedFile", detail: "x/disk.img is also named by VM ns/b" },
        }),
      ],
      [node("n1")],
      byCount,
    );
    assert.deepEqual(summary(plan), { steps: [], unplaced: ["ns/a:SharedFile@n1"] });
    assert.match(plan.unplaced[0]!.message, /x\/disk\.img is also named by VM ns\/b/);
  });
});
