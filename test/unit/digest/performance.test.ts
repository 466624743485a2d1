import assert from "node:assert/strict";
import {
  buildDigest,
  filterDigest,
  renderTable,
  type DigestInput,
  type DigestStep,
  type DigestVmi,
} from "../../../src/digest/index.js";
import { hoursAgo, node, NOW } from "./fixtures.js";

/** 10,000 VMIs on 100 nodes, 10 backups of one step per node (1,000 steps, 100,000 captured entries). */
function fleet(): DigestInput {
  const nodes = Array.from({ length: 100 }, (_, i) => `node-${String(i).padStart(3, "0")}`);
  const vmis: DigestVmi[] = Array.from({ length: 10_000 }, (_, i) => ({
    metadata: {
      namespace: `ns-${i % 50}`,
      name: `vm-${i}`,
      labels: { app: `app-${i % 7}`, tier: i % 2 ? "web" : "db" },
    },
    status: { phase: "Running", nodeName: nodes[i % nodes.length]! },
  }));
  const onNode = nodes.map((_, j) =>
    vmis.flatMap((v, i) =>
      i % nodes.length === j ? [{ i, ref: { namespace: v.metadata.namespace!, name: v.metadata.name! } }] : [],
    ),
  );
  const steps: DigestStep[] = [];
  for (let b = 0; b < 10; b++) {
    nodes.forEach((n, j) => {
      steps.push({
        metadata: { namespace: "ops", name: `backup-${b}-${n}`, labels: { "fedbackup.io/backup": `backup-${b}` } },
        spec: { backupName: `backup-${b}`, node: n, round: 1 },
        status: {
          phase: (b + j) % 37 === 0 ? "Failed" : "Succeeded",
          completionTime: hoursAgo(24 * (10 - b) + j / 100),
          captured: onNode[j]!.filter(({ i }) => (i + b) % 10 !== 0).map(({ ref }) => ref),
        },
      });
    });
  }
  return { vmis, backups: [], steps, restores: [], nodes: nodes.map((n) => node(n)) };
}

const cpuMs = (fn: () => void): number => {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

describe("digest performance", () => {
  it("builds, filters and renders 10,000 VMIs and 1,000 steps in well under a second of CPU", function () {
    this.timeout(30_000);
    const input = fleet();
    assert.equal(input.steps.length, 1000);
    let rows = buildDigest(input, NOW); // warm-up (JIT)
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(cpuMs(() => (rows = buildDigest(input, NOW))));
    const build = [...times].sort((a, b) => a - b)[2]!;
    const filter = cpuMs(() =>
      filterDigest(rows, { selector: "tier=web,app!=app-3", backedUpBefore: new Date(NOW - 3_600_000) }),
    );
    const render = cpuMs(() => renderTable(rows, NOW));
    console.log(
      `      build median ${build.toFixed(0)} ms CPU (${times.map((t) => t.toFixed(0)).join(" ")}), ` +
        `filter ${filter.toFixed(0)} ms, table ${render.toFixed(0)} ms`,
    );
    assert.equal(rows.length, 10_000);
    assert.ok(rows.every((r) => r.backups === 9 || r.backups === 10));
    assert.ok(build < 500, `buildDigest took ${build} ms of CPU`);
    assert.ok(filter + render < 500, `filter + table took ${filter + render} ms of CPU`);
  });
});
