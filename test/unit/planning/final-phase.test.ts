import assert from "node:assert/strict";
import type { FinalPhase, FinalPhaseInput } from "../../../src/planning/index.js";
import { finalPhase } from "../../../src/planning/index.js";

describe("finalPhase", () => {
  const cases: Array<[string, FinalPhaseInput, FinalPhase]> = [
    ["every expected VM captured", { expected: 3, captured: 3, missing: 0, invalid: false }, "Completed"],
    ["nothing expected: nothing to do", { expected: 0, captured: 0, missing: 0, invalid: false }, "Completed"],
    ["some captured, some missing", { expected: 3, captured: 2, missing: 1, invalid: false }, "PartiallyFailed"],
    ["one of many captured", { expected: 100, captured: 1, missing: 99, invalid: false }, "PartiallyFailed"],
    ["nothing captured", { expected: 3, captured: 0, missing: 3, invalid: false }, "Failed"],
    ["invalid spec, even with captures", { expected: 3, captured: 3, missing: 0, invalid: true }, "Failed"],
    ["invalid spec with nothing expected", { expected: 0, captured: 0, missing: 0, invalid: true }, "Failed"],
    [
      "inconsistent counts (captured < expected, none missing) are not Completed",
      { expected: 3, captured: 2, missing: 0, invalid: false },
      "PartiallyFailed",
    ],
    [
      "missing VMs are not Completed even when captured reaches expected",
      { expected: 2, captured: 2, missing: 1, invalid: false },
      "PartiallyFailed",
    ],
  ];
  for (const [title, input, want] of cases) {
    it(`${title} → ${want}`, () => assert.equal(finalPhase(input), want));
  }
});
