import assert from "node:assert/strict";
import { median, renderTable, summarize } from "../../chaos/report.js";

describe("chaos report", () => {
  it("takes the median of odd and even counts", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([]), 0);
  });

  it("sums violations per scenario and renders one row each", () => {
    const rows = summarize([
      { scenario: "a", elapsedMs: 1000, violations: [] },
      { scenario: "a", elapsedMs: 3000, violations: [1, 2] },
      { scenario: "b", elapsedMs: 2000, violations: [] },
    ]);
    assert.deepEqual(rows, [
      { scenario: "a", runs: 2, violations: 2, medianSeconds: 2, maxSeconds: 3 },
      { scenario: "b", runs: 1, violations: 0, medianSeconds: 2, maxSeconds: 2 },
    ]);
    assert.match(renderTable(rows), /^scenario\s+runs\s+violations\s+median s\s+max s\na\s+2\s+2\s+2\.0\s+3\.0\n/);
  });
});
