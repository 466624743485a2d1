// The Helm chart (charts/fedbackup) and deploy/, rendered from it. Needs helm: $HELM, the pinned one that
// hack/controlplane/build.sh builds, or one on PATH; without any the helm tests are skipped, saying so.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as yaml from "js-yaml";
import { parseAgentJobSettings } from "../../../src/controllers/runtime/agent-job.js";
import { REPO_ROOT } from "../../harness/binaries.js";
import { CHART_DIR, findHelm, helmTemplate, MANIFEST_FILES, renderManifests } from "../../../hack/manifests.js";

const chart = (...p: string[]) => path.join(REPO_ROOT, CHART_DIR, ...p);
const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), "utf8");
const ADMISSION_POLICIES = "fedbackup.io_admission-policies.yaml";

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}
interface Container {
  image: string;
  args: string[];
  env: Array<{ name: string; value?: string }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  startupProbe?: { httpGet: { path: string; port: string }; failureThreshold: number; periodSeconds: number };
  ports: Array<{ name: string; containerPort: number }>;
}
const docsOf = (text: string) => (yaml.loadAll(text) as Array<Obj | null>).filter((d): d is Obj => d !== null);
const deploymentOf = (docs: Obj[]) => docs.find((d) => d.kind === "Deployment")!;
const podOf = (docs: Obj[]) =>
  (deploymentOf(docs).spec as { template: { spec: Record<string, unknown> & { containers: Container[] } } }).template
    .spec;
const envOf = (docs: Obj[], name: string) => podOf(docs).containers[0]!.env.find((e) => e.name === name)?.value;

describe("Helm chart", () => {
  describe("CRDs and admission policies", () => {
    it("charts/fedbackup/crds holds exactly the CRDs of crds/, byte for byte", () => {
      const sources = readdirSync(path.join(REPO_ROOT, "crds"))
        .filter((f) => f !== ADMISSION_POLICIES)
        .sort();
      assert.deepEqual(readdirSync(chart("crds")).sort(), sources);
      for (const f of sources) assert.equal(read(path.join(CHART_DIR, "crds", f)), read(`crds/${f}`), f);
    });

    it("the chart's admission policies (templates, not crds/) are crds/'s file, byte for byte", () => {
      assert.equal(read(path.join(CHART_DIR, "files/admission-policies.yaml")), read(`crds/${ADMISSION_POLICIES}`));
    });
  });

  describe("values", () => {
    type Schema = { type?: string; properties?: Record<string, Schema>; additionalProperties?: unknown };
    const schema = JSON.parse(readFileSync(chart("values.schema.json"), "utf8")) as Schema;

    /** Each key of values.yaml by its dotted path, and whether a comment line stands right above it. */
    function keysOfValuesFile(): Map<string, boolean> {
      const keys = new Map<string, boolean>();
      const stack: Array<{ indent: number; key: string }> = [];
      let commented = false;
      for (const line of readFileSync(chart("values.yaml"), "utf8").split("\n")) {
        if (/^\s*#/.test(line)) {
          commented = true;
          continue;
        }
        const m = /^(\s*)([A-Za-z][\w.-]*):/.exec(line);
        if (m) {
          const indent = m[1]!.length;
          while (stack.length && stack.at(-1)!.indent >= indent) stack.pop();
          stack.push({ indent, key: m[2]! });
          keys.set(stack.map((s) => s.key).join("."), commented);
        }
        commented = false;
      }
      return keys;
    }

    /**
     * The values the schema declares that values.yaml leaves without a comment: a commented key covers what it
     * holds (resources, updateStrategy); an uncommented one must be a group whose every value is commented.
     */
    function uncommented(keys: Map<string, boolean>, s: Schema, prefix = ""): string[] {
      return Object.entries(s.properties ?? {}).flatMap(([k, sub]) => {
        const at = `${prefix}${k}`;
        if (!keys.has(at)) return [`${at} (missing)`];
        if (keys.get(at)) return [];
        return sub.properties && sub.additionalProperties === false ? uncommented(keys, sub, `${at}.`) : [at];
      });
    }

    it("every value the schema declares is in values.yaml with a comment above it", () => {
      const keys = keysOfValuesFile();
      assert.ok(keys.size > 30, `${keys.size} keys`);
      assert.deepEqual(uncommented(keys, schema), []);
    });

    it("the schema closes every group of values (additionalProperties: false)", () => {
      const open: string[] = [];
      const walk = (s: Schema, at: string) => {
        if (!s.properties) return;
        if (s.additionalProperties !== false) open.push(at || "(root)");
        for (const [k, sub] of Object.entries(s.properties)) if (sub.properties) walk(sub, at ? `${at}.${k}` : k);
      };
      walk(schema, "");
      assert.deepEqual(open, []);
    });
  });

  describe("rendered with helm", function () {
    let helm: string | undefined;
    before(function () {
      this.timeout(30 * 60_000); // build.sh builds helm on a cold cache (Go), as make controlplane would
      helm = findHelm();
      if (!helm) {
        process.stderr.write("  skipped: no helm ($HELM, hack/controlplane/build.sh with Go, or helm on PATH)\n");
        this.skip();
      }
    });
    const template = (...args: string[]) => docsOf(helmTemplate(helm!, args));
    /** helm's stderr when `helm template` fails, else a failure of the test. */
    const refusal = (...args: string[]) => {
      try {
        helmTemplate(helm!, args);
      } catch (err) {
        return String((err as { stderr?: string }).stderr);
      }
      assert.fail(`helm template ${args.join(" ")} was accepted`);
    };

    it("helm lint passes, with the default values and with every option on", () => {
      execFileSync(helm!, ["lint", "--strict", chart()], { encoding: "utf8", stdio: "pipe" });
      execFileSync(
        helm!,
        [
          "lint",
          "--strict",
          chart(),
          ...["--set", "metrics.serviceMonitor.enabled=true", "--set", "podDisruptionBudget.enabled=true"],
          ...["--set", "namespace.create=true", "--set", "priorityClassName=high"],
        ],
        { encoding: "utf8", stdio: "pipe" },
      );
    });

    it("renders the operator with the restricted securityContext, probes, ports and its ServiceAccount", () => {
      const docs = template();
      const kinds = docs.map((d) => d.kind).sort();
      for (const k of ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "Service"])
        assert.ok(kinds.includes(k), k);
      assert.ok(kinds.includes("ServiceAccount"));
      assert.ok(!kinds.includes("Namespace"), "no Namespace unless namespace.create");
      assert.ok(!kinds.includes("ServiceMonitor") && !kinds.includes("PodDisruptionBudget"), "both optional, off");
      const pod = podOf(docs);
      assert.equal(pod.serviceAccountName, "fedbackup-operator");
      assert.deepEqual(pod.securityContext, {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        seccompProfile: { type: "RuntimeDefault" },
      });
      const c = pod.containers[0]!;
      assert.deepEqual((c as unknown as { securityContext: unknown }).securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      assert.equal(c.livenessProbe.httpGet.path, "/healthz");
      assert.equal(c.readinessProbe.httpGet.path, "/readyz");
      assert.equal(c.livenessProbe.httpGet.port, "health");
      // The first cache sync is covered by the startup probe, not killed by the liveness probe.
      assert.equal(c.startupProbe?.httpGet.path, "/readyz");
      assert.ok((c.startupProbe?.failureThreshold ?? 0) * (c.startupProbe?.periodSeconds ?? 0) >= 60);
      assert.equal(podOf(template("--set", "startupProbe=null")).containers[0]!.startupProbe, undefined);
      assert.ok(c.args.includes("--health-bind-address=:8081") && c.args.includes("--metrics-bind-address=:8080"));
      assert.deepEqual(
        c.ports.map((p) => [p.name, p.containerPort]),
        [
          ["metrics", 8080],
          ["health", 8081],
        ],
      );
      // The agent Jobs run the operator's image by default; one value changes both.
      assert.equal(envOf(docs, "FEDBACKUP_AGENT_IMAGE"), c.image);
      const moved = template("--set", "image.repository=registry.example/fb", "--set", "image.tag=9.9.9");
      assert.equal(podOf(moved).containers[0]!.image, "registry.example/fb:9.9.9");
      assert.equal(envOf(moved, "FEDBACKUP_AGENT_IMAGE"), "registry.example/fb:9.9.9");
    });

    it("runs two replicas with leader election by default, and refuses several without it", () => {
      const docs = template();
      assert.equal((deploymentOf(docs).spec as { replicas: number }).replicas, 2);
      const args = podOf(docs).containers[0]!.args;
      assert.ok(args.includes("--leader-elect"), args.join(" "));
      assert.ok(args.includes("--leader-elect-lease-duration=15s"));
      assert.match(refusal("--set", "leaderElection.enabled=false"), /replicaCount > 1 needs leaderElection.enabled/);
      const single = template(
        ...["--set", "leaderElection.enabled=false", "--set", "replicaCount=1"],
        ...["--set", "updateStrategy.type=Recreate", "--set", "updateStrategy.rollingUpdate=null"],
      );
      assert.ok(!podOf(single).containers[0]!.args.some((a) => a.startsWith("--leader-elect")));
      assert.deepEqual((deploymentOf(single).spec as { strategy: unknown }).strategy, { type: "Recreate" });
    });

    it("plumbs the agent Job values to the operator as FEDBACKUP_AGENT_JOB, which it reads back", () => {
      const docs = template(
        ...["--set", "agent.imagePullSecrets[0].name=registry-creds", "--set", "agent.nodeSelector.pool=vms"],
        ...["--set", "agent.tolerations[0].key=dedicated", "--set", "agent.tolerations[0].operator=Exists"],
        ...["--set", "agent.resources.limits.memory=1Gi", "--set", "agent.priorityClassName=backup-critical"],
        ...["--set", "agent.imagePullPolicy=Always", "--set", "imagePullSecrets[0].name=operator-creds"],
      );
      assert.deepEqual(parseAgentJobSettings(envOf(docs, "FEDBACKUP_AGENT_JOB")), {
        imagePullPolicy: "Always",
        agentJob: {
          imagePullSecrets: [{ name: "registry-creds" }],
          nodeSelector: { pool: "vms" },
          tolerations: [{ key: "dedicated", operator: "Exists" }],
          resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "1Gi" } },
          priorityClassName: "backup-critical",
        },
      });
      assert.deepEqual(podOf(docs).imagePullSecrets, [{ name: "operator-creds" }]);
      // The defaults: every taint tolerated, the operator's pull policy.
      assert.deepEqual(parseAgentJobSettings(envOf(template(), "FEDBACKUP_AGENT_JOB")).agentJob?.tolerations, [
        { operator: "Exists" },
      ]);
    });

    it("renders the options: ServiceMonitor, PodDisruptionBudget, Namespace, extra args and env, scheduling", () => {
      const docs = template(
        ...["--set", "metrics.serviceMonitor.enabled=true", "--set", "podDisruptionBudget.enabled=true"],
        ...["--set", "prometheusRule.enabled=true"],
        ...["--set", "namespace.create=true", "--set", "extraArgs[0]=--concurrency=4"],
        ...["--set", "extraEnv[0].name=FOO", "--set", "extraEnv[0].value=bar", "--set", "priorityClassName=high"],
        ...["--set", "nodeSelector.role=infra", "--set", "tolerations[0].operator=Exists"],
        ...[
          "--set",
          "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=a",
        ],
      );
      const byKind = (k: string) => docs.filter((d) => d.kind === k);
      assert.equal(byKind("ServiceMonitor").length, 1);
      assert.equal(byKind("PodDisruptionBudget").length, 1);
      assert.equal(byKind("PrometheusRule").length, 1);
      assert.equal(byKind("Namespace")[0]!.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
      const pod = podOf(docs);
      assert.equal(pod.containers[0]!.args.at(-1), "--concurrency=4");
      assert.equal(envOf(docs, "FOO"), "bar");
      assert.equal(
        envOf(docs, "NODE_OPTIONS"),
        "--max-old-space-size=320 --max-semi-space-size=8",
        "the heap limit and the semi-space by default",
      );
      assert.equal(envOf(template("--set", "heapLimitMiB=0"), "NODE_OPTIONS"), "--max-semi-space-size=8");
      assert.equal(envOf(template("--set", "heapLimitMiB=0", "--set", "semiSpaceMiB=0"), "NODE_OPTIONS"), undefined);
      // A user's NODE_OPTIONS joins the chart's in one variable, after them.
      const joined = template(
        ...["--set", "extraEnv[0].name=NODE_OPTIONS", "--set", "extraEnv[0].value=--max-old-space-size=400"],
        ...["--set", "extraEnv[1].name=FOO", "--set", "extraEnv[1].value=bar"],
      );
      assert.deepEqual(
        podOf(joined).containers[0]!.env.filter((e) => e.name === "NODE_OPTIONS" || e.name === "FOO"),
        [
          { name: "NODE_OPTIONS", value: "--max-old-space-size=320 --max-semi-space-size=8 --max-old-space-size=400" },
          { name: "FOO", value: "bar" },
        ],
      );
      assert.throws(
        () => template("--set", "extraEnv[0].name=NODE_OPTIONS", "--set", "extraEnv[0].valueFrom.fieldRef.fieldPath=x"),
        /extraEnv: NODE_OPTIONS .* needs a value, not valueFrom/,
      );
      assert.equal(pod.priorityClassName, "high");
      assert.deepEqual(pod.nodeSelector, { role: "infra" });
      assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
      assert.ok(pod.affinity);
    });

    it("the schema refuses a wrong type or an unknown key, naming it", () => {
      assert.match(refusal("--set", "replicaCount=two"), /replicaCount.*got string, want integer/);
      assert.match(refusal("--set", "imagee.tag=x"), /additional properties 'imagee' not allowed/);
      assert.match(refusal("--set", "agent.tolerations=all"), /\/agent\/tolerations.*want array/);
      assert.match(refusal("--set", "agent.resource.limits.memory=1Gi"), /\/agent.*'resource' not allowed/);
      assert.match(refusal("--set", "image.pullPolicy=Sometimes"), /\/image\/pullPolicy/);
      assert.match(refusal("--set", "leaderElection.leaseDuration=15"), /\/leaderElection\/leaseDuration/);
    });

    it("deploy/ is the chart rendered with its default values (make manifests)", async function () {
      this.timeout(60_000);
      const files = await renderManifests(helm!);
      assert.deepEqual([...files.keys()], [...MANIFEST_FILES]);
      for (const [file, text] of files) assert.equal(read(file), text, `${file} is stale: run make manifests`);
      // deploy/rbac.yaml labels the operator's namespace for the Pod Security Standard restricted.
      const ns = docsOf(files.get("deploy/rbac.yaml")!).find((d) => d.kind === "Namespace")!;
      assert.equal(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
    });
  });
});
