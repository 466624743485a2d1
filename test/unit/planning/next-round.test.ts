import assert from "node:assert/strict";
import type { NextRoundDecision, NextRoundInput } from "../../../src/planning/index.js";
import { nextRoundDecision } from "../../../src/planning/index.js";

describe("nextRoundDecision", () => {
  const base: NextRoundInput = { round: 1, maxRounds: 3, reconcileMissing: true, missingCount: 2, resolvableCount: 2 };
  const cases: Array<[string, Partial<NextRoundInput>, NextRoundDecision]> = [
    ["missing VMs, resolvable, rounds left", {}, "NextRound"],
    ["only some missing VMs resolvable", { resolvableCount: 1 }, "NextRound"],
    ["second-to-last round", { round: 2 }, "NextRound"],
    ["reconcileMissing off", { reconcileMissing: false }, "Finish"],
    ["nothing missing", { missingCount: 0, resolvableCount: 0 }, "Finish"],
    ["last round done (maxRounds counts the first pass)", { round: 3 }, "Finish"],
    ["past the last round", { round: 4 }, "Finish"],
    ["maxRounds 1: only the first pass", { maxRounds: 1 }, "Finish"],
    ["nothing resolvable: a round would capture nothing", { resolvableCount: 0 }, "Finish"],
    ["reconcileMissing off wins over everything", { reconcileMissing: false, round: 1, maxRounds: 10 }, "Finish"],
  ];
  for (const [title, overrides, want] of cases) {
    it(`${title} → ${want}`, () => assert.equal(nextRoundDecision({ ...base, ...overrides }), want));
  }
});
