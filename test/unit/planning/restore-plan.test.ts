import assert from "node:assert/strict";
import type {
  RestoreAction,
  RestorePlanEntry,
  RestorePlacement,
  RestorePlanInput,
  RestoreWorkload,
} from "../../../src/planning/index.js";
import { planRestore } from "../../../src/planning/index.js";
import { node, ref, vm } from "./fixtures.js";

/** A VM to restore from backup "bk". */
function wl(key: string, fields: Partial<RestoreWorkload> = {}): RestoreWorkload {
  return { ...ref(key), backup: "bk", ...fields };
}

/**
 * Three Ready workers n1..n3 and nothing running, unless the case says otherwise; conflictPolicy Migrate, as the
 * API server defaults it.
 */
function input(fields: Partial<RestorePlanInput>): RestorePlanInput {
  return {
    workloads: [],
    observed: [],
    nodes: [node("n1"), node("n2"), node("n3")],
    conflictPolicy: "Migrate",
    ordering: { policy: "WorkloadCount" },
    ...fields,
  };
}

/** "ns/name action restoreNode" per entry, for compact assertions. */
function summary(entries: readonly RestorePlanEntry[]): string[] {
  return entries.map((e) => `${e.namespace}/${e.name} ${e.action} ${e.restoreNode ?? "-"}`);
}

interface Case {
  title: string;
  input: RestorePlanInput;
  /** summary() of the entries, in order. */
  expected: string[];
  /** Substrings of each entry's reason, in the same order. */
  reasons?: (string | RegExp)[];
  /** Each entry's machine-readable problem, in the same order ("-": none). */
  problems?: string[];
  nodeOrder?: string[];
}

const cases: Case[] = [
  {
    title: "ActiveNode: a VM running on its restore node is restored in place",
    input: input({ workloads: [wl("ns/a")], observed: [vm("ns/a", { node: "n2" })] }),
    expected: ["ns/a RestoreInPlace n2"],
    reasons: [/the node it runs on.*stops it, restores its disks and starts it again on n2/],
    nodeOrder: ["n2"],
  },
  {
    title: "targetNode elsewhere with conflictPolicy Migrate migrates first",
    input: input({ workloads: [wl("ns/a", { targetNode: "n3" })], observed: [vm("ns/a", { node: "n1" })] }),
    expected: ["ns/a MigrateThenRestore n3"],
    reasons: [/targetNode of this VM.*live-migrated from n1/],
  },
  {
    title: "targetNode elsewhere with conflictPolicy Stop stops first",
    input: input({
      workloads: [wl("ns/a", { targetNode: "n3" })],
      observed: [vm("ns/a", { node: "n1" })],
      conflictPolicy: "Stop",
    }),
    expected: ["ns/a StopThenRestore n3"],
    reasons: [/stopped on n1 first/],
  },
  {
    title: "a VM that is not Running counts as not active",
    input: input({
      workloads: [wl("ns/a", { originalNode: "n2" })],
      observed: [vm("ns/a", { node: "n1", phase: "Succeeded" })],
    }),
    expected: ["ns/a RestoreThenStart n2"],
    reasons: [/not running; the node it was captured on/],
  },
  {
    title: "inactiveTarget default OriginalNode: the node it was captured on",
    input: input({ workloads: [wl("ns/a", { originalNode: "n3" })] }),
    expected: ["ns/a RestoreThenStart n3"],
  },
  {
    title: "inactiveTarget OriginalNode: the original node is gone",
    input: input({
      workloads: [wl("ns/a", { originalNode: "gone" })],
      placement: { inactiveTarget: { policy: "OriginalNode" } },
    }),
    expected: ["ns/a Skip -"],
    reasons: [/restore node gone \(it is not running; the node it was captured on\) does not exist/],
    problems: ["NodeNotFound"],
    nodeOrder: [],
  },
  {
    title: "inactiveTarget OriginalNode: the original node is not Ready",
    input: input({
      workloads: [wl("ns/a", { originalNode: "n2" })],
      nodes: [node("n1"), node("n2", { ready: false })],
    }),
    expected: ["ns/a Skip -"],
    reasons: ["is not Ready"],
    problems: ["NodeNotReady"],
  },
  {
    title: "inactiveTarget OriginalNode: the backup does not record it",
    input: input({ workloads: [wl("ns/a")] }),
    expected: ["ns/a Skip -"],
    reasons: ["does not record the node it was captured on"],
    problems: ["OriginalNodeUnknown"],
  },
  {
    title: "inactiveTarget node",
    input: input({
      workloads: [wl("ns/a", { originalNode: "n1" })],
      placement: { inactiveTarget: { node: "n2" } },
    }),
    expected: ["ns/a RestoreThenStart n2"],
    reasons: ["inactiveTarget.node"],
  },
  {
    title:
      "inactiveTarget MostFreeResources: most memory, then CPU, then name; not Ready/cordoned nodes are not picked",
    input: input({
      workloads: [wl("ns/a")],
      placement: { inactiveTarget: { policy: "MostFreeResources" } },
      nodes: [
        node("n1", { freeMemoryBytes: 8, freeCpuMilli: 1 }),
        node("n2", { freeMemoryBytes: 8, freeCpuMilli: 5 }),
        node("n0", { freeMemoryBytes: 8, freeCpuMilli: 5 }),
        node("n3", { freeMemoryBytes: 4, freeCpuMilli: 900 }),
        node("down", { freeMemoryBytes: 99, ready: false }),
        node("cordoned", { freeMemoryBytes: 99, schedulable: false }),
      ],
    }),
    expected: ["ns/a RestoreThenStart n0"],
    reasons: ["most free memory and CPU"],
  },
  {
    title: "inactiveTarget MostFreeResources with no usable node",
    input: input({
      workloads: [wl("ns/a")],
      placement: { inactiveTarget: { policy: "MostFreeResources" } },
      nodes: [node("n1", { ready: false })],
    }),
    expected: ["ns/a Skip -"],
    reasons: ["no Ready, schedulable node is available"],
    problems: ["NoEligibleNode"],
  },
  {
    title: "inactiveTarget FewestWorkloads: fewest running VMs now, then name",
    input: input({
      workloads: [wl("ns/a")],
      placement: { inactiveTarget: { policy: "FewestWorkloads" } },
      observed: [
        vm("ns/x", { node: "n1" }),
        vm("ns/y", { node: "n2" }),
        vm("ns/z", { node: "n3" }),
        vm("ns/w", { node: "n3" }),
        vm("ns/stopped", { node: "n1", phase: "Failed" }),
      ],
    }),
    expected: ["ns/a RestoreThenStart n1"],
    reasons: ["fewest VMs (1)"],
  },
  {
    title: "Specified: the global targetNode, per-VM targetNode wins",
    input: input({
      workloads: [wl("ns/a"), wl("ns/b", { targetNode: "n1" }), wl("ns/c")],
      observed: [vm("ns/a", { node: "n2" }), vm("ns/c", { node: "n3" })],
      placement: { policy: "Specified", targetNode: "n3" },
    }),
    expected: ["ns/a MigrateThenRestore n3", "ns/c RestoreInPlace n3", "ns/b RestoreThenStart n1"],
    reasons: ["spec.placement.targetNode", "spec.placement.targetNode", "the targetNode of this VM"],
    nodeOrder: ["n3", "n1"],
  },
  {
    title: "Specified without any targetNode",
    input: input({ workloads: [wl("ns/a")], placement: { policy: "Specified" } }),
    expected: ["ns/a Skip -"],
    reasons: ["needs a targetNode"],
    problems: ["TargetNodeRequired"],
  },
  {
    title: "ActiveNode: per-VM targetNode overrides the active node",
    input: input({ workloads: [wl("ns/a", { targetNode: "n1" })], observed: [vm("ns/a", { node: "n1" })] }),
    expected: ["ns/a RestoreInPlace n1"],
  },
  {
    title: "a restore node that does not exist or is not Ready is skipped",
    input: input({
      workloads: [wl("ns/a", { targetNode: "ghost" }), wl("ns/b")],
      observed: [vm("ns/b", { node: "n2" })],
      nodes: [node("n1"), node("n2", { ready: false })],
    }),
    expected: ["ns/a Skip -", "ns/b Skip -"],
    reasons: [
      "restore node ghost (the targetNode of this VM) does not exist",
      "restore node n2 (the node it runs on) is not Ready",
    ],
    problems: ["TargetNodeNotFound", "NodeNotReady"],
    nodeOrder: [],
  },
  {
    title: "a group with members on two nodes goes where most of them run, and the rest follow",
    input: input({
      workloads: [wl("app/web"), wl("app/db"), wl("app/cache"), wl("app/idle"), wl("other/x")],
      observed: [
        vm("app/web", { node: "n2" }),
        vm("app/db", { node: "n1" }),
        vm("app/cache", { node: "n1" }),
        vm("other/x", { node: "n2" }),
      ],
      groups: [{ name: "shop", workloads: [ref("app/web"), ref("app/db"), ref("app/cache"), ref("app/idle")] }],
    }),
    expected: [
      "app/cache RestoreInPlace n1",
      "app/db RestoreInPlace n1",
      "app/idle RestoreThenStart n1",
      "app/web MigrateThenRestore n1",
      "other/x RestoreInPlace n2",
    ],
    reasons: [
      /where 2 of 4 members of group shop run/,
      /group shop/,
      /group shop/,
      /group shop/,
      "the node it runs on",
    ],
    nodeOrder: ["n1", "n2"],
  },
  {
    title: "a group with a tie between two nodes takes the first by name",
    input: input({
      workloads: [wl("ns/a"), wl("ns/b")],
      observed: [vm("ns/a", { node: "n3" }), vm("ns/b", { node: "n2" })],
      groups: [{ name: "g", workloads: [ref("ns/a"), ref("ns/b")] }],
      conflictPolicy: "Stop",
    }),
    expected: ["ns/a StopThenRestore n2", "ns/b RestoreInPlace n2"],
  },
  {
    title: "a group follows the targetNode of one member",
    input: input({
      workloads: [wl("ns/a", { targetNode: "n3" }), wl("ns/b")],
      observed: [vm("ns/a", { node: "n1" }), vm("ns/b", { node: "n1" })],
      groups: [{ name: "g", workloads: [ref("ns/a"), ref("ns/b")] }],
    }),
    expected: ["ns/a MigrateThenRestore n3", "ns/b MigrateThenRestore n3"],
    reasons: ["the targetNode of ns/a of group g", "the targetNode of ns/a of group g"],
  },
  {
    title: "a group whose members name different targetNodes is skipped as a whole",
    input: input({
      workloads: [wl("ns/a", { targetNode: "n1" }), wl("ns/b", { targetNode: "n2" }), wl("ns/c")],
      groups: [{ name: "g", workloads: [ref("ns/a"), ref("ns/b"), ref("ns/c")] }],
    }),
    expected: ["ns/a Skip -", "ns/b Skip -", "ns/c Skip -"],
    reasons: [/group g name different targetNodes \(n1, n2\)/, /n1, n2/, /n1, n2/],
    problems: ["GroupTargetsDiffer", "GroupTargetsDiffer", "GroupTargetsDiffer"],
    nodeOrder: [],
  },
  {
    title: "a group where nothing runs: inactiveTarget OriginalNode takes the node most members were captured on",
    input: input({
      workloads: [
        wl("ns/a", { originalNode: "n3" }),
        wl("ns/b", { originalNode: "n2" }),
        wl("ns/c", { originalNode: "n2" }),
      ],
      groups: [{ name: "g", workloads: [ref("ns/a"), ref("ns/b"), ref("ns/c")] }],
    }),
    expected: ["ns/a RestoreThenStart n2", "ns/b RestoreThenStart n2", "ns/c RestoreThenStart n2"],
    reasons: [/no member of group g is running; the node most members were captured on/],
  },
  {
    title: "a group where nothing runs: inactiveTarget MostFreeResources applies to the whole group",
    input: input({
      workloads: [wl("ns/a"), wl("ns/b")],
      nodes: [node("n1"), node("n2", { freeMemoryBytes: 2 * 1024 ** 3 })],
      placement: { inactiveTarget: { policy: "MostFreeResources" } },
      groups: [{ name: "g", workloads: [ref("ns/a"), ref("ns/b")] }],
    }),
    expected: ["ns/a RestoreThenStart n2", "ns/b RestoreThenStart n2"],
  },
  {
    title: "a group whose restore node is not Ready is skipped as a whole",
    input: input({
      workloads: [wl("ns/a"), wl("ns/b")],
      observed: [vm("ns/a", { node: "n1" }), vm("ns/b", { node: "n2" })],
      nodes: [node("n1", { ready: false }), node("n2")],
      groups: [{ name: "g", workloads: [ref("ns/a"), ref("ns/b")] }],
    }),
    expected: ["ns/a Skip -", "ns/b Skip -"],
    reasons: ["restore node n1", "restore node n1"],
  },
  {
    title: "a VM listed twice is planned once, from its first entry",
    input: input({
      workloads: [wl("ns/a", { targetNode: "n1" }), wl("ns/a", { targetNode: "n2" })],
      observed: [vm("ns/a", { node: "n1" })],
    }),
    expected: ["ns/a RestoreInPlace n1"],
    problems: ["ListedTwice"],
  },
  {
    title: "ordering: nodes by orderNodes, entries by node position then name, Skip last",
    input: input({
      workloads: [wl("z/one"), wl("b/two"), wl("a/three"), wl("c/four", { targetNode: "ghost" }), wl("a/five")],
      observed: [
        vm("z/one", { node: "n1" }),
        vm("b/two", { node: "n3" }),
        vm("a/three", { node: "n3" }),
        vm("a/five", { node: "n2", phase: "Pending" }),
      ],
      placement: { inactiveTarget: { node: "n1" } },
      ordering: { policy: "Explicit", nodes: ["n1"] },
    }),
    expected: [
      "a/five RestoreThenStart n1",
      "z/one RestoreInPlace n1",
      "a/three RestoreInPlace n3",
      "b/two RestoreInPlace n3",
      "c/four Skip -",
    ],
    nodeOrder: ["n1", "n3"],
  },
  {
    title: "ordering: WorkloadCount counts the VMs restored on each node",
    input: input({
      workloads: [wl("ns/a"), wl("ns/b"), wl("ns/c")],
      observed: [vm("ns/a", { node: "n1" }), vm("ns/b", { node: "n2" }), vm("ns/c", { node: "n2" })],
    }),
    expected: ["ns/b RestoreInPlace n2", "ns/c RestoreInPlace n2", "ns/a RestoreInPlace n1"],
    nodeOrder: ["n2", "n1"],
  },
  {
    title: "ordering: CriticalWorkload looks at the restored VMs' labels",
    input: input({
      workloads: [wl("ns/a"), wl("ns/b"), wl("ns/c")],
      observed: [vm("ns/a", { node: "n3", critical: true }), vm("ns/b", { node: "n2" }), vm("ns/c", { node: "n2" })],
      ordering: { policy: "CriticalWorkload" },
    }),
    expected: ["ns/a RestoreInPlace n3", "ns/b RestoreInPlace n2", "ns/c RestoreInPlace n2"],
    nodeOrder: ["n3", "n2"],
  },
  {
    title:
      "ordering: control-plane nodes left out by controlPlaneNode Skip are skipped, and not picked for inactive VMs",
    input: input({
      workloads: [wl("ns/a"), wl("ns/b")],
      observed: [vm("ns/a", { node: "cp" })],
      nodes: [node("cp", { controlPlane: true, freeMemoryBytes: 99 * 1024 ** 3 }), node("n1")],
      placement: { inactiveTarget: { policy: "MostFreeResources" } },
      ordering: { policy: "WorkloadCount", controlPlaneNode: "Skip" },
    }),
    expected: ["ns/b RestoreThenStart n1", "ns/a Skip -"],
    reasons: ["most free memory", "control-plane node and ordering.controlPlaneNode is Skip"],
    problems: ["-", "ControlPlaneSkipped"],
    nodeOrder: ["n1"],
  },
];

describe("planRestore", () => {
  for (const c of cases) {
    it(c.title, () => {
      const plan = planRestore(c.input);
      assert.deepEqual(summary(plan.entries), c.expected);
      c.reasons?.forEach((expected, index) => {
        const reason = plan.entries[index]?.reason ?? "";
        if (typeof expected === "string") assert.ok(reason.includes(expected), `${reason} lacks ${expected}`);
        else assert.match(reason, expected);
      });
      if (c.nodeOrder !== undefined) assert.deepEqual(plan.nodeOrder, c.nodeOrder);
      else {
        const used = plan.entries.flatMap((e) => (e.restoreNode === undefined ? [] : [e.restoreNode]));
        assert.deepEqual(plan.nodeOrder, [...new Set(used)]);
      }
      if (c.problems !== undefined) {
        assert.deepEqual(
          plan.entries.map((e) => e.problem ?? "-"),
          c.problems,
        );
      }
      for (const entry of plan.entries) {
        assert.match(entry.reason, /^[A-Z].*\.$/, "a reason is one sentence");
        assert.equal(entry.backup, "bk");
        if (entry.action === "Skip") assert.match(entry.problem ?? "", /^[A-Z][A-Za-z]+$/, "a Skip says why");
      }
    });
  }

  it("fills in every field of an entry, without explicit undefined", () => {
    const plan = planRestore(
      input({
        workloads: [wl("ns/a", { backup: "nightly" }), wl("ns/b", { backup: "weekly", targetNode: "n1" })],
        observed: [vm("ns/a", { node: "n2" }), vm("ns/b", { node: "n2" })],
        groups: [{ name: "g", workloads: [ref("ns/a"), ref("ns/b")] }],
      }),
    );
    const [a, b] = plan.entries;
    assert.deepEqual(a, {
      namespace: "ns",
      name: "a",
      backup: "nightly",
      activeNode: "n2",
      restoreNode: "n1",
      action: "MigrateThenRestore",
      reason: a?.reason,
      group: "g",
    });
    assert.equal(b?.backup, "weekly");
    const inactive = planRestore(input({ workloads: [wl("ns/c", { originalNode: "n1" })] })).entries[0];
    assert.deepEqual(Object.keys(inactive ?? {}).sort(), [
      "action",
      "backup",
      "name",
      "namespace",
      "reason",
      "restoreNode",
    ]);
  });

  // Every problem of the request, each with a machine-readable reason: "ns/name Reason: message".
  const problemCases: { title: string; input: RestorePlanInput; problems: string[]; actions: RestoreAction[] }[] = [
    {
      title: "a VM listed twice",
      input: input({ workloads: [wl("ns/a"), wl("ns/a"), wl("ns/a")], observed: [vm("ns/a", { node: "n1" })] }),
      problems: ["ns/a ListedTwice: It is listed 3 times in spec.workloads; it is planned once, from its first entry."],
      actions: ["RestoreInPlace"],
    },
    {
      title: "a VM in two groups is skipped; the groups go on without it",
      input: input({
        workloads: [wl("ns/a"), wl("ns/b"), wl("ns/shared")],
        observed: [vm("ns/a", { node: "n1" }), vm("ns/b", { node: "n2" }), vm("ns/shared", { node: "n3" })],
        groups: [
          { name: "g1", workloads: [ref("ns/a"), ref("ns/shared")] },
          { name: "g2", workloads: [ref("ns/b"), ref("ns/shared"), ref("ns/shared")] },
        ],
      }),
      problems: [
        "ns/shared InGroupsTwice: Skipped: it is listed in more than one group (g1, g2); a VM can be in one only.",
      ],
      actions: ["RestoreInPlace", "RestoreInPlace", "Skip"],
    },
    {
      title: "a placement.targetNode that does not exist skips every VM placed there",
      input: input({
        workloads: [wl("ns/a"), wl("ns/b"), wl("ns/c", { targetNode: "n2" })],
        observed: [vm("ns/a", { node: "n1" })],
        placement: { policy: "Specified", targetNode: "ghost" },
      }),
      problems: [
        "ns/a TargetNodeNotFound: Skipped: restore node ghost (spec.placement.targetNode) does not exist.",
        "ns/b TargetNodeNotFound: Skipped: restore node ghost (spec.placement.targetNode) does not exist.",
      ],
      actions: ["RestoreThenStart", "Skip", "Skip"],
    },
    {
      title: "an inactiveTarget.node that does not exist",
      input: input({ workloads: [wl("ns/a")], placement: { inactiveTarget: { node: "ghost" } } }),
      problems: [
        "ns/a TargetNodeNotFound: Skipped: restore node ghost (it is not running; spec.placement.inactiveTarget.node) does not exist.",
      ],
      actions: ["Skip"],
    },
    {
      title: "several problems, every one reported, sorted by VM; a VM listed twice and in two groups has both",
      input: input({
        workloads: [wl("ns/z", { targetNode: "ghost" }), wl("ns/b"), wl("ns/b"), wl("ns/a"), wl("ns/c")],
        observed: [vm("ns/b", { node: "n1" }), vm("ns/a", { node: "n2" }), vm("ns/c", { node: "n2" })],
        nodes: [node("n1"), node("n2", { ready: false })],
        groups: [
          { name: "g1", workloads: [ref("ns/b"), ref("ns/x")] },
          { name: "g2", workloads: [ref("ns/b"), ref("ns/y")] },
        ],
      }),
      problems: [
        "ns/a NodeNotReady: Skipped: restore node n2 (the node it runs on) is not Ready.",
        "ns/b ListedTwice: It is listed 2 times in spec.workloads; it is planned once, from its first entry.",
        "ns/b InGroupsTwice: Skipped: it is listed in more than one group (g1, g2); a VM can be in one only.",
        "ns/c NodeNotReady: Skipped: restore node n2 (the node it runs on) is not Ready.",
        "ns/z TargetNodeNotFound: Skipped: restore node ghost (the targetNode of this VM) does not exist.",
      ],
      actions: ["Skip", "Skip", "Skip", "Skip"],
    },
    {
      title: "no problem for a clean spec",
      input: input({ workloads: [wl("ns/a")], observed: [vm("ns/a", { node: "n1" })] }),
      problems: [],
      actions: ["RestoreInPlace"],
    },
  ];
  for (const c of problemCases) {
    it(`reports problems: ${c.title}`, () => {
      const plan = planRestore(c.input);
      assert.deepEqual(
        plan.problems.map((p) => `${p.namespace}/${p.name} ${p.reason}: ${p.message}`),
        c.problems,
      );
      assert.deepEqual(
        plan.entries.map((e) => e.action),
        c.actions,
      );
      // Each VM's entry carries its problem: why it is skipped before a mistake the plan worked around.
      for (const e of plan.entries) {
        const own = plan.problems.filter((p) => p.namespace === e.namespace && p.name === e.name);
        const expected = own.find((p) => p.reason !== "ListedTwice") ?? own[0];
        assert.equal(e.problem, expected?.reason, `${e.namespace}/${e.name}`);
      }
    });
  }

  it("never plans two instances: every VM appears once, and a running VM is only restored after it is moved or stopped", () => {
    const plan = planRestore(
      input({
        workloads: [wl("ns/a", { targetNode: "n2" }), wl("ns/b"), wl("ns/a"), wl("ns/c", { originalNode: "n3" })],
        observed: [vm("ns/a", { node: "n1" }), vm("ns/b", { node: "n1" })],
        conflictPolicy: "Stop",
      }),
    );
    assert.deepEqual(plan.entries.map((e) => `${e.namespace}/${e.name}`).sort(), ["ns/a", "ns/b", "ns/c"]);
    for (const e of plan.entries) {
      if (e.activeNode === undefined) assert.equal(e.action, "RestoreThenStart");
      else if (e.activeNode === e.restoreNode) assert.equal(e.action, "RestoreInPlace");
      else assert.equal(e.action, "StopThenRestore");
    }
  });

  it("rejects an unknown inactiveTarget policy", () => {
    const placement = { inactiveTarget: { policy: "Nearest" } } as unknown as RestorePlacement;
    assert.throws(() => planRestore(input({ workloads: [wl("ns/a")], placement })), /Nearest/);
  });
});
