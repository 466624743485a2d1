import assert from "node:assert/strict";
import { ApiUsage, impliedAttributes, requestAttributes } from "../../src/k8s/api-usage.js";
import { resourceOfKind } from "../../src/k8s/resources.js";

describe("requestAttributes", () => {
  const cases: Array<[string, string, boolean, string]> = [
    ["GET", "/api/v1/nodes", false, "list  nodes"],
    ["GET", "/api/v1/nodes", true, "watch  nodes"],
    ["GET", "/api/v1/namespaces/a/pods/p", false, "get  pods"],
    ["GET", "/api/v1/namespaces/a", false, "get  namespaces"],
    ["PUT", "/api/v1/namespaces/a/finalize", false, "update  namespaces/finalize"],
    ["GET", "/api/v1/namespaces", false, "list  namespaces"],
    ["POST", "/api/v1/namespaces/a/serviceaccounts/s/token", false, "create  serviceaccounts/token"],
    [
      "PATCH",
      "/apis/fedbackup.io/v1alpha1/namespaces/a/federatedbackups/b/status",
      false,
      "patch fedbackup.io federatedbackups/status",
    ],
    [
      "PUT",
      "/apis/subresources.kubevirt.io/v1/namespaces/a/virtualmachineinstances/v/freeze",
      false,
      "update subresources.kubevirt.io virtualmachineinstances/freeze",
    ],
    ["DELETE", "/apis/batch/v1/namespaces/a/jobs/j?propagationPolicy=Foreground", false, "delete batch jobs"],
    ["DELETE", "/apis/batch/v1/namespaces/a/jobs", false, "deletecollection batch jobs"],
    [
      "POST",
      "/apis/authorization.k8s.io/v1/subjectaccessreviews",
      false,
      "create authorization.k8s.io subjectaccessreviews",
    ],
    ["GET", "/apis/coordination.k8s.io/v1/namespaces/s/leases", false, "list coordination.k8s.io leases"],
  ];
  for (const [method, path, watch, want] of cases) {
    it(`${method} ${path}${watch ? " (watch)" : ""} is ${want}`, () => {
      const a = requestAttributes(method, path, watch);
      assert.equal(a && `${a.verb} ${a.group} ${a.resource}`, want);
    });
  }

  it("names no resource for discovery and version paths", () => {
    assert.equal(requestAttributes("GET", "/version", false), undefined);
    assert.equal(requestAttributes("GET", "/apis", false), undefined);
    assert.equal(requestAttributes("GET", "/apis/fedbackup.io/v1alpha1", false), undefined);
    assert.equal(requestAttributes("GET", "/api/v1", false), undefined);
  });
});

describe("ApiUsage", () => {
  it("counts requests and refusals per (verb, group, resource), sorted", () => {
    const usage = new ApiUsage();
    usage.record({ verb: "get", group: "batch", resource: "jobs" }, 200);
    usage.record({ verb: "get", group: "batch", resource: "jobs" }, 403);
    usage.record({ verb: "create", group: "", resource: "events" }, 201);
    assert.deepEqual(usage.summary(), [
      { verb: "create", group: "", resource: "events", count: 1, denied: 0 },
      { verb: "get", group: "batch", resource: "jobs", count: 2, denied: 1 },
    ]);
  });
});

describe("impliedAttributes", () => {
  it("an owner reference that blocks its owner's deletion needs update on the owner's finalizers", () => {
    const body = {
      metadata: {
        ownerReferences: [
          {
            apiVersion: "fedbackup.io/v1alpha1",
            kind: "FederatedBackup",
            name: "b",
            uid: "u",
            blockOwnerDeletion: true,
          },
          { apiVersion: "fedbackup.io/v1alpha1", kind: "NodeSnapshot", name: "s", uid: "v", blockOwnerDeletion: false },
          { apiVersion: "example.com/v1", kind: "Unknown", name: "x", uid: "w", blockOwnerDeletion: true },
        ],
      },
    };
    assert.deepEqual(impliedAttributes(body, resourceOfKind), [
      { verb: "update", group: "fedbackup.io", resource: "federatedbackups/finalizers" },
    ]);
    assert.deepEqual(impliedAttributes({ metadata: {} }, resourceOfKind), []);
    assert.deepEqual(impliedAttributes(undefined, resourceOfKind), []);
  });
});
