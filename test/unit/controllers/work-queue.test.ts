import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { TerminalError, WorkQueue } from "../../../src/controllers/runtime/work-queue.js";

/** Waits until `done()` holds (a loaded machine may be slow; the assertions are about order, not speed). */
async function until(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await sleep(5);
  }
}

describe("WorkQueue", () => {
  it("never runs one key twice at once, and runs it again when it was added meanwhile", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      runs++;
      await sleep(20);
      running--;
    });
    q.add("a");
    await sleep(5);
    q.add("a"); // while a runs: marked dirty
    q.add("a"); // deduplicated
    await until(() => runs === 2 && running === 0);
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2);
    await q.shutdown();
  });

  it("paused, collects keys without working on them until start(), then runs each once", async () => {
    const seen: string[] = [];
    const q = new WorkQueue(
      async (key) => {
        seen.push(key);
        await Promise.resolve();
      },
      { paused: true },
    );
    q.add("a");
    q.add("b");
    q.add("a");
    await sleep(30);
    assert.deepEqual(seen, [], "a paused queue ran a key");
    q.start();
    await until(() => seen.length === 2);
    await q.idle();
    assert.deepEqual(seen, ["a", "b"]);
    await q.shutdown();
  });

  it("runs different keys concurrently up to its concurrency", async () => {
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(20);
        running--;
      },
      { concurrency: 2 },
    );
    for (const k of ["a", "b", "c", "d"]) q.add(k);
    await sleep(10);
    await q.idle();
    assert.equal(maxRunning, 2);
    await q.shutdown();
  });

  it("retries failures with growing delays and stops after success", async () => {
    const at: number[] = [];
    const errors: Array<number | undefined> = [];
    const q = new WorkQueue(
      () => {
        at.push(Date.now());
        if (at.length < 3) return Promise.reject(new Error("try again"));
        return Promise.resolve();
      },
      { baseDelayMs: 20, onError: (_k, _e, retryIn) => errors.push(retryIn) },
    );
    q.add("a");
    await until(() => at.length === 3);
    await sleep(50);
    assert.equal(at.length, 3, "no run after the success");
    assert.deepEqual(errors, [20, 40]);
    // Each retry waited at least the delay it was given (a loaded machine only makes a wait longer, so the
    // gaps themselves need not grow; 2 ms for the timers' rounding).
    assert.ok(at[1]! - at[0]! >= 20 - 2, `the first retry came after ${at[1]! - at[0]!} ms`);
    assert.ok(at[2]! - at[1]! >= 40 - 2, `the second retry came after ${at[2]! - at[1]!} ms`);
    await q.shutdown();
  });

  it("does not retry a terminal error", async () => {
    let runs = 0;
    const errors: Array<number | undefined> = [];
    const q = new WorkQueue(
      () => {
        runs++;
        return Promise.reject(new TerminalError("invalid spec"));
      },
      { baseDelayMs: 5, onError: (_k, _e, retryIn) => errors.push(retryIn) },
    );
    q.add("a");
    await sleep(60);
    assert.equal(runs, 1);
    assert.deepEqual(errors, [undefined]);
    await q.shutdown();
  });

  it("requeues after the delay a reconcile asks for, keeping the earliest", async () => {
    let runs = 0;
    const q = new WorkQueue(() => {
      runs++;
      return Promise.resolve(runs === 1 ? { requeueAfterMs: 30 } : undefined);
    });
    q.add("a");
    q.addAfter("a", 10_000);
    await until(() => runs === 2);
    await q.shutdown();
  });
});
