import assert from "node:assert/strict";
import { activityOn, finalStatus, parseAgentArgs } from "../../bench/scale/agent-report.js";
import { apiserverRequests } from "../../bench/scale/cluster-metrics.js";
import { checkGoals } from "../../bench/scale/goals.js";
import { placeVms } from "../../bench/scale/population.js";
import { parsePrometheus, subtract, sumBy, valueOf } from "../../bench/scale/prometheus.js";
import { DEFAULT_SPREAD, spreadVmis } from "../../bench/scale/spread.js";
import { gaps, handoffDelays, jobGaps, percentile } from "../../bench/scale/stats.js";

describe("bench: scale", () => {
  describe("spreadVmis", () => {
    for (const nodes of [10, 100, 300, 1000]) {
      it(`puts exactly 10 per node on average over ${nodes} nodes, some empty, some with 50, none above`, () => {
        const counts = spreadVmis(nodes);
        assert.equal(counts.length, nodes);
        assert.equal(
          counts.reduce((a, b) => a + b, 0),
          nodes * 10,
        );
        assert.ok(counts.filter((c) => c === 0).length >= Math.floor(nodes / 10));
        assert.ok(counts.some((c) => c === 50));
        assert.ok(counts.every((c) => c >= 0 && c <= 50));
        assert.ok(new Set(counts).size > 5, "the light nodes vary");
      });
    }

    it("is the same for the same seed and different for another", () => {
      assert.deepEqual(spreadVmis(100), spreadVmis(100));
      assert.notDeepEqual(spreadVmis(100), spreadVmis(100, { ...DEFAULT_SPREAD, seed: 7 }));
    });

    it("places the VMs in node order over the namespaces in turn", () => {
      const vms = placeVms([2, 0, 1], 10);
      assert.deepEqual(
        vms.map((v) => `${v.namespace}/${v.name}@${v.node}`),
        ["scale-vms-00/vm-00000@node-0000", "scale-vms-01/vm-00001@node-0000", "scale-vms-02/vm-00002@node-0002"],
      );
      assert.deepEqual(
        placeVms([2, 1], 2).map((v) => v.namespace),
        ["scale-vms-00", "scale-vms-01", "scale-vms-00"],
      );
    });
  });

  describe("stats", () => {
    it("takes the nearest-rank percentile", () => {
      const values = Array.from({ length: 100 }, (_, i) => i + 1);
      assert.equal(percentile(values, 50), 50);
      assert.equal(percentile(values, 99), 99);
      assert.equal(percentile([5], 99), 5);
      assert.ok(Number.isNaN(percentile([], 50)));
    });

    it("measures the gaps between consecutive cuts in time order", () => {
      assert.deepEqual(gaps([300, 100, 150]), [50, 150]);
    });

    it("measures Job Complete → next Job only where the next Job came after the completion", () => {
      const jobs = [
        { name: "a", createdAt: 0, completedAt: 100 },
        { name: "b", createdAt: 120, completedAt: 400 },
        // started ahead of b's end (pipelined): no gap
        { name: "c", createdAt: 300, completedAt: 500 },
        { name: "d", createdAt: 530 },
      ];
      assert.deepEqual(jobGaps(jobs), [20, 30]);
    });

    it("measures a cut → the Lease naming the next step", () => {
      const cuts = new Map([
        ["s1", 100],
        ["s2", 300],
      ]);
      const handoffs = [
        { step: "s2", at: 110 },
        { step: "s1", at: 0 },
        { step: "s3", at: 340 },
      ];
      assert.deepEqual(handoffDelays(cuts, handoffs), [10, 40]);
    });

    it("measures up to the operator's write of the Lease with until=written, when the Lease says when", () => {
      const cuts = new Map([
        ["s1", 100],
        ["s2", 300],
      ]);
      const handoffs = [
        { step: "s1", at: 0, writtenAt: 0 },
        { step: "s2", at: 110, writtenAt: 104 },
        { step: "s3", at: 340 },
      ];
      assert.deepEqual(handoffDelays(cuts, handoffs, "written"), [4]);
    });
  });

  describe("prometheus", () => {
    const text = [
      "# HELP apiserver_request_total Counter",
      'apiserver_request_total{code="200",component="apiserver",resource="jobs",subresource="",verb="POST"} 3',
      'apiserver_request_total{code="201",component="apiserver",resource="jobs",subresource="",verb="POST"} 2',
      'apiserver_request_total{code="200",component="apiserver",resource="nodesnapshots",subresource="status",verb="PATCH"} 4',
      "etcd_disk_wal_write_bytes_total 1.5e+06",
      'weird{a="x\\"y"} 1',
    ].join("\n");

    it("parses samples with labels, escaped quotes and exponents", () => {
      const samples = parsePrometheus(text);
      assert.equal(samples.length, 5);
      assert.equal(valueOf(samples, "etcd_disk_wal_write_bytes_total"), 1_500_000);
      assert.equal(samples[4]!.labels.a, 'x"y');
    });

    it("sums by labels, keys API server requests as the clients do, and subtracts scrapes", () => {
      const samples = parsePrometheus(text);
      assert.deepEqual(
        [...sumBy(samples, "apiserver_request_total", ["verb"])],
        [
          ["POST", 5],
          ["PATCH", 4],
        ],
      );
      const requests = apiserverRequests(samples);
      assert.deepEqual(Object.fromEntries(requests), { "POST jobs": 5, "PATCH nodesnapshots/status": 4 });
      assert.deepEqual(Object.fromEntries(subtract(requests, new Map([["POST jobs", 1]]))), {
        "POST jobs": 4,
        "PATCH nodesnapshots/status": 4,
      });
    });
  });

  describe("the simulated agent's report", () => {
    it("reads its step and every --turn-lease from the Job's args, in both flag forms", () => {
      assert.deepEqual(
        parseAgentArgs([
          "agent",
          "backup",
          "--step=ns/scale-r1-node-0001",
          "--turn-lease",
          "fedbackup-system/volume-x",
          "--turn-lease=fedbackup-system/volume-y",
        ]),
        {
          command: "backup",
          step: { namespace: "ns", name: "scale-r1-node-0001" },
          turnLeases: [
            { namespace: "fedbackup-system", name: "volume-x" },
            { namespace: "fedbackup-system", name: "volume-y" },
          ],
        },
      );
      assert.equal(parseAgentArgs(["agent", "cleanup", "--backup-path", "x"])?.step, undefined);
      assert.throws(() => parseAgentArgs(["agent", "backup", "--step=nope"]), /NAMESPACE\/NAME/);
    });

    it("tells active, migrated, migrating and gone VMs apart as the agent's isActiveOnNode does", () => {
      assert.deepEqual(activityOn("n1", { phase: "Running", node: "n1" }), { active: true });
      assert.equal(activityOn("n1", { phase: "Running", node: "n2" }).active, false);
      assert.deepEqual(activityOn("n1", { phase: "Running", node: "n1", migration: { targetNode: "n2" } }), {
        active: false,
        reason: "Migrated",
        message: "migrating to node n2",
      });
      assert.deepEqual(
        activityOn("n1", { phase: "Running", node: "n1", migration: { targetNode: "n2", completed: true } }),
        { active: true },
      );
      assert.equal((activityOn("n1", undefined) as { reason: string }).reason, "NotRunning");
    });

    it("captures the step's VMs still on its node and fails the others with the agent's reason", () => {
      const step = {
        spec: {
          backupName: "b",
          backupUID: "u",
          node: "n1",
          round: 1,
          order: 1,
          location: { persistentVolumeClaim: { claimName: "backups" }, path: "ns/b-1234" },
          snapshot: { method: "Auto", quiesce: "GuestAgent", freezeTimeout: "30s", maxFreeze: "2m" },
          extractAt: "Backup",
          workloads: [
            { namespace: "a", name: "vm1", uid: "u1", files: ["a/vm1/disk0.img"] },
            { namespace: "a", name: "vm2", uid: "u2", files: ["a/vm2/disk0.img"] },
          ],
        },
      } as unknown as Parameters<typeof finalStatus>[0];
      const status = finalStatus(
        step,
        "n1",
        (_, name) =>
          name === "vm1" ? { uid: "live1", phase: "Running", node: "n1" } : { phase: "Running", node: "n9" },
        5,
      );
      assert.equal(status.capturedCount, 1);
      assert.equal(status.captured![0]!.uid, "live1");
      assert.equal(status.captured![0]!.manifest, "ns/b-1234/a/vm1/manifest.json");
      assert.deepEqual(status.failed, [
        { namespace: "a", name: "vm2", reason: "Migrated", message: "now active on node n9" },
      ]);
    });
  });

  it("holds the figures against the goals, the absolute ones only at 1,000 nodes", () => {
    const figures = {
      nodes: 100,
      wholeBackupMs: 50_000,
      kubectlLoopMs: 500_000,
      stepP50Ms: 120,
      overheadP50Ms: 20,
      overheadP99Ms: 90,
      discoveryMs: 400,
      requestsPerStep: 7,
      peakRssBytes: 300 * 1024 * 1024,
      storedBackupBytes: 100 * 1024,
    };
    const small = checkGoals(figures);
    assert.ok(!small.some((g) => g.goal.includes("120 s") || g.goal.includes("RSS")));
    assert.deepEqual(
      small.filter((g) => !g.met).map((g) => g.goal),
      ["per-step p50 ≤ 100 ms", "≤ 6 API requests per node step"],
    );
    const large = checkGoals({ ...figures, nodes: 1000 });
    assert.ok(large.some((g) => g.goal === "peak RSS ≤ 256 MiB" && !g.met && g.value === "300 MiB"));
    assert.ok(large.some((g) => g.goal === "whole backup ≤ 120 s" && g.met));
  });

  it("never prints a missed figure as its bound", () => {
    const goals = checkGoals({
      nodes: 100,
      wholeBackupMs: 50_000,
      kubectlLoopMs: 500_000,
      stepP50Ms: 50,
      overheadP50Ms: 20,
      overheadP99Ms: 90,
      discoveryMs: 1_037,
      requestsPerStep: 6.03,
      peakRssBytes: 0,
      storedBackupBytes: 1024,
    });
    const missed = Object.fromEntries(goals.filter((g) => !g.met).map((g) => [g.goal, g.value]));
    assert.deepEqual(missed, { "discovery ≤ 1 s": "1.04 s", "≤ 6 API requests per node step": "6.03" });
  });
});
