import assert from "node:assert/strict";
import type { NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import { decideThaws, withThawed, type FreezeView } from "../../../src/controllers/federatedbackup/thaw.js";
import type { ObservedNode } from "../../../src/planning/index.js";

const node = (name: string, ready: boolean): ObservedNode => ({
  name,
  ready,
  schedulable: true,
  controlPlane: false,
  freeCpuMilli: 0,
  freeMemoryBytes: 0,
  recentFailures: 0,
});

const step = (name: string, vms: string[], thawPending = true): NodeSnapshot =>
  ({
    metadata: { name, namespace: "ns" },
    spec: { workloads: vms.map((n) => ({ namespace: "ns", name: n, files: [] })) },
    status: { phase: "Failed", thawPending },
  }) as unknown as NodeSnapshot;

const vmi = (name: string, frozen: boolean, node?: string, phase = "Running"): [string, FreezeView] => [
  `ns/${name}`,
  { namespace: "ns", name, frozen, phase, ...(node ? { node } : {}) },
];

describe("decideThaws", () => {
  it("thaws a frozen VM once it runs on a Ready node, its own or another", () => {
    const d = decideThaws(
      [step("s-c", ["c1", "c2", "c3"])],
      new Map([vmi("c1", true, "node-c"), vmi("c2", true, "node-a"), vmi("c3", false, "node-c")]),
      [node("node-a", true), node("node-c", true)],
    );
    assert.deepEqual(
      d.thaw.map((t) => [t.name, t.node]),
      [
        ["c1", "node-c"],
        ["c2", "node-a"],
      ],
    );
    assert.deepEqual(d.settled, ["s-c"]);
    assert.equal(d.waiting, false);
  });

  it("waits while a frozen VM's node is not Ready, and settles VMs that are gone", () => {
    const d = decideThaws(
      [step("s-c", ["c1", "gone"]), step("s-b", ["b1"])],
      new Map([vmi("c1", true, "node-c"), vmi("b1", true, "node-b", "Failed")]),
      [node("node-c", false), node("node-b", true)],
    );
    assert.deepEqual(d.thaw, []);
    assert.deepEqual(d.settled, []);
    assert.equal(d.waiting, true);
    const settled = decideThaws([step("s", ["gone"])], new Map(), []);
    assert.deepEqual(settled, { thaw: [], settled: ["s"], waiting: false });
  });

  it("leaves steps without thawPending alone", () => {
    const d = decideThaws([step("s", ["c1"], false)], new Map([vmi("c1", true, "node-c")]), [node("node-c", true)]);
    assert.deepEqual(d, { thaw: [], settled: [], waiting: false });
  });

  it("keeps the newest 1000 thaw records", () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ namespace: "ns", name: `v${i}`, node: "n", time: "t0" }));
    const out = withThawed(many, [{ namespace: "ns", name: "last", node: "n" }], "t1");
    assert.equal(out.length, 1000);
    assert.deepEqual(out.at(-1), { namespace: "ns", name: "last", node: "n", time: "t1" });
    assert.equal(out[0]!.name, "v1");
  });
});
