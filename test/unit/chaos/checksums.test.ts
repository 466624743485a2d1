import assert from "node:assert/strict";
import { checkCapturedFiles, type CapturedFile } from "../../chaos/invariants/checksums.js";

const file = (over: Partial<CapturedFile> = {}): CapturedFile => ({
  vm: "ns/a",
  path: "ns/a/disk0.img",
  manifest: { sha256: "aa", bytes: 4 },
  stored: { sha256: "aa", bytes: 4 },
  sourceSha256: "aa",
  ...over,
});

describe("chaos invariant: captured files match their checksums", () => {
  it("accepts a file equal to its manifest and its source", () => {
    assert.deepEqual(checkCapturedFiles([file()]), []);
  });

  it("catches a file missing, altered, or whose manifest disagrees with the source", () => {
    const v = checkCapturedFiles([
      file({ stored: undefined }),
      file({ stored: { sha256: "bb", bytes: 4 } }),
      file({ stored: { sha256: "aa", bytes: 3 } }),
      file({ sourceSha256: "cc" }),
    ]);
    assert.equal(v.length, 4);
    assert.match(v[0]!.detail, /not at the location/);
    assert.match(v[1]!.detail, /sha256 bb/);
    assert.match(v[2]!.detail, /holds 3 bytes/);
    assert.match(v[3]!.detail, /not the source's cc/);
  });

  it("reports manifests that could not be read", () => {
    assert.equal(checkCapturedFiles([], [{ vm: "ns/a", problem: "manifest.json: invalid" }]).length, 1);
  });
});
