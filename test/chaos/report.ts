// The summary `make chaos` prints: per scenario, its runs, violations and median time.

export interface ScenarioRow {
  scenario: string;
  runs: number;
  violations: number;
  medianSeconds: number;
  maxSeconds: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(
  results: ReadonlyArray<{ scenario: string; elapsedMs: number; violations: readonly unknown[] }>,
): ScenarioRow[] {
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  return scenarios.map((scenario) => {
    const runs = results.filter((r) => r.scenario === scenario);
    const seconds = runs.map((r) => r.elapsedMs / 1000);
    return {
      scenario,
      runs: runs.length,
      violations: runs.reduce((n, r) => n + r.violations.length, 0),
      medianSeconds: Math.round(median(seconds) * 10) / 10,
      maxSeconds: Math.round(Math.max(...seconds) * 10) / 10,
    };
  });
}

export function renderTable(rows: readonly ScenarioRow[]): string {
  const header = ["scenario", "runs", "violations", "median s", "max s"];
  const cells = rows.map((r) => [
    r.scenario,
    String(r.runs),
    String(r.violations),
    r.medianSeconds.toFixed(1),
    r.maxSeconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join("  ");
  return [line(header), ...cells.map(line)].join("\n");
}
