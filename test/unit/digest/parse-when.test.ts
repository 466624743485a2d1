import assert from "node:assert/strict";
import { parseWhen } from "../../../src/digest/index.js";
import { NOW } from "./fixtures.js";

describe("parseWhen", () => {
  const min = 60_000;
  const hour = 60 * min;
  const day = 24 * hour;
  const cases: Array<{ text: string; want: number }> = [
    { text: "30m", want: NOW - 30 * min },
    { text: "2h", want: NOW - 2 * hour },
    { text: "7d", want: NOW - 7 * day },
    { text: "2w", want: NOW - 14 * day },
    { text: "45s", want: NOW - 45_000 },
    { text: "0s", want: NOW },
    { text: "1h30m", want: NOW - 90 * min },
    { text: "1d12h", want: NOW - 36 * hour },
    { text: "1.5h", want: NOW - 90 * min },
    { text: " 2h ", want: NOW - 2 * hour },
    { text: "2025-05-31T12:00:00Z", want: Date.parse("2025-05-31T12:00:00Z") },
    { text: "2025-05-31T12:00:00.250Z", want: Date.parse("2025-05-31T12:00:00.250Z") },
    { text: "2025-05-31T14:00:00+02:00", want: Date.parse("2025-05-31T12:00:00Z") },
    { text: "2025-05-31", want: Date.parse("2025-05-31T00:00:00Z") },
  ];
  for (const { text, want } of cases) {
    it(JSON.stringify(text), () => assert.equal(parseWhen(text, NOW).getTime(), want));
  }

  for (const text of [
    "",
    "2",
    "h",
    "2y",
    "2 h",
    "-2h",
    "2h-",
    "yesterday",
    "2025-13-45",
    "2025-05-31T25:00:00Z",
    "1e3s",
  ]) {
    it(`rejects ${JSON.stringify(text)}`, () =>
      assert.throws(() => parseWhen(text, NOW), /invalid time .*: give an age such as 30m, 2h, 7d/));
  }
});
