import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import type { FederatedBackup, WorkloadRestore } from "../../../src/api/v1alpha1/index.js";
import {
  accessVerdict,
  ANNOTATION_CREATED_BY,
  BACKUP_ACCESS,
  backupNamespaces,
  CREATOR_POLICY_GRACE_MS,
  CREATOR_POLICY_KINDS,
  CREATOR_POLICY_NAME,
  creatorTrust,
  creatorUnknown,
  foreignNamespaces,
  lastWritten,
  parseCreator,
  RESTORE_ACCESS,
  restoreNamespaces,
  type CreatorPolicies,
  type PolicyObject,
} from "../../../src/controllers/runtime/creator-access.js";
import { defaultRepoRoot, parseCrds, readCrdTexts } from "../../../hack/gen-api-types.js";

function backup(workloads: FederatedBackup["spec"]["workloads"], namespace = "team-a"): FederatedBackup {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name: "nightly", namespace },
    spec: {
      sharedVolume: { claimName: "vmdisks", nodeMountPath: "/var/lib/vmdisks" },
      location: { persistentVolumeClaim: { claimName: "backups" } },
      ...(workloads ? { workloads } : {}),
    },
  };
}

function restore(spec: Partial<WorkloadRestore["spec"]>, namespace = "team-a"): WorkloadRestore {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "WorkloadRestore",
    metadata: { name: "undo", namespace },
    spec: { backupRef: { name: "nightly" }, ...spec },
  };
}

const T0 = Date.parse("2026-11-25T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function policy(kind: string, createdAt: number, more: Partial<PolicyObject> = {}): PolicyObject {
  const binding = kind.endsWith("Binding");
  return {
    kind,
    metadata: { name: CREATOR_POLICY_NAME, creationTimestamp: iso(createdAt), ...more.metadata },
    ...(binding
      ? {
          spec: {
            policyName: CREATOR_POLICY_NAME,
            ...(kind.startsWith("Validating") ? { validationActions: ["Deny"] } : {}),
            ...more.spec,
          },
        }
      : {}),
  };
}

function allPolicies(createdAt: number): CreatorPolicies {
  return {
    mutatingPolicy: policy(CREATOR_POLICY_KINDS.mutatingPolicy, createdAt),
    mutatingBinding: policy(CREATOR_POLICY_KINDS.mutatingBinding, createdAt),
    validatingPolicy: policy(CREATOR_POLICY_KINDS.validatingPolicy, createdAt),
    validatingBinding: policy(CREATOR_POLICY_KINDS.validatingBinding, createdAt),
  };
}

describe("creator access", () => {
  describe("which namespaces a run selects", () => {
    it("a backup: its own namespace when none is named, else every namespace it names", () => {
      assert.deepEqual(backupNamespaces(backup(undefined)), ["team-a"]);
      assert.deepEqual(backupNamespaces(backup({ selector: { matchLabels: { app: "db" } } })), ["team-a"]);
      assert.deepEqual(backupNamespaces(backup({ namespaces: ["team-b", "team-a"] })), ["team-b", "team-a"]);
      // names[].namespace defaults to the backup's own.
      assert.deepEqual(backupNamespaces(backup({ names: [{ name: "web" }, { namespace: "team-c", name: "db" }] })), [
        "team-a",
        "team-c",
      ]);
    });

    it("a restore: the namespaces of its workloads, its groups and the VMs it resolved to", () => {
      const r = restore({
        workloads: [
          { namespace: "team-a", name: "web" },
          { namespace: "team-b", name: "db" },
        ],
        groups: [
          {
            name: "app",
            workloads: [
              { namespace: "team-a", name: "web" },
              { namespace: "team-d", name: "cache" },
            ],
          },
        ],
      });
      assert.deepEqual(foreignNamespaces("team-a", restoreNamespaces(r)), ["team-b", "team-d"]);
      // An empty spec.workloads restores every VM of the backup, wherever they are.
      assert.deepEqual(
        foreignNamespaces("team-a", restoreNamespaces(restore({}), [{ namespace: "team-e" }, { namespace: "team-a" }])),
        ["team-e"],
      );
    });

    it("foreign namespaces are the others, sorted, each once; none in its own namespace", () => {
      assert.deepEqual(foreignNamespaces("a", ["c", "a", "b", "c"]), ["b", "c"]);
      assert.deepEqual(foreignNamespaces("a", ["a", "a"]), []);
    });
  });

  describe("parseCreator", () => {
    it("reads the JSON the mutating policy writes", () => {
      const value = JSON.stringify({
        username: "system:serviceaccount:team-a:ops",
        uid: "4f1c",
        groups: ["system:serviceaccounts", "system:authenticated"],
        extra: { "authentication.kubernetes.io/credential-id": ["JTI=abc"] },
      });
      assert.deepEqual(parseCreator(value), {
        username: "system:serviceaccount:team-a:ops",
        uid: "4f1c",
        groups: ["system:serviceaccounts", "system:authenticated"],
        extra: { "authentication.kubernetes.io/credential-id": ["JTI=abc"] },
      });
      assert.deepEqual(parseCreator('{"username":"admin","uid":"","groups":[],"extra":{}}'), {
        username: "admin",
        groups: [],
        extra: {},
      });
    });

    it("names what is wrong with a missing, unparsable or malformed annotation", () => {
      const error = (v: string | undefined) => {
        const c = parseCreator(v);
        assert.ok("error" in c, `${v} parsed`);
        return c.error;
      };
      assert.match(error(undefined), /fedbackup\.io\/created-by is missing/);
      assert.match(error("admin"), /is not JSON/);
      assert.match(error("[1]"), /is not a JSON object/);
      assert.match(error('{"groups":["x"]}'), /names no user/);
      assert.match(error('{"username":""}'), /names no user/);
      assert.match(error('{"error":"control characters"}'), /names no user: control characters/);
      assert.match(error('{"username":"u","groups":"system:masters"}'), /malformed groups/);
      assert.match(error('{"username":"u","extra":{"k":"v"}}'), /malformed extra/);
      assert.match(error('{"username":"u","uid":7}'), /malformed uid/);
    });
  });

  describe("creatorTrust", () => {
    const created = iso(T0);

    it("trusts the annotation when all four policy objects were in place long enough before the creation", () => {
      assert.deepEqual(creatorTrust(created, allPolicies(T0 - CREATOR_POLICY_GRACE_MS)), { trusted: true });
      assert.deepEqual(creatorTrust(created, allPolicies(T0 - 3_600_000)), { trusted: true });
    });

    it("does not when one is missing, was (re)created or changed after, or within the grace before", () => {
      for (const key of Object.keys(CREATOR_POLICY_KINDS) as Array<keyof CreatorPolicies>) {
        const missing = { ...allPolicies(T0 - 3_600_000), [key]: undefined };
        const t = creatorTrust(created, missing);
        assert.ok(!t.trusted && t.why.includes(`${CREATOR_POLICY_KINDS[key]} ${CREATOR_POLICY_NAME} does not exist`));

        const recreated = { ...allPolicies(T0 - 3_600_000), [key]: policy(CREATOR_POLICY_KINDS[key], T0 + 5_000) };
        assert.equal(creatorTrust(created, recreated).trusted, false);

        const recent = { ...allPolicies(T0 - 3_600_000), [key]: policy(CREATOR_POLICY_KINDS[key], T0 - 9_000) };
        const r = creatorTrust(created, recent);
        assert.ok(!r.trusted && r.why.includes("less than 10 s before"), JSON.stringify(r));

        const edited = {
          ...allPolicies(T0 - 3_600_000),
          [key]: policy(CREATOR_POLICY_KINDS[key], T0 - 3_600_000, {
            metadata: { managedFields: [{ time: iso(T0 - 60_000) }, { time: iso(T0 - 2_000) }] },
          }),
        };
        assert.equal(creatorTrust(created, edited).trusted, false);
      }
    });

    it("ignores status writes, and needs bindings that bind the policy (and deny)", () => {
      const status = {
        ...allPolicies(T0 - 3_600_000),
        validatingPolicy: policy(CREATOR_POLICY_KINDS.validatingPolicy, T0 - 3_600_000, {
          metadata: { managedFields: [{ time: iso(T0 + 1_000), subresource: "status" }] },
        }),
      };
      assert.deepEqual(creatorTrust(created, status), { trusted: true });

      const other = {
        ...allPolicies(T0 - 3_600_000),
        mutatingBinding: policy(CREATOR_POLICY_KINDS.mutatingBinding, T0 - 3_600_000, {
          spec: { policyName: "something-else" },
        }),
      };
      const o = creatorTrust(created, other);
      assert.ok(!o.trusted && o.why.includes("does not bind the policy"));

      const warnOnly = {
        ...allPolicies(T0 - 3_600_000),
        validatingBinding: policy(CREATOR_POLICY_KINDS.validatingBinding, T0 - 3_600_000, {
          spec: { policyName: CREATOR_POLICY_NAME, validationActions: ["Warn"] },
        }),
      };
      const w = creatorTrust(created, warnOnly);
      assert.ok(!w.trusted && w.why.includes("does not deny"));
    });

    it("does not trust a resource without a creationTimestamp", () => {
      assert.equal(creatorTrust(undefined, allPolicies(T0 - 3_600_000)).trusted, false);
    });

    it("lastWritten is the latest of the creation and the non-status managedFields times", () => {
      const p = policy("ValidatingAdmissionPolicy", T0, {
        metadata: {
          managedFields: [{ time: iso(T0 + 7_000) }, { time: iso(T0 + 9_000), subresource: "status" }, {}],
        },
      });
      assert.equal(lastWritten(p), T0 + 7_000);
      assert.equal(lastWritten({ kind: "X", metadata: {} }), undefined);
    });
  });

  describe("verdicts", () => {
    const creator = { username: "system:serviceaccount:team-a:ops", groups: [], extra: {} };

    it("NamespaceNotPermitted names the creator, the permission and every refused namespace", () => {
      assert.equal(accessVerdict("FederatedBackup", "team-a", creator, BACKUP_ACCESS, []), undefined);
      const v = accessVerdict("FederatedBackup", "team-a", creator, BACKUP_ACCESS, ["team-c", "team-b"]);
      assert.equal(v?.reason, "NamespaceNotPermitted");
      assert.match(v.message, /system:serviceaccount:team-a:ops, who created it, may not freeze VMs/);
      assert.match(v.message, /in namespaces team-b, team-c\. Nothing was touched\./);
      const r = accessVerdict("WorkloadRestore", "team-a", creator, RESTORE_ACCESS, ["team-b"]);
      assert.match(
        r!.message,
        /may not update VirtualMachines \(update virtualmachines in kubevirt\.io\) in namespace team-b\./,
      );
    });

    it("CreatorUnknown names the foreign namespaces and why", () => {
      const u = creatorUnknown("WorkloadRestore", "team-a", ["team-b"], "the annotation is missing");
      assert.equal(u.reason, "CreatorUnknown");
      assert.match(
        u.message,
        /this WorkloadRestore selects VMs in namespaces other than its own \(team-a\), namespace team-b,/,
      );
      assert.match(u.message, /cannot be known: the annotation is missing\./);
    });
  });

  describe("crds/ admission policies", () => {
    const docs = readCrdTexts(defaultRepoRoot()).flatMap((t) => loadAll(t) as Array<Record<string, unknown>>);
    const policies = readFileSync(join(defaultRepoRoot(), "crds/fedbackup.io_admission-policies.yaml"), "utf8");
    const objects = loadAll(policies) as Array<{
      kind: string;
      metadata: { name: string };
      spec: Record<string, unknown>;
    }>;

    it("are shipped beside the CRDs, which the type generator alone reads", () => {
      assert.deepEqual(objects.map((o) => `${o.kind} ${o.metadata.name}`).sort(), [
        "MutatingAdmissionPolicy fedbackup.io-created-by",
        "MutatingAdmissionPolicyBinding fedbackup.io-created-by",
        "ValidatingAdmissionPolicy fedbackup.io-created-by",
        "ValidatingAdmissionPolicy fedbackup.io-namespace-access",
        "ValidatingAdmissionPolicyBinding fedbackup.io-created-by",
        "ValidatingAdmissionPolicyBinding fedbackup.io-namespace-access",
      ]);
      assert.ok(docs.length > objects.length);
      assert.ok(parseCrds(readCrdTexts(defaultRepoRoot())).every((c) => c.kind === "CustomResourceDefinition"));
    });

    it("write and protect the annotation the operator reads, and check the permissions it checks", () => {
      const mutating = objects.find((o) => o.kind === "MutatingAdmissionPolicy")!;
      assert.ok(JSON.stringify(mutating.spec.mutations).includes(`\\"${ANNOTATION_CREATED_BY}\\"`));
      const immutable = objects.find(
        (o) => o.kind === "ValidatingAdmissionPolicy" && o.metadata.name === CREATOR_POLICY_NAME,
      )!;
      assert.ok(JSON.stringify(immutable.spec.validations).includes(`'${ANNOTATION_CREATED_BY}'`));
      const access = JSON.stringify(objects.find((o) => o.metadata.name === "fedbackup.io-namespace-access")!.spec);
      for (const check of [BACKUP_ACCESS, RESTORE_ACCESS]) {
        assert.ok(access.includes(`'${check.group}'`) && access.includes(`'${check.resource}'`), check.what);
        if (check.subresource) assert.ok(access.includes(`'${check.subresource}'`));
      }
      for (const binding of objects.filter((o) => o.kind === "ValidatingAdmissionPolicyBinding"))
        assert.deepEqual(binding.spec.validationActions, ["Deny"]);
    });
  });
});
