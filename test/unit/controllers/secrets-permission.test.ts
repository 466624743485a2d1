import assert from "node:assert/strict";
import type { KubeClient } from "../../../src/k8s/client.js";
import { operatorSecretsRefusal, SECRETS_NOT_PERMITTED } from "../../../src/controllers/runtime/secrets-permission.js";

// Answers SelfSubjectAccessReviews: allowed cluster-wide, or in the listed namespaces only.
function reviewer(allowed: "all" | readonly string[]) {
  const asked: Array<string | undefined> = [];
  const client = {
    create: (
      _type: unknown,
      review: { spec: { resourceAttributes: { namespace?: string; resource: string; verb: string } } },
    ) => {
      const { namespace, resource, verb } = review.spec.resourceAttributes;
      assert.deepEqual([verb, resource], ["get", "secrets"]);
      asked.push(namespace);
      const ok = allowed === "all" || (namespace !== undefined && allowed.includes(namespace));
      return Promise.resolve({ ...review, status: { allowed: ok } });
    },
  } as unknown as KubeClient;
  return { client, asked };
}

describe("operatorSecretsRefusal", () => {
  it("passes with one review when the operator may read Secrets everywhere", async () => {
    const { client, asked } = reviewer("all");
    assert.equal(await operatorSecretsRefusal(client, ["b", "a"]), undefined);
    assert.deepEqual(asked, [undefined]);
  });

  it("passes when every namespace of the backup allows it", async () => {
    const { client } = reviewer(["a", "b"]);
    assert.equal(await operatorSecretsRefusal(client, ["b", "a", "a"]), undefined);
  });

  it("fails with SecretsNotPermitted naming the namespaces that do not, and how to fix it", async () => {
    const { client, asked } = reviewer(["a"]);
    const refusal = await operatorSecretsRefusal(client, ["c", "a", "b"]);
    assert.equal(refusal?.reason, SECRETS_NOT_PERMITTED);
    assert.match(refusal.message, /may not read Secrets \(get secrets\) in b, c,/);
    assert.match(refusal.message, /backup\.includeSecrets=true/);
    assert.deepEqual(asked, [undefined, "a", "b", "c"]);
  });
});
