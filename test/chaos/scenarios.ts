// The six disturbances of `make chaos`. Each acts on the world while a run goes on, driven by the run's
// seeded generator, until the run is over; it says what it did in notes (a disturbance that found nothing
// to act on, such as an agent that finished before it could be killed, says so).
import { setTimeout as sleep } from "node:timers/promises";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import type { ChaosWorld, RunEnv } from "./world.js";

export interface DisturbContext {
  world: ChaosWorld;
  env: RunEnv;
  random: () => number;
  /** The node the scenario acts on (its VMs got big disks when the scenario asked for them). */
  victimNode: string;
  /** True once every run under test is finished. */
  over(): boolean;
  note(what: string): void;
}

export interface Scenario {
  name: string;
  /** The victim node's VMs get big disks, so that copying them takes long enough to be cut short. */
  bigDisks?: boolean;
  /** Its backups use the Copy method even where Reflink is possible: it acts while a copy runs under the freeze. */
  needsCopy?: boolean;
  /** Two backups and a restore of one volume at once, after a first backup to restore from. */
  concurrent?: boolean;
  disturb(ctx: DisturbContext): Promise<void>;
}

const between = (random: () => number, lowMs: number, highMs: number): number =>
  Math.round(lowMs + random() * (highMs - lowMs));

/** Sleeps up to `ms`, returning early (false) once the runs are over. */
async function wait(ctx: DisturbContext, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (ctx.over()) return false;
    await sleep(Math.min(50, until - Date.now()));
  }
  return !ctx.over();
}

const operatorKill: Scenario = {
  name: "operator-sigkill",
  async disturb(ctx) {
    const kills = 1 + Math.floor(ctx.random() * 3);
    for (let i = 0; i < kills; i++) {
      if (!(await wait(ctx, between(ctx.random, 1_000, 6_000)))) break;
      await ctx.world.operator.kill();
      const down = between(ctx.random, 200, 2_000);
      ctx.note(`operator SIGKILLed, restarted ${down} ms later`);
      await sleep(down);
      await ctx.world.operator.start();
    }
  },
};

const apiServerRestart: Scenario = {
  name: "apiserver-restart",
  async disturb(ctx) {
    if (!(await wait(ctx, between(ctx.random, 1_500, 8_000)))) return;
    const down = between(ctx.random, 300, 2_000);
    const t0 = Date.now();
    await ctx.world.cp.restartApiServer(down);
    ctx.note(`kube-apiserver restarted (down ${down} ms, back after ${Date.now() - t0} ms)`);
  },
};

const liveMigration: Scenario = {
  name: "live-migration",
  async disturb(ctx) {
    const onVictim = ctx.env.vms.filter((v) => v.node === ctx.victimNode);
    const vm = onVictim[Math.floor(ctx.random() * onVictim.length)]!;
    let n = 0;
    while (await wait(ctx, between(ctx.random, 1_500, 4_000))) {
      const others = ctx.world.nodes.filter((node) => node !== ctx.victimNode);
      const target = others[Math.floor(ctx.random() * others.length)]!;
      await ctx.world.admin
        .create(Resources.VirtualMachineInstanceMigration, {
          apiVersion: "kubevirt.io/v1",
          kind: "VirtualMachineInstanceMigration",
          metadata: { name: `${vm.name}-mig-${++n}`, namespace: ctx.env.namespace },
          spec: { vmiName: vm.name, addedNodeSelector: { "kubernetes.io/hostname": target } },
        } as KubeObject)
        .catch((err: unknown) => ctx.note(`migration ${n} not created: ${String(err)}`));
    }
    ctx.note(`${vm.name} asked to live-migrate ${n} times`);
  },
};

const nodeNotReady: Scenario = {
  name: "node-notready",
  async disturb(ctx) {
    if (!(await wait(ctx, between(ctx.random, 500, 5_000)))) return;
    const hold = between(ctx.random, 3_000, 10_000);
    await ctx.world.setNodeReady(ctx.victimNode, false);
    ctx.note(`${ctx.victimNode} NotReady for ${hold} ms`);
    await sleep(hold);
    await ctx.world.setNodeReady(ctx.victimNode, true);
  },
};

const agentKill: Scenario = {
  name: "agent-killed-mid-copy",
  bigDisks: true,
  needsCopy: true,
  // Killed 1-3 times, each attempt of the step's Job a little after it froze its first VM (with the Copy
  // method the copy runs under the freeze): three kills outlast the Job's retries (nodeBackoffLimit 2).
  async disturb(ctx) {
    const vms = ctx.env.vms.filter((v) => v.node === ctx.victimNode).map((v) => v.name);
    const { runner, double } = ctx.world;
    const kills = 1 + Math.floor(ctx.random() * 3);
    const delay = between(ctx.random, 0, 300);
    const killed = new Set<string>();
    while (!ctx.over() && killed.size < kills) {
      const pod = runner.runs.find(
        (r) =>
          r.namespace === ctx.env.namespace &&
          r.node === ctx.victimNode &&
          r.endedAt === undefined &&
          !killed.has(r.name),
      );
      const froze =
        pod &&
        double.calls.some(
          (c) =>
            c.op === "freeze" &&
            c.status === 200 &&
            c.namespace === ctx.env.namespace &&
            vms.includes(c.name) &&
            c.at >= pod.startedAt,
        );
      if (pod && froze) {
        await sleep(delay);
        killed.add(pod.name);
        if (runner.killPod(pod.namespace, pod.name))
          ctx.note(`agent pod ${pod.name} on ${ctx.victimNode} SIGKILLed ${delay} ms after it froze a VM`);
      }
      await sleep(20);
    }
    if (killed.size < kills)
      ctx.note(`${killed.size} of ${kills} kills landed: no more agents of ${ctx.victimNode} froze`);
  },
};

const concurrentRuns: Scenario = {
  name: "two-backups-and-a-restore",
  concurrent: true,
  disturb: () => Promise.resolve(),
};

export const SCENARIOS: readonly Scenario[] = [
  operatorKill,
  apiServerRestart,
  liveMigration,
  nodeNotReady,
  agentKill,
  concurrentRuns,
];
