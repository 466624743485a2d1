import assert from "node:assert/strict";
import { mulberry32, seedFromText, seededShuffle } from "../../../src/planning/index.js";

describe("seeded shuffle", () => {
  it("mulberry32 yields floats in [0, 1)", () => {
    for (const seed of [0, 1, 123456, 2147483647]) {
      const next = mulberry32(seed);
      for (let i = 0; i < 1000; i++) {
        const x = next();
        assert.ok(x >= 0 && x < 1, String(x));
      }
    }
  });

  it("mulberry32 repeats its sequence for the same seed", () => {
    const a = mulberry32(99);
    const b = mulberry32(99);
    for (let i = 0; i < 100; i++) assert.equal(a(), b());
  });

  it("mulberry32 differs between seeds", () => {
    assert.notEqual(mulberry32(1)(), mulberry32(2)());
  });

  it("seededShuffle returns a shuffled copy and leaves the input alone", () => {
    const input = ["a", "b", "c", "d", "e"];
    const out = seededShuffle(input, 4);
    assert.deepEqual(input, ["a", "b", "c", "d", "e"]);
    assert.notEqual(out, input);
    assert.deepEqual([...out].sort(), input);
  });

  const edges: Array<[string, string[]]> = [
    ["empty", []],
    ["one item", ["a"]],
  ];
  for (const [title, input] of edges) {
    it(`seededShuffle of ${title}`, () => assert.deepEqual(seededShuffle(input, 7), input));
  }

  it("seedFromText is stable and within spec.ordering.seed's range", () => {
    const uid = "5f0c8a8e-8c4f-4d2a-9b1e-1f2d3c4b5a69";
    assert.equal(seedFromText(uid), seedFromText(uid));
    for (let i = 0; i < 1000; i++) {
      const seed = seedFromText(`uid-${i}`);
      assert.ok(Number.isInteger(seed) && seed >= 0 && seed <= 2147483647, String(seed));
    }
    assert.notEqual(seedFromText("uid-a"), seedFromText("uid-b"));
  });
});
