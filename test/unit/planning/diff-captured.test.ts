import assert from "node:assert/strict";
import { diffCaptured } from "../../../src/planning/index.js";
import { keys, ref, vm } from "./fixtures.js";

describe("diffCaptured", () => {
  const cases: Array<{
    title: string;
    expected: string[];
    captured: string[];
    missing?: string[];
    unexpected?: string[];
    duplicates?: string[];
  }> = [
    { title: "everything captured once", expected: ["ns/a", "ns/b"], captured: ["ns/b", "ns/a"] },
    { title: "nothing expected, nothing captured", expected: [], captured: [] },
    { title: "nothing captured", expected: ["ns/b", "ns/a"], captured: [], missing: ["ns/a", "ns/b"] },
    { title: "some missing", expected: ["ns/a", "ns/b", "ns/c"], captured: ["ns/b"], missing: ["ns/a", "ns/c"] },
    { title: "captured but not expected", expected: ["ns/a"], captured: ["ns/a", "ns/z"], unexpected: ["ns/z"] },
    {
      title: "captured more than once: listed once",
      expected: ["ns/a"],
      captured: ["ns/a", "ns/a", "ns/a"],
      duplicates: ["ns/a"],
    },
    {
      title: "unexpected and duplicated: in both lists",
      expected: [],
      captured: ["ns/z", "ns/z"],
      unexpected: ["ns/z"],
      duplicates: ["ns/z"],
    },
    {
      title: "an expected VM listed twice is missing once",
      expected: ["ns/a", "ns/a"],
      captured: [],
      missing: ["ns/a"],
    },
    {
      title: "keys compare namespace and name together",
      expected: ["a/b"],
      captured: ["b/a"],
      missing: ["a/b"],
      unexpected: ["b/a"],
    },
    {
      title: "every list is sorted by key",
      expected: ["z/z", "a/a", "m/m"],
      captured: ["y/y", "b/b", "b/b", "y/y", "c/c"],
      missing: ["a/a", "m/m", "z/z"],
      unexpected: ["b/b", "c/c", "y/y"],
      duplicates: ["b/b", "y/y"],
    },
  ];
  for (const { title, expected, captured, missing = [], unexpected = [], duplicates = [] } of cases) {
    it(title, () => {
      const diff = diffCaptured(expected.map(ref), captured.map(ref));
      assert.deepEqual(
        { missing: keys(diff.missing), unexpected: keys(diff.unexpected), duplicates: keys(diff.duplicates) },
        { missing, unexpected, duplicates },
      );
    });
  }

  it("returns bare refs even when given larger objects", () => {
    const diff = diffCaptured([vm("ns/a")], [vm("ns/b")]);
    assert.deepEqual(diff, { missing: [ref("ns/a")], unexpected: [ref("ns/b")], duplicates: [] });
  });
});
