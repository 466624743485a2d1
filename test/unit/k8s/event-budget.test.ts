import assert from "node:assert/strict";
import { EventBudget } from "../../../src/k8s/event-budget.js";

const kind = (reason: string, object = "uid-1", type = "Normal") => ({ object, type, reason });

describe("EventBudget", () => {
  it("writes the first burst of one kind, then one per refill, the next one written counting those left out", () => {
    const budget = new EventBudget({ burst: 3, refillMs: 1_000, maxKinds: 100 });
    const written = [0, 1, 2, 3, 4].map((i) => budget.take(kind("NodeSucceeded"), 100 + i).write);
    assert.deepEqual(written, [true, true, true, false, false]);
    assert.deepEqual(budget.take(kind("NodeSucceeded"), 500), { write: false });
    // One refill a second after the first take: the next one goes, with the three left out since 103.
    assert.deepEqual(budget.take(kind("NodeSucceeded"), 1_100), { write: true, leftOut: { count: 3, since: 103 } });
    assert.deepEqual(budget.take(kind("NodeSucceeded"), 1_200), { write: false });
  });

  it("keeps one budget per object, type and reason: a flood of one reason never silences another", () => {
    const budget = new EventBudget({ burst: 2, refillMs: 60_000, maxKinds: 100 });
    for (let i = 0; i < 50; i++) budget.take(kind("NodeSucceeded"), i);
    assert.equal(budget.take(kind("Completed"), 60).write, true);
    assert.equal(budget.take(kind("NodeSucceeded", "uid-2"), 61).write, true);
    assert.equal(budget.take(kind("NodeSucceeded", "uid-1", "Warning"), 62).write, true);
    assert.equal(budget.take(kind("NodeSucceeded"), 63).write, false);
  });

  it("refills to the burst at most after a long quiet time", () => {
    const budget = new EventBudget({ burst: 2, refillMs: 1_000, maxKinds: 100 });
    budget.take(kind("R"), 0);
    budget.take(kind("R"), 1);
    const later = [0, 1, 2].map((i) => budget.take(kind("R"), 3_600_000 + i).write);
    assert.deepEqual(later, [true, true, false]);
  });

  it("forgets the kinds idle longest beyond maxKinds (their budget starts full again)", () => {
    const budget = new EventBudget({ burst: 1, refillMs: 60_000, maxKinds: 2 });
    assert.equal(budget.take(kind("A"), 0).write, true);
    assert.equal(budget.take(kind("A"), 1).write, false);
    budget.take(kind("B"), 2);
    budget.take(kind("C"), 3); // A, idle longest, is forgotten
    assert.equal(budget.take(kind("A"), 4).write, true);
    // B was then the one idle longest: forgotten when A came back, so it is written again too.
    assert.equal(budget.take(kind("B"), 5).write, true);
  });
});
