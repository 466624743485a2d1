import assert from "node:assert/strict";
import { matchesRequirements, parseLabelSelector, type Requirement } from "../../../src/digest/index.js";

describe("parseLabelSelector", () => {
  const cases: Array<{ text: string; want: Requirement[] }> = [
    { text: "", want: [] },
    { text: "  ", want: [] },
    { text: "a=b", want: [{ key: "a", op: "Equals", value: "b" }] },
    { text: "a==b", want: [{ key: "a", op: "Equals", value: "b" }] },
    { text: "a=", want: [{ key: "a", op: "Equals", value: "" }] },
    { text: "c!=d", want: [{ key: "c", op: "NotEquals", value: "d" }] },
    { text: "e", want: [{ key: "e", op: "Exists" }] },
    { text: "!f", want: [{ key: "f", op: "DoesNotExist" }] },
    {
      text: "a=b,c!=d,e,!f",
      want: [
        { key: "a", op: "Equals", value: "b" },
        { key: "c", op: "NotEquals", value: "d" },
        { key: "e", op: "Exists" },
        { key: "f", op: "DoesNotExist" },
      ],
    },
    {
      text: " a = b , ! f ",
      want: [
        { key: "a", op: "Equals", value: "b" },
        { key: "f", op: "DoesNotExist" },
      ],
    },
    { text: "fedbackup.io/critical=true", want: [{ key: "fedbackup.io/critical", op: "Equals", value: "true" }] },
    {
      text: "tier in (web, db),env notin (dev)",
      want: [
        { key: "tier", op: "In", values: ["web", "db"] },
        { key: "env", op: "NotIn", values: ["dev"] },
      ],
    },
  ];
  for (const { text, want } of cases) {
    it(JSON.stringify(text), () => assert.deepEqual(parseLabelSelector(text), want));
  }

  const invalid = ["a b", "a=b,", ",a", "=b", "a=b c", "-a=b", "a=b=c", "a in ()", "a in (x", "!", "a=-b", "a/b/c=d"];
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () =>
      assert.throws(() => parseLabelSelector(text), /invalid label selector/));
  }
});

describe("matchesRequirements", () => {
  const labels = { app: "shop", tier: "web", empty: "" };
  const cases: Array<{ selector: string; want: boolean }> = [
    { selector: "", want: true },
    { selector: "app=shop", want: true },
    { selector: "app=other", want: false },
    { selector: "missing=x", want: false },
    { selector: "app!=shop", want: false },
    { selector: "app!=other", want: true },
    { selector: "missing!=x", want: true },
    { selector: "tier", want: true },
    { selector: "empty", want: true },
    { selector: "missing", want: false },
    { selector: "!missing", want: true },
    { selector: "!tier", want: false },
    { selector: "empty=", want: true },
    { selector: "tier in (db,web)", want: true },
    { selector: "tier in (db)", want: false },
    { selector: "missing in (x)", want: false },
    { selector: "tier notin (db)", want: true },
    { selector: "tier notin (web)", want: false },
    { selector: "missing notin (x)", want: true },
    { selector: "app=shop,tier!=db,tier,!missing", want: true },
    { selector: "app=shop,tier=db", want: false },
    { selector: "constructor", want: false },
    { selector: "toString!=x", want: true },
  ];
  for (const { selector, want } of cases) {
    it(`${JSON.stringify(selector)} → ${want}`, () =>
      assert.equal(matchesRequirements(parseLabelSelector(selector), labels), want));
  }
});
