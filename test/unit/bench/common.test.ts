import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cpuTicks, measured, preparationSteps, roundOrder, separationUnavailable } from "../../bench/common.js";

describe("bench: separating the runs of a throughput benchmark", () => {
  it("back to back: only warms the sources", () => {
    assert.deepEqual(preparationSteps({ sync: false, dropCaches: false }), ["warm-sources"]);
  });

  it("flushed: warms the sources and writes back the previous run's dirty pages", () => {
    assert.deepEqual(preparationSteps({ sync: true, dropCaches: false }), ["warm-sources", "sync"]);
  });

  it("cold: syncs before dropping the caches (drop_caches leaves dirty pages), and does not warm", () => {
    assert.deepEqual(preparationSteps({ sync: true, dropCaches: true }), ["sync", "drop-caches"]);
    assert.deepEqual(preparationSteps({ sync: false, dropCaches: true }), ["sync", "drop-caches"]);
  });

  it("dropping the caches needs root; the rest does not", () => {
    assert.match(separationUnavailable({ sync: true, dropCaches: true }, 1000) ?? "", /not root/);
    assert.match(separationUnavailable({ sync: true, dropCaches: true }, undefined) ?? "", /not root/);
    assert.equal(separationUnavailable({ sync: true, dropCaches: true }, 0), undefined);
    assert.equal(separationUnavailable({ sync: true, dropCaches: false }, 1000), undefined);
  });
});

describe("bench: CPU time from /proc/<pid>/stat", () => {
  it("adds utime, stime, cutime and cstime", () => {
    const line = "4242 (node) S 1 4242 4242 0 -1 4194560 100 0 0 0 700 50 30 4 20 0 11 0 900 0 0";
    assert.equal(cpuTicks(line), 700 + 50 + 30 + 4);
  });

  it("counts fields from the last parenthesis, whatever the command name holds", () => {
    const line = "7 (a) b (c) d) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5 0 0";
    assert.equal(cpuTicks(line), 10);
  });

  it("rejects a line without the fields", () => {
    assert.throws(() => cpuTicks("4242 node S 1"), /not a \/proc stat line/);
    assert.throws(() => cpuTicks("4242 (node) S 1 2 3"), /no CPU times/);
  });

  it("reads this process's own line", () => {
    assert.ok(cpuTicks(readFileSync("/proc/self/stat", "utf8")) >= 0);
  });
});

describe("bench: measuring a run", () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("times the work alone, and until its write-back is done", async () => {
    // The write-back is long, so that the work's time cannot include it however a loaded machine stretches
    // the 30 ms.
    const m = await measured(
      () => sleep(30),
      () => sleep(300),
    );
    assert.ok(m.ms >= 25 && m.ms < 300, `work ${m.ms} ms`);
    assert.ok(m.durableMs >= m.ms + 295, `until durable ${m.durableMs} ms, work ${m.ms} ms`);
    assert.ok(m.cpuMs >= 0);
  });

  it("without a write-back, durable is the work's time", async () => {
    // Between the two readings there is only a read of /proc/self/stat, which a loaded machine may delay;
    // a write-back would be the 300 ms of the test above.
    const m = await measured(() => sleep(10));
    assert.ok(m.durableMs >= m.ms && m.durableMs - m.ms < 150, `${m.durableMs} vs ${m.ms}`);
  });

  it("counts the CPU time that the work burns", async () => {
    // Spins until it has used 100 ms of CPU (by Node's own count), however long a busy machine makes that take.
    const m = await measured(() => {
      const start = process.cpuUsage();
      for (;;) {
        const used = process.cpuUsage(start);
        if (used.user + used.system >= 100_000) break;
      }
    });
    assert.ok(m.cpuMs >= 80 && m.cpuMs <= m.ms + 20, `cpu ${m.cpuMs} ms, wall ${m.ms} ms`);
  });
});

describe("bench: the order of the contestants in each round", () => {
  const contestants = ["extract", "cp", "openssl", "dd", "cp, then sha256sum", "restic"];

  it("is a permutation, the same for a round every time", () => {
    for (let round = 0; round < 10; round++) {
      const order = roundOrder(contestants, round);
      assert.deepEqual([...order].sort(), [...contestants].sort());
      assert.deepEqual(roundOrder(contestants, round), order);
    }
  });

  it("puts a contestant behind different predecessors over the rounds", () => {
    const behind = new Set<string>();
    for (let round = 0; round < 5; round++) {
      const order = roundOrder(contestants, round);
      const at = order.indexOf("extract");
      behind.add(at === 0 ? "(first)" : (order[at - 1] ?? ""));
    }
    assert.ok(behind.size >= 3, `the extract ran behind only ${[...behind].join(", ")}`);
  });
});
