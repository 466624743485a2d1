import assert from "node:assert/strict";
import { compareUsage, expandRules, formatUsageReport, wildcardRules } from "../harness/rbac-usage.js";

describe("RBAC granted vs used (the end-to-end test's check)", () => {
  const rules = [
    { apiGroups: ["fedbackup.io"], resources: ["nodesnapshots", "noderestores"], verbs: ["get", "delete"] },
    { apiGroups: [""], resources: ["configmaps"], verbs: ["get"], resourceNames: ["a"] },
    { apiGroups: [""], resources: ["configmaps"], verbs: ["get"], resourceNames: ["b"] },
    { apiGroups: ["kubevirt.io"], resources: ["virtualmachineinstances/freeze"], verbs: ["update"] },
  ];

  it("expands rules into (verb, group, resource), joining the names of named rules", () => {
    const perms = expandRules(rules);
    assert.equal(perms.length, 6);
    assert.deepEqual(
      perms.find((p) => p.resource === "configmaps"),
      { verb: "get", group: "", resource: "configmaps", names: ["a", "b"] },
    );
  });

  it("sorts each grant into used, delegated, path not taken or unused, and reports denials", () => {
    const report = compareUsage(
      expandRules(rules),
      [
        { verb: "get", group: "fedbackup.io", resource: "nodesnapshots", count: 3, denied: 0 },
        { verb: "get", group: "", resource: "configmaps", count: 1, denied: 1 },
        { verb: "list", group: "", resource: "pods", count: 1, denied: 0 },
      ],
      [{ verb: "update", group: "kubevirt.io", resource: "virtualmachineinstances/freeze" }],
      { "delete fedbackup.io/nodesnapshots": "why", "delete fedbackup.io/jobs": "stale" },
    );
    assert.deepEqual(report.used, [
      { key: "get core/configmaps", count: 1 },
      { key: "get fedbackup.io/nodesnapshots", count: 3 },
    ]);
    assert.deepEqual(report.delegated, ["update kubevirt.io/virtualmachineinstances/freeze"]);
    assert.deepEqual(report.notTaken, [{ key: "delete fedbackup.io/nodesnapshots", why: "why" }]);
    assert.deepEqual(report.unused, ["delete fedbackup.io/noderestores", "get fedbackup.io/noderestores"]);
    assert.deepEqual(report.staleExplanations, ["delete fedbackup.io/jobs"]);
    assert.deepEqual(report.denied, [{ key: "get core/configmaps", denied: 1 }]);
    assert.deepEqual(report.outside, ["list core/pods"]);
    assert.match(formatUsageReport("operator", report), /NEVER USED\s+delete fedbackup.io\/noderestores/);
  });

  it("finds wildcards in groups, resources and verbs", () => {
    assert.equal(wildcardRules(rules).length, 0);
    assert.equal(wildcardRules([{ apiGroups: ["*"], resources: ["pods"], verbs: ["get"] }]).length, 1);
    assert.equal(wildcardRules([{ apiGroups: [""], resources: ["pods"], verbs: ["*"] }]).length, 1);
  });
});
