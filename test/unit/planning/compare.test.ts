import assert from "node:assert/strict";
import { compareStrings, compareWorkloads } from "../../../src/planning/index.js";
import { lastNodeField, toRef, uniqueBy } from "../../../src/planning/compare.js";
import { ref, vm } from "./fixtures.js";

describe("compare helpers", () => {
  describe("compareStrings orders by code unit, independent of locale", () => {
    const cases: Array<[string, string, number]> = [
      ["a", "b", -1],
      ["b", "a", 1],
      ["a", "a", 0],
      ["B", "a", -1], // upper case sorts before lower case, unlike localeCompare
      ["node-10", "node-9", -1], // no numeric collation
      ["a", "a-1", -1],
      ["", "a", -1],
    ];
    for (const [a, b, want] of cases) {
      it(`${JSON.stringify(a)} vs ${JSON.stringify(b)} = ${want}`, () => assert.equal(compareStrings(a, b), want));
    }
  });

  it("compareWorkloads orders by namespace, then name", () => {
    const sorted = [ref("b/a"), ref("a/z"), ref("a/b")].sort(compareWorkloads);
    assert.deepEqual(sorted, [ref("a/b"), ref("a/z"), ref("b/a")]);
  });

  it("toRef keeps only namespace and name", () => {
    assert.deepEqual(toRef(vm("ns/a", { node: "n1" })), ref("ns/a"));
  });

  it("uniqueBy keeps the first item per key, in order", () => {
    const items = [
      { k: "a", v: 1 },
      { k: "b", v: 2 },
      { k: "a", v: 3 },
    ];
    assert.deepEqual(
      uniqueBy(items, (i) => i.k),
      [
        { k: "a", v: 1 },
        { k: "b", v: 2 },
      ],
    );
  });

  const lastNodeCases: Array<[string | undefined, object]> = [
    ["n1", { lastNode: "n1" }],
    [undefined, {}],
    ["", {}],
  ];
  for (const [input, want] of lastNodeCases) {
    it(`lastNodeField(${JSON.stringify(input)}) = ${JSON.stringify(want)}`, () => {
      assert.deepEqual(lastNodeField(input), want);
    });
  }
});
