import assert from "node:assert/strict";
import {
  parseSecretsFile,
  secretsFileOf,
  SecretsFileError,
  type SecretsFile,
} from "../../../src/planning/vm-secrets.js";

const secret = (name: string) => ({
  metadata: {
    name,
    namespace: "tenant-a",
    uid: "u",
    resourceVersion: "9",
    labels: { app: "db" },
    annotations: { "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"c2VjcmV0"}}' },
  },
  type: "Opaque",
  data: { userdata: "I2Nsb3VkLWNvbmZpZw==" },
});

describe("stored Secrets", () => {
  it("keeps name, namespace, labels, type and data, sorted; drops server-set fields and last-applied", () => {
    const file = secretsFileOf([secret("b"), secret("a")]);
    assert.deepEqual(file, {
      schemaVersion: 1,
      secrets: ["a", "b"].map((name) => ({
        metadata: { name, namespace: "tenant-a", labels: { app: "db" } },
        type: "Opaque",
        data: { userdata: "I2Nsb3VkLWNvbmZpZw==" },
      })),
    });
    assert.deepEqual(parseSecretsFile(JSON.parse(JSON.stringify(file)), "tenant-a"), file);
  });

  const set = (object: object, key: string, value: unknown) => {
    (object as Record<string, unknown>)[key] = value;
  };
  const bad: Array<[string, (f: SecretsFile) => void, RegExp]> = [
    ["another namespace", (f) => set(f.secrets[0]!.metadata, "namespace", "other"), /namespace is not tenant-a/],
    ["a Secret twice", (f) => void f.secrets.push(f.secrets[0]!), /names a twice/],
    [
      "data that is not base64",
      (f) => set(f.secrets[0]!.data, "userdata", "not base64!"),
      /data.userdata is not valid/,
    ],
    ["a data key with a slash", (f) => set(f.secrets[0]!, "data", { "a/b": "" }), /data has an invalid key/],
    ["an unknown field", (f) => set(f.secrets[0]!, "stringData", {}), /may only have metadata, type, data/],
    ["another version", (f) => set(f, "schemaVersion", 2), /schemaVersion must be 1/],
  ];
  for (const [what, change, message] of bad) {
    it(`refuses ${what}, without quoting the data`, () => {
      const file = JSON.parse(JSON.stringify(secretsFileOf([secret("a")]))) as SecretsFile;
      change(file);
      assert.throws(
        () => parseSecretsFile(file, "tenant-a"),
        (err: Error) =>
          err instanceof SecretsFileError && message.test(err.message) && !err.message.includes("I2Nsb3Vk"),
      );
    });
  }
});
