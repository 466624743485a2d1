import assert from "node:assert/strict";
import type { NodeFailureEvent } from "../../../src/planning/index.js";
import { countRecentFailures } from "../../../src/planning/index.js";

describe("countRecentFailures", () => {
  const now = 1_700_000_000_000;
  const hour = 3_600_000;
  const at = (node: string, msAgo: number): NodeFailureEvent => ({ node, at: now - msAgo });

  const cases: Array<[string, NodeFailureEvent[], number, Array<[string, number]>]> = [
    ["no events", [], hour, []],
    [
      "counts per node",
      [at("a", 1), at("b", 2), at("a", 3)],
      hour,
      [
        ["a", 2],
        ["b", 1],
      ],
    ],
    ["drops events older than the window", [at("a", hour + 1), at("a", 10)], hour, [["a", 1]]],
    ["keeps an event exactly at the window's start", [at("a", hour)], hour, [["a", 1]]],
    ["keeps an event exactly now", [at("a", 0)], hour, [["a", 1]]],
    ["keeps events stamped slightly in the future (clock skew)", [at("a", -5000)], hour, [["a", 1]]],
    ["nodes with only old events are absent", [at("a", 2 * hour), at("b", 1)], hour, [["b", 1]]],
    ["a zero window counts nothing", [at("a", 0)], 0, []],
    ["a negative window counts nothing", [at("a", 0)], -hour, []],
    ["a NaN window counts nothing", [at("a", 0)], NaN, []],
    ["events with an invalid time are ignored", [{ node: "a", at: NaN }], hour, []],
  ];
  for (const [title, events, windowMs, want] of cases) {
    it(title, () => assert.deepEqual([...countRecentFailures(events, now, windowMs)], want));
  }

  it("iterates in node-name order whatever the event order", () => {
    const counts = countRecentFailures([at("c", 1), at("a", 1), at("b", 1)], now, hour);
    assert.deepEqual([...counts.keys()], ["a", "b", "c"]);
  });
});
