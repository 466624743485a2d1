import assert from "node:assert/strict";
import type { FederatedBackup } from "../../../src/api/v1alpha1/index.js";
import { discoveryLists, labelSelectorParam } from "../../../src/controllers/federatedbackup/discovery-lists.js";
import { matchesLabelSelector, type LabelSelector } from "../../../src/controllers/federatedbackup/label-selector.js";

const backup = (workloads: FederatedBackup["spec"]["workloads"]): FederatedBackup => ({
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "team-a", uid: "uid-1" },
  spec: { location: { persistentVolumeClaim: { claimName: "backups" } }, ...(workloads ? { workloads } : {}) },
});

describe("discovery: the VMIs listed", () => {
  it("lists the backup's own namespace when nothing is selected, with no filter", () => {
    assert.deepEqual(discoveryLists(backup(undefined)), [{ namespace: "team-a" }]);
  });

  it("lists each selected namespace once, with the label selector", () => {
    const lists = discoveryLists(
      backup({ namespaces: ["team-c", "team-b", "team-c"], selector: { matchLabels: { tier: "db" } } }),
    );
    assert.deepEqual(lists, [
      { namespace: "team-b", labelSelector: "tier=db" },
      { namespace: "team-c", labelSelector: "tier=db" },
    ]);
  });

  it("lists the namespaces of VMs named one by one, a lone VM by its name", () => {
    const lists = discoveryLists(
      backup({ names: [{ name: "db" }, { namespace: "team-b", name: "web" }, { namespace: "team-b", name: "api" }] }),
    );
    assert.deepEqual(lists, [{ namespace: "team-a", fieldSelector: "metadata.name=db" }, { namespace: "team-b" }]);
  });
});

describe("discovery: the label selector sent to the API server", () => {
  it("writes every operator as the API server's selector syntax", () => {
    assert.equal(
      labelSelectorParam({
        matchLabels: { "app.kubernetes.io/part-of": "shop", tier: "db" },
        matchExpressions: [
          { key: "zone", operator: "In", values: ["b", "a"] },
          { key: "env", operator: "NotIn", values: ["test"] },
          { key: "backup", operator: "Exists" },
          { key: "skip", operator: "DoesNotExist" },
        ],
      }),
      "app.kubernetes.io/part-of=shop,tier=db,zone in (a,b),env notin (test),backup,!skip",
    );
  });

  it("sends nothing for no selector or an empty one (every VMI of the namespace is selected)", () => {
    assert.equal(labelSelectorParam(undefined), undefined);
    assert.equal(labelSelectorParam({}), undefined);
    assert.equal(labelSelectorParam({ matchLabels: {}, matchExpressions: [] }), undefined);
  });

  it("sends nothing it could not write faithfully: the VMIs are then matched here only", () => {
    const unsendable: LabelSelector[] = [
      { matchLabels: { tier: "db,env=prod" } },
      { matchLabels: { "tier)": "db" } },
      { matchLabels: { tier: "x".repeat(64) } },
      { matchExpressions: [{ key: "zone", operator: "In", values: [] }] },
      { matchExpressions: [{ key: "zone", operator: "In", values: ["a b"] }] },
      { matchExpressions: [{ key: "zone", operator: "Matches" as "In", values: ["a"] }] },
    ];
    for (const selector of unsendable) assert.equal(labelSelectorParam(selector), undefined, JSON.stringify(selector));
  });

  it("selects on the server what the operator's own matching selects", () => {
    // A tiny parser of the sent syntax, to check the two agree on a few label sets.
    const serverMatches = (param: string, labels: Record<string, string>) =>
      param.split(/,(?![^(]*\))/).every((term) => {
        const set = /^(\S+) (in|notin) \((.*)\)$/.exec(term);
        if (set) {
          const has = set[3]!.split(",").includes(labels[set[1]!] ?? "\0");
          return set[2] === "in" ? has : !has;
        }
        if (term.startsWith("!")) return !(term.slice(1) in labels);
        const [k, v] = term.split("=");
        return v === undefined ? k! in labels : labels[k!] === v;
      });
    const selector: LabelSelector = {
      matchLabels: { tier: "db" },
      matchExpressions: [
        { key: "zone", operator: "In", values: ["a", "b"] },
        { key: "env", operator: "NotIn", values: ["test"] },
        { key: "skip", operator: "DoesNotExist" },
      ],
    };
    const param = labelSelectorParam(selector)!;
    const cases: Array<Record<string, string>> = [
      { tier: "db", zone: "a" },
      { tier: "db", zone: "c" },
      { tier: "web", zone: "a" },
      { tier: "db", zone: "b", env: "test" },
      { tier: "db", zone: "b", env: "prod" },
      { tier: "db", zone: "a", skip: "" },
      {},
    ];
    for (const labels of cases)
      assert.equal(serverMatches(param, labels), matchesLabelSelector(selector, labels), JSON.stringify(labels));
  });
});
