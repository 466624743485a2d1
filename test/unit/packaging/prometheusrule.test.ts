// The chart's PrometheusRule (charts/fedbackup/templates/prometheusrule.yaml): rendered only when
// prometheusRule.enabled, its alerts on the metric names the operator serves, and — with promtool (Debian's
// prometheus package; $PROMTOOL or PATH) — checked by `promtool check rules` and shown to fire, and not to
// fire, on example series by `promtool test rules`. Without helm or promtool those parts are skipped, saying so.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as yaml from "js-yaml";
import { OperatorMetrics } from "../../../src/telemetry/metrics.js";
import { findHelm, helmTemplate } from "../../../hack/manifests.js";

interface Rule {
  alert: string;
  expr: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface RuleDoc {
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: { groups: Array<{ name: string; rules: Rule[] }> };
}

function findPromtool(): string | undefined {
  const candidates = [
    process.env.PROMTOOL,
    ...(process.env.PATH ?? "").split(path.delimiter).map((d) => d && path.join(d, "promtool")),
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

const SHOW = ["--show-only", "templates/prometheusrule.yaml"];

describe("Helm chart: PrometheusRule", function () {
  this.timeout(60_000);
  const helm = findHelm();
  const promtool = findPromtool();
  let rendered: RuleDoc;

  before(function () {
    if (!helm) {
      console.log("    (no helm: the PrometheusRule is not rendered)");
      this.skip();
    }
    const text = helmTemplate(helm, [
      ...SHOW,
      "--set",
      "prometheusRule.enabled=true",
      "--set",
      "prometheusRule.labels.release=prom",
    ]);
    rendered = yaml.load(text) as RuleDoc;
  });

  it("is rendered only when prometheusRule.enabled", () => {
    assert.throws(() => helmTemplate(helm!, SHOW), /could not find template/);
    assert.equal(rendered.kind, "PrometheusRule");
    assert.equal(rendered.metadata.labels.release, "prom");
  });

  it("alerts on no success for N hours, a PartiallyFailed or Failed backup, and a missing VM, on metrics the operator serves", async () => {
    const rules = rendered.spec.groups.flatMap((g) => g.rules);
    assert.deepEqual(
      rules.map((r) => r.alert),
      ["FedbackupNoSuccessfulBackup", "FedbackupBackupPartiallyFailed", "FedbackupWorkloadMissing"],
    );
    const byName = new Map(rules.map((r) => [r.alert, r]));
    assert.match(
      byName.get("FedbackupNoSuccessfulBackup")!.expr,
      /^time\(\) - max by \(namespace, name\) \(fedbackup_backup_last_success_timestamp_seconds\{\}\) > 25 \* 3600$/,
    );
    assert.match(byName.get("FedbackupBackupPartiallyFailed")!.expr, /PartiallyFailed\|Failed"\}\[1h\]/);
    for (const r of rules) {
      assert.equal(r.labels.severity, "warning");
      assert.ok(r.annotations.summary && r.annotations.description, `${r.alert} has a summary and a description`);
    }
    // Every metric name an alert reads is one the operator registers.
    const served = new Set((await new OperatorMetrics(false).registry.getMetricsAsJSON()).map((m) => m.name));
    for (const r of rules) {
      for (const name of r.expr.match(/fedbackup_[a-z_]+/g) ?? []) assert.ok(served.has(name), `${r.alert}: ${name}`);
    }
  });

  it("takes the hours, the window and a selector from values", () => {
    const text = helmTemplate(helm!, [
      ...SHOW,
      "--set",
      "prometheusRule.enabled=true",
      "--set",
      "prometheusRule.noSuccessfulBackupHours=49",
      "--set",
      "prometheusRule.failedBackupWindow=6h",
      "--set-string",
      'prometheusRule.backupSelector=namespace="prod"',
    ]);
    const rules = (yaml.load(text) as RuleDoc).spec.groups.flatMap((g) => g.rules);
    assert.match(rules[0]!.expr, /last_success_timestamp_seconds\{namespace="prod"\}\) > 49 \* 3600$/);
    assert.match(rules[1]!.expr, /\[6h\]\)\) > 0$/);
    assert.match(rules[2]!.expr, /fedbackup_workloads_missing\{namespace="prod"\}\)/);
  });

  describe("promtool", () => {
    let dir: string;
    before(function () {
      if (!promtool) {
        console.log("    (no promtool: install Debian's prometheus package, or set PROMTOOL)");
        this.skip();
      }
      dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-rules-"));
    });
    after(() => dir && rmSync(dir, { recursive: true, force: true }));

    it("`promtool check rules` accepts the rules, annotation templates included", () => {
      writeFileSync(path.join(dir, "rules.yaml"), yaml.dump(rendered.spec));
      execFileSync(promtool!, ["check", "rules", path.join(dir, "rules.yaml")], { stdio: "pipe" });
    });

    it("`promtool test rules`: each alert fires on the series it is for, and only there", () => {
      // Expressions and labels under test; the annotations are checked above.
      const bare = {
        groups: rendered.spec.groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _a, ...r }) => r) })),
      };
      writeFileSync(path.join(dir, "bare.yaml"), yaml.dump(bare));
      const tests = {
        rule_files: ["bare.yaml"],
        evaluation_interval: "1m",
        tests: [
          {
            interval: "1m",
            input_series: [
              // Succeeded once at t=0, never again; the other succeeds every minute (value = the time).
              {
                series: 'fedbackup_backup_last_success_timestamp_seconds{namespace="prod",name="stale"}',
                values: "0x1600",
              },
              {
                series: 'fedbackup_backup_last_success_timestamp_seconds{namespace="prod",name="fresh"}',
                values: "0+60x1600",
              },
              { series: 'fedbackup_backup_total{result="PartiallyFailed"}', values: "0 0 0 1x20" },
              { series: 'fedbackup_backup_total{result="Completed"}', values: "0+1x22" },
              {
                series: 'fedbackup_workloads_missing{namespace="prod",name="stale",reason="NodeFailed"}',
                values: "2x30",
              },
              {
                series: 'fedbackup_workloads_missing{namespace="prod",name="stale",reason="NotRunning"}',
                values: "0x30",
              },
            ],
            alert_rule_test: [
              { eval_time: "24h", alertname: "FedbackupNoSuccessfulBackup", exp_alerts: [] },
              {
                eval_time: "26h",
                alertname: "FedbackupNoSuccessfulBackup",
                exp_alerts: [{ exp_labels: { severity: "warning", namespace: "prod", name: "stale" } }],
              },
              { eval_time: "2m", alertname: "FedbackupBackupPartiallyFailed", exp_alerts: [] },
              {
                eval_time: "10m",
                alertname: "FedbackupBackupPartiallyFailed",
                exp_alerts: [{ exp_labels: { severity: "warning", result: "PartiallyFailed" } }],
              },
              {
                eval_time: "10m",
                alertname: "FedbackupWorkloadMissing",
                exp_alerts: [
                  { exp_labels: { severity: "warning", namespace: "prod", name: "stale", reason: "NodeFailed" } },
                ],
              },
            ],
          },
        ],
      };
      writeFileSync(path.join(dir, "tests.yaml"), yaml.dump(tests));
      try {
        execFileSync(promtool!, ["test", "rules", "tests.yaml"], { cwd: dir, encoding: "utf8", stdio: "pipe" });
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        assert.fail(`promtool test rules failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
      }
    });
  });
});
