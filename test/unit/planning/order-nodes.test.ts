import assert from "node:assert/strict";
import type { NodeCandidate, OrderingPolicy } from "../../../src/planning/index.js";
import { orderNodes } from "../../../src/planning/index.js";
import { candidate as c } from "./fixtures.js";

interface Case {
  title: string;
  candidates: NodeCandidate[];
  ordering: OrderingPolicy;
  order: string[];
  skipped?: string[];
}

function runCases(cases: Case[]): void {
  for (const { title, candidates, ordering, order, skipped = [] } of cases) {
    it(title, () => {
      assert.deepEqual(orderNodes(candidates, ordering), { order, skipped });
    });
  }
}

describe("orderNodes", () => {
  describe("WorkloadCount", () => {
    runCases([
      {
        title: "most workloads first",
        candidates: [c("a", { workloads: 1 }), c("b", { workloads: 3 }), c("c", { workloads: 2 })],
        ordering: { policy: "WorkloadCount" },
        order: ["b", "c", "a"],
      },
      {
        title: "ties broken by name ascending",
        candidates: [c("b", { workloads: 2 }), c("c", { workloads: 1 }), c("a", { workloads: 2 })],
        ordering: { policy: "WorkloadCount" },
        order: ["a", "b", "c"],
      },
      {
        title: "ignores every other figure",
        candidates: [
          c("a", { workloads: 1, critical: 1, maxPriority: 9, recentFailures: 9, freeMemoryBytes: 9e12 }),
          c("b", { workloads: 2 }),
        ],
        ordering: { policy: "WorkloadCount" },
        order: ["b", "a"],
      },
      { title: "no candidates", candidates: [], ordering: { policy: "WorkloadCount" }, order: [] },
    ]);
  });

  describe("FailureRate", () => {
    runCases([
      {
        title: "most recent failures first (shakiest nodes while they are up)",
        candidates: [c("a", { recentFailures: 0 }), c("b", { recentFailures: 5 }), c("c", { recentFailures: 1 })],
        ordering: { policy: "FailureRate" },
        order: ["b", "c", "a"],
      },
      {
        title: "ties broken by name, not by workload count",
        candidates: [c("b", { recentFailures: 1, workloads: 1 }), c("a", { recentFailures: 1, workloads: 9 })],
        ordering: { policy: "FailureRate" },
        order: ["a", "b"],
      },
      {
        title: "ties broken by name even when workload counts differ the other way",
        candidates: [c("a", { recentFailures: 2, workloads: 1 }), c("b", { recentFailures: 2, workloads: 9 })],
        ordering: { policy: "FailureRate" },
        order: ["a", "b"],
      },
    ]);
  });

  describe("CriticalWorkload", () => {
    runCases([
      {
        title: "most critical workloads first",
        candidates: [c("a", { critical: 0, workloads: 9 }), c("b", { critical: 2 }), c("c", { critical: 1 })],
        ordering: { policy: "CriticalWorkload" },
        order: ["b", "c", "a"],
      },
      {
        title: "same critical count: highest maxPriority first",
        candidates: [c("a", { critical: 1, maxPriority: 1, workloads: 9 }), c("b", { critical: 1, maxPriority: 5 })],
        ordering: { policy: "CriticalWorkload" },
        order: ["b", "a"],
      },
      {
        title: "negative priorities sort below the default 0",
        candidates: [c("a", { maxPriority: -3 }), c("b", { maxPriority: 0 })],
        ordering: { policy: "CriticalWorkload" },
        order: ["b", "a"],
      },
      {
        title: "same critical count and priority: most workloads first",
        candidates: [
          c("a", { critical: 1, maxPriority: 2, workloads: 1 }),
          c("b", { critical: 1, maxPriority: 2, workloads: 4 }),
        ],
        ordering: { policy: "CriticalWorkload" },
        order: ["b", "a"],
      },
      {
        title: "all equal: name ascending",
        candidates: [c("c", { critical: 1 }), c("a", { critical: 1 }), c("b", { critical: 1 })],
        ordering: { policy: "CriticalWorkload" },
        order: ["a", "b", "c"],
      },
    ]);
  });

  describe("FreeResources", () => {
    runCases([
      {
        title: "most free memory first",
        candidates: [c("a", { freeMemoryBytes: 1 }), c("b", { freeMemoryBytes: 3 }), c("c", { freeMemoryBytes: 2 })],
        ordering: { policy: "FreeResources" },
        order: ["b", "c", "a"],
      },
      {
        title: "memory wins over CPU",
        candidates: [
          c("a", { freeMemoryBytes: 2, freeCpuMilli: 1 }),
          c("b", { freeMemoryBytes: 1, freeCpuMilli: 9000 }),
        ],
        ordering: { policy: "FreeResources" },
        order: ["a", "b"],
      },
      {
        title: "same memory: most free CPU first",
        candidates: [
          c("a", { freeMemoryBytes: 2, freeCpuMilli: 100 }),
          c("b", { freeMemoryBytes: 2, freeCpuMilli: 200 }),
        ],
        ordering: { policy: "FreeResources" },
        order: ["b", "a"],
      },
      {
        title: "same memory and CPU: name ascending",
        candidates: [c("b", { freeMemoryBytes: 2, freeCpuMilli: 1 }), c("a", { freeMemoryBytes: 2, freeCpuMilli: 1 })],
        ordering: { policy: "FreeResources" },
        order: ["a", "b"],
      },
      {
        title: "overcommitted nodes (negative free) come last",
        candidates: [c("a", { freeMemoryBytes: -5 }), c("b", { freeMemoryBytes: 0 })],
        ordering: { policy: "FreeResources" },
        order: ["b", "a"],
      },
      {
        title: "infinite figures compare without NaN",
        candidates: [
          c("a", { freeMemoryBytes: Infinity, freeCpuMilli: 1 }),
          c("b", { freeMemoryBytes: Infinity, freeCpuMilli: 2 }),
        ],
        ordering: { policy: "FreeResources" },
        order: ["b", "a"],
      },
    ]);
  });

  describe("Explicit", () => {
    runCases([
      {
        title: "the listed order, whatever the figures",
        candidates: [c("a", { workloads: 9 }), c("b"), c("c")],
        ordering: { policy: "Explicit", nodes: ["c", "a", "b"] },
        order: ["c", "a", "b"],
      },
      {
        title: "unlisted candidates come after the listed ones, nothing is skipped",
        candidates: [c("a"), c("b"), c("c")],
        ordering: { policy: "Explicit", nodes: ["b"] },
        order: ["b", "a", "c"],
      },
      {
        title: "unlisted candidates follow WorkloadCount rules (most workloads, then name)",
        candidates: [c("x"), c("d", { workloads: 1 }), c("e", { workloads: 5 }), c("c", { workloads: 1 })],
        ordering: { policy: "Explicit", nodes: ["x"] },
        order: ["x", "e", "c", "d"],
      },
      {
        title: "listed nodes that are not candidates are ignored",
        candidates: [c("a"), c("b")],
        ordering: { policy: "Explicit", nodes: ["gone", "b", "idle", "a"] },
        order: ["b", "a"],
      },
      {
        title: "a name listed twice counts at its first position",
        candidates: [c("a"), c("b")],
        ordering: { policy: "Explicit", nodes: ["b", "a", "b"] },
        order: ["b", "a"],
      },
      {
        title: "no list: every candidate in WorkloadCount order",
        candidates: [c("a", { workloads: 1 }), c("b", { workloads: 2 })],
        ordering: { policy: "Explicit" },
        order: ["b", "a"],
      },
    ]);
  });

  describe("Random", () => {
    const names = ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"];
    const candidates = names.map((n) => c(n));

    it("is a permutation of the candidates", () => {
      for (let seed = 0; seed < 50; seed++) {
        const { order } = orderNodes(candidates, { policy: "Random", seed });
        assert.deepEqual([...order].sort(), names);
      }
    });

    it("same seed and same candidates give the same order", () => {
      const first = orderNodes(candidates, { policy: "Random", seed: 42 });
      assert.deepEqual(orderNodes(candidates, { policy: "Random", seed: 42 }), first);
    });

    it("does not depend on the order the candidates arrive in", () => {
      const reversed = [...candidates].reverse();
      for (const seed of [0, 1, 7, 2147483647]) {
        assert.deepEqual(
          orderNodes(reversed, { policy: "Random", seed }),
          orderNodes(candidates, { policy: "Random", seed }),
        );
      }
    });

    it("ignores the figures the other policies use", () => {
      const busy = candidates.map((x, i) => ({ ...x, workloads: i, recentFailures: 10 - i, critical: i % 2 }));
      assert.deepEqual(
        orderNodes(busy, { policy: "Random", seed: 3 }),
        orderNodes(candidates, { policy: "Random", seed: 3 }),
      );
    });

    it("seed defaults to 0", () => {
      assert.deepEqual(
        orderNodes(candidates, { policy: "Random" }),
        orderNodes(candidates, { policy: "Random", seed: 0 }),
      );
    });

    it("different seeds give different orders", () => {
      const orders = new Set<string>();
      for (let seed = 0; seed < 20; seed++) orders.add(orderNodes(candidates, { policy: "Random", seed }).order.join());
      assert.ok(orders.size >= 15, `only ${orders.size} distinct orders from 20 seeds`);
    });

    it("actually shuffles: each node is first for some seed", () => {
      const firsts = new Set<string>();
      for (let seed = 0; seed < 200; seed++)
        firsts.add(orderNodes(candidates, { policy: "Random", seed }).order[0] ?? "");
      assert.deepEqual([...firsts].sort(), names);
    });

    it("is pinned: a change of algorithm would reorder existing backups' retries", () => {
      assert.deepEqual(orderNodes(candidates, { policy: "Random", seed: 1 }).order, PINNED_SEED_1);
    });

    runCases([
      { title: "a single candidate", candidates: [c("a")], ordering: { policy: "Random", seed: 9 }, order: ["a"] },
      { title: "no candidates", candidates: [], ordering: { policy: "Random", seed: 9 }, order: [] },
    ]);
  });

  describe("controlPlaneNode", () => {
    // WorkloadCount alone would give: w1 (5), cp1 (4), w2 (3), cp2 (2), w3 (1).
    const mixed = [
      c("w1", { workloads: 5 }),
      c("cp1", { workloads: 4, controlPlane: true }),
      c("w2", { workloads: 3 }),
      c("cp2", { workloads: 2, controlPlane: true }),
      c("w3", { workloads: 1 }),
    ];
    runCases([
      {
        title: "absent: control-plane nodes are ordered like any other",
        candidates: mixed,
        ordering: { policy: "WorkloadCount" },
        order: ["w1", "cp1", "w2", "cp2", "w3"],
      },
      {
        title: "First: moved to the front, keeping their relative order",
        candidates: mixed,
        ordering: { policy: "WorkloadCount", controlPlaneNode: "First" },
        order: ["cp1", "cp2", "w1", "w2", "w3"],
      },
      {
        title: "Last: moved to the end, keeping their relative order",
        candidates: mixed,
        ordering: { policy: "WorkloadCount", controlPlaneNode: "Last" },
        order: ["w1", "w2", "w3", "cp1", "cp2"],
      },
      {
        title: "Skip: removed from the order and listed as skipped",
        candidates: mixed,
        ordering: { policy: "WorkloadCount", controlPlaneNode: "Skip" },
        order: ["w1", "w2", "w3"],
        skipped: ["cp1", "cp2"],
      },
      {
        title: "applies on top of Explicit too",
        candidates: mixed,
        ordering: { policy: "Explicit", nodes: ["w3", "cp2", "w1"], controlPlaneNode: "Last" },
        order: ["w3", "w1", "w2", "cp2", "cp1"],
      },
      {
        title: "Skip with only control-plane candidates leaves nothing to do",
        candidates: [c("cp1", { controlPlane: true })],
        ordering: { policy: "WorkloadCount", controlPlaneNode: "Skip" },
        order: [],
        skipped: ["cp1"],
      },
      {
        title: "First without control-plane candidates changes nothing",
        candidates: [c("a", { workloads: 1 }), c("b", { workloads: 2 })],
        ordering: { policy: "WorkloadCount", controlPlaneNode: "First" },
        order: ["b", "a"],
      },
    ]);
  });

  it("does not modify its input", () => {
    const candidates = [c("a", { workloads: 1 }), c("b", { workloads: 2 })];
    const copy = structuredClone(candidates);
    orderNodes(candidates, { policy: "WorkloadCount", controlPlaneNode: "Skip" });
    orderNodes(candidates, { policy: "Random", seed: 5 });
    assert.deepEqual(candidates, copy);
  });

  it("rejects an unknown policy instead of guessing", () => {
    assert.throws(
      () => orderNodes([c("a")], { policy: "Fastest" } as unknown as OrderingPolicy),
      /unknown ordering policy "Fastest"/,
    );
  });

  it("rejects an unknown controlPlaneNode instead of guessing", () => {
    const ordering = { policy: "WorkloadCount", controlPlaneNode: "Middle" } as unknown as OrderingPolicy;
    assert.throws(() => orderNodes([c("a")], ordering), /unknown controlPlaneNode "Middle"/);
  });
});

const PINNED_SEED_1 = ["n3", "n2", "n7", "n8", "n5", "n4", "n1", "n6"];
