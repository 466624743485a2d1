// `make chaos`: seeded, bounded chaos runs of the operator on one real control plane (5 kwok nodes, 30 VMs
// per run, agents run for real on real files), each scenario CHAOS_RUNS times, every invariant checked
// after every run. Prints scenario, runs, violations and median time; exits 1 on any violation. As root with
// mkfs.xfs, the volumes are on a loop-mounted XFS and the backups pipelined, cut with Reflink (backup-spec.ts).
//
//   CHAOS_SEED       the seed (default: one drawn now, printed, so a run can be repeated)
//   CHAOS_RUNS       runs per scenario (default 20)
//   CHAOS_SCENARIOS  comma-separated scenario names (default all)
//   CHAOS_BOUND_SECONDS  how long a run may take to reach a terminal phase (default 240)
//   CHAOS_REPORT     write the results as JSON to this file
//   CHAOS_KEEP       keep each run's namespace and files (for debugging)
import { writeFileSync } from "node:fs";
import { renderTable, summarize } from "./report.js";
import { runOnce, type RunResult } from "./run.js";
import { SCENARIOS } from "./scenarios.js";
import { ChaosWorld } from "./world.js";

function intFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  if (!/^\d+$/.test(text)) throw new Error(`${name}=${text}: not a whole number`);
  return Number(text);
}

async function main(): Promise<number> {
  const seed = intFromEnv("CHAOS_SEED", Math.floor(Math.random() * 2 ** 31));
  const runs = intFromEnv("CHAOS_RUNS", 20);
  const boundMs = intFromEnv("CHAOS_BOUND_SECONDS", 240) * 1000;
  const names = (process.env.CHAOS_SCENARIOS ?? "").split(",").filter(Boolean);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  const scenarios = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  console.log(`chaos: CHAOS_SEED=${seed} CHAOS_RUNS=${runs}, ${scenarios.length} scenarios, bound ${boundMs / 1000} s`);
  const t0 = Date.now();
  const world = await ChaosWorld.start((m) => console.log(`chaos: ${m}`));
  const results: RunResult[] = [];
  try {
    for (const scenario of scenarios) {
      for (let i = 1; i <= runs; i++) {
        const result = await runOnce(world, scenario, seed, i, boundMs);
        results.push(result);
        const verdict = result.violations.length ? `${result.violations.length} VIOLATIONS` : "ok";
        console.log(
          `  ${scenario.name} #${i} (${result.namespace}, run seed ${result.seed}) ${(result.elapsedMs / 1000).toFixed(1)} s ${verdict}: ${result.phases.join(", ")}`,
        );
        for (const note of result.notes) console.log(`    - ${note}`);
        for (const v of result.violations) console.log(`    ${v.invariant}: ${v.detail}`);
      }
    }
  } finally {
    await world.stop();
  }
  const rows = summarize(results);
  console.log(`\nchaos: CHAOS_SEED=${seed}, ${((Date.now() - t0) / 1000).toFixed(0)} s in all`);
  console.log(renderTable(rows));
  if (process.env.CHAOS_REPORT)
    writeFileSync(
      process.env.CHAOS_REPORT,
      JSON.stringify({ seed, runs, rows, results }, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v), 2) +
        "\n",
    );
  return rows.some((r) => r.violations > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
