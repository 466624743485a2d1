import assert from "node:assert/strict";
import { RunMemo } from "../../../src/controllers/runtime/run-memo.js";

describe("RunMemo", () => {
  it("gives a run's value back for the steps it was built from only, and nothing once forgotten", () => {
    const memo = new RunMemo<string[]>();
    assert.equal(memo.remember("run-1", "a,b", ["k"]).length, 1);
    assert.deepEqual(memo.cached("run-1", "a,b"), ["k"]);
    assert.equal(memo.cached("run-1", "a,b,c"), undefined, "a step more: built again");
    assert.equal(memo.cached("run-2", "a,b"), undefined);
    memo.forget("run-1");
    assert.equal(memo.cached("run-1", "a,b"), undefined);
  });
});
