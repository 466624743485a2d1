// The goals of issue 15 for the scale benchmark, held against one size's figures. Reported, never failed on.
// Pure.

export interface SizeFigures {
  nodes: number;
  wholeBackupMs: number;
  kubectlLoopMs: number;
  stepP50Ms: number;
  overheadP50Ms: number;
  overheadP99Ms: number;
  discoveryMs: number;
  requestsPerStep: number;
  peakRssBytes: number;
  storedBackupBytes: number;
}

export interface GoalCheck {
  goal: string;
  value: string;
  met: boolean;
}

const MiB = 1024 * 1024;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const ms = (v: number) => `${v.toFixed(0)} ms`;
// Two decimals for the figures whose bound is a round number (discovery, requests per step), so that a miss
// never prints as its bound (1,037 ms is not "1.0 s", 6.01 requests are not "6.0").
const s2 = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The goals that apply at this size: all of them at 1,000 nodes, the size-free ones (per step, per node) at any. */
export function checkGoals(f: SizeFigures): GoalCheck[] {
  const atScale = f.nodes >= 1000;
  const ratio = f.kubectlLoopMs / f.wholeBackupMs;
  return [
    ...(atScale ? [{ goal: "whole backup ≤ 120 s", value: s(f.wholeBackupMs), met: f.wholeBackupMs <= 120_000 }] : []),
    { goal: "≥ 8× faster than the kubectl loop", value: `${ratio.toFixed(2)}×`, met: ratio >= 8 },
    { goal: "per-step p50 ≤ 100 ms", value: ms(f.stepP50Ms), met: f.stepP50Ms <= 100 },
    { goal: "overhead p50 ≤ 30 ms", value: ms(f.overheadP50Ms), met: f.overheadP50Ms <= 30 },
    { goal: "overhead p99 ≤ 100 ms", value: ms(f.overheadP99Ms), met: f.overheadP99Ms <= 100 },
    { goal: "discovery ≤ 1 s", value: s2(f.discoveryMs), met: f.discoveryMs <= 1_000 },
    { goal: "≤ 6 API requests per node step", value: f.requestsPerStep.toFixed(2), met: f.requestsPerStep <= 6 },
    ...(atScale
      ? [
          {
            goal: "peak RSS ≤ 256 MiB",
            value: `${(f.peakRssBytes / MiB).toFixed(0)} MiB`,
            met: f.peakRssBytes <= 256 * MiB,
          },
        ]
      : []),
    {
      goal: "stored FederatedBackup < 256 KiB",
      value: `${(f.storedBackupBytes / 1024).toFixed(0)} KiB`,
      met: f.storedBackupBytes < 256 * 1024,
    },
  ];
}
