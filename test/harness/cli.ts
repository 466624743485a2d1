// `make cluster` / `make cluster-down`: a local control plane that outlives the make command.
//   cli.ts up   --dir .cluster [--nodes 3]   start, write DIR/kubeconfig, then supervise until signalled
//   cli.ts down --dir .cluster               stop it and wait until every process is gone
// The `up` process is the parent of every control-plane process; they die with it (see processes.ts).
import { existsSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { ControlPlane, defaultNodes } from "./control-plane.js";
import { processAlive as alive } from "./processes.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { dir: { type: "string", default: ".cluster" }, nodes: { type: "string", default: "3" } },
});
const dir = path.resolve(values.dir);
const pidFile = path.join(dir, "supervisor.pid");

function supervisorPid(): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  return pid > 0 && alive(pid) ? pid : undefined;
}

function childPids(): number[] {
  const file = path.join(dir, "state", "pids");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .map((line) => Number(line.split(" ")[0]))
    .filter((pid) => pid > 0);
}

async function up(): Promise<void> {
  const running = supervisorPid();
  if (running) {
    console.log(`a local cluster is already running (pid ${running}); kubeconfig: ${path.join(dir, "kubeconfig")}`);
    return;
  }
  rmSync(path.join(dir, "state"), { recursive: true, force: true });
  mkdirSync(path.join(dir, "state"), { recursive: true });
  writeFileSync(pidFile, `${process.pid}\n`);
  const started = Date.now();
  const cp = await ControlPlane.start({
    dir: path.join(dir, "state"),
    nodes: defaultNodes(Number(values.nodes)),
    log: (m) => console.log(m),
  });
  copyFileSync(cp.kubeconfigPath, path.join(dir, "kubeconfig"));
  const binaries = Object.entries(cp.binaries).map(([name, b]) => `${name} (${b.source})`);
  console.log(`binaries: ${binaries.join(", ")}`);
  console.log(
    `cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s: kube-apiserver ${cp.serverVersion}, ${values.nodes} nodes`,
  );
  writeFileSync(path.join(dir, "ready"), `${cp.server}\n`);
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    void cp.stop().then(() => {
      rmSync(path.join(dir, "ready"), { force: true });
      rmSync(pidFile, { force: true });
      process.exit(0);
    });
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.on("SIGHUP", shutdown);
  // Stay alive; the control-plane processes are ours and die with us.
  setInterval(() => {}, 1 << 30);
}

async function down(): Promise<void> {
  const pid = supervisorPid();
  if (pid) process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (supervisorPid() || childPids().some(alive))) await sleep(100);
  for (const child of childPids().filter(alive)) process.kill(child, "SIGKILL");
  const left = childPids().filter(alive);
  rmSync(path.join(dir, "state"), { recursive: true, force: true });
  rmSync(path.join(dir, "kubeconfig"), { force: true });
  rmSync(path.join(dir, "ready"), { force: true });
  rmSync(pidFile, { force: true });
  if (left.length) throw new Error(`processes still running: ${left.join(", ")}`);
  console.log(pid ? "local cluster stopped" : "no local cluster was running");
}

const command = positionals[0];
if (command === "up") await up();
else if (command === "down") await down();
else {
  console.error("usage: cli.ts up|down [--dir DIR] [--nodes N]");
  process.exit(2);
}
