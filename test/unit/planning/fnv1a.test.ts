import assert from "node:assert/strict";
import { fnv1a32, fnv1a32Hex } from "../../../src/planning/index.js";

describe("fnv1a32", () => {
  // Published FNV-1a 32-bit test vectors, plus multi-byte UTF-8 input checked against an independent
  // implementation over the UTF-8 bytes.
  const vectors: Array<[string, string]> = [
    ["", "811c9dc5"],
    ["a", "e40c292c"],
    ["foobar", "bf9cf968"],
    ["é", "1e9de8c1"],
    ["日本", "9f26ee51"],
    ["😀", "33a29608"],
  ];
  for (const [input, want] of vectors) {
    it(`hashes ${JSON.stringify(input)} to ${want}`, () => {
      assert.equal(fnv1a32Hex(input), want);
      assert.equal(fnv1a32(input), parseInt(want, 16));
    });
  }

  it("is always 8 hex digits, zero-padded", () => {
    for (let i = 0; i < 2000; i++) assert.match(fnv1a32Hex(`input-${i}`), /^[0-9a-f]{8}$/);
  });

  it("returns an unsigned 32-bit integer", () => {
    for (let i = 0; i < 2000; i++) {
      const h = fnv1a32(`input-${i}`);
      assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, String(h));
    }
  });
});
