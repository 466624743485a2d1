// The fedbackup binary's exit codes and messages: usage errors exit 2 and runtime errors 1, each with one
// line on stderr and never a stack trace. The first cases run the real entry (src/cli/main.ts) in a
// process of its own; the rest call the same dispatcher in-process.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { agentUsage } from "../../../src/cli/agent.js";
import { run, usage } from "../../../src/cli/commands.js";
import { digestUsage } from "../../../src/cli/digest.js";
import { operatorUsage } from "../../../src/cli/operator.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `fedbackup ARGV...` from source in a process of its own. */
function spawnCli(argv: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", path.join(REPO_ROOT, "src/cli/main.ts"), ...argv],
      // No cluster may be reached by accident: no kubeconfig, no in-cluster credentials.
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") return reject(new Error(err.message));
        resolve({ code: typeof err?.code === "number" ? err.code : 0, stdout, stderr });
      },
    );
  });
}

/** Runs `fedbackup ARGV...` in-process. */
async function runCli(argv: string[]): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/** One line on stderr, nothing on stdout, no stack trace. */
function assertOneLine(got: Outcome, code: number, message: RegExp): void {
  assert.equal(got.code, code, `exit code; stderr: ${got.stderr}`);
  assert.equal(got.stdout, "");
  assert.match(got.stderr, /^[^\n]+\n$/, `one line on stderr, got: ${got.stderr}`);
  assert.doesNotMatch(got.stderr, /\n\s+at /);
  assert.match(got.stderr, message);
}

describe("fedbackup command line", function () {
  describe("the real entry, in a process of its own", function () {
    // Each process loads the sources through tsx: seconds each on a busy machine.
    this.timeout(120_000);
    const cases: Array<{ argv: string[]; check(o: Outcome): void }> = [
      {
        argv: ["operator", "--bogus"],
        check: (o) =>
          assertOneLine(o, 2, /^fedbackup operator: Unknown option '--bogus' \(see 'fedbackup operator --help'\)$/m),
      },
      {
        argv: ["agent", "backup", "--bogus"],
        check: (o) => assertOneLine(o, 2, /^fedbackup agent backup: Unknown option '--bogus'/),
      },
      {
        argv: ["operator", "--concurrency", "x"],
        check: (o) => assertOneLine(o, 2, /^fedbackup operator: --concurrency: "x" is not a positive integer/),
      },
      {
        argv: ["operator", "--kubeconfig", "/nonexistent/kubeconfig"],
        check: (o) => assertOneLine(o, 1, /^fedbackup operator: ENOENT: .*\/nonexistent\/kubeconfig/),
      },
      {
        argv: ["help", "digest"],
        check: (o) => assert.deepEqual(o, { code: 0, stdout: digestUsage, stderr: "" }),
      },
      {
        argv: ["digest", "--help"],
        check: (o) => assert.deepEqual(o, { code: 0, stdout: digestUsage, stderr: "" }),
      },
    ];
    const outcomes = new Map<string, Outcome>();
    before(async () => {
      // All at once: the time of one start, not of six.
      const got = await Promise.all(cases.map((c) => spawnCli(c.argv)));
      cases.forEach((c, i) => outcomes.set(c.argv.join(" "), got[i]!));
    });
    for (const c of cases) {
      it(`fedbackup ${c.argv.join(" ")}`, () => c.check(outcomes.get(c.argv.join(" "))!));
    }
  });

  describe("usage errors exit 2 with one line naming the problem", () => {
    const cases: Array<{ argv: string[]; message: RegExp }> = [
      { argv: ["bogus"], message: /^fedbackup: unknown command "bogus" \(see 'fedbackup help'\)$/m },
      {
        argv: ["help", "bogus"],
        message: /^fedbackup help: no help for "bogus": the commands are operator, agent, digest/,
      },
      { argv: ["help", "digest", "operator"], message: /^fedbackup help: one command at most/ },
      { argv: ["operator", "extra"], message: /^fedbackup operator: Unexpected argument 'extra'/ },
      {
        argv: ["operator", "--namespace"],
        message: /^fedbackup operator: Option '--namespace <value>' argument missing/,
      },
      { argv: ["operator", "--concurrency=0"], message: /--concurrency: "0" is not a positive integer/ },
      { argv: ["operator", "--concurrency", "2.5"], message: /--concurrency: "2.5" is not a positive integer/ },
      { argv: ["operator", "--lease-duration", "60s"], message: /--lease-duration: "60s" is not a positive integer/ },
      { argv: ["operator", "--lease-duration=-5"], message: /--lease-duration: "-5" is not a positive integer/ },
      {
        argv: ["operator", "--metrics-bind-address", ":http"],
        message: /--metrics-bind-address: ":http" is not an address such as :8080/,
      },
      {
        argv: ["operator", "--health-bind-address", "65536"],
        message: /--health-bind-address: "65536" is not an address/,
      },
      { argv: ["agent"], message: /^fedbackup agent: a command is needed first: backup, restore or cleanup/ },
      { argv: ["agent", "--step", "a/b"], message: /^fedbackup agent: a command is needed first/ },
      { argv: ["agent", "verify"], message: /^fedbackup agent: unknown command "verify"/ },
      { argv: ["agent", "backup"], message: /^fedbackup agent backup: --step NAMESPACE\/NAME is required/ },
      { argv: ["agent", "restore", "--step", "vm-step"], message: /--step: "vm-step" is not NAMESPACE\/NAME/ },
      { argv: ["agent", "backup", "--step", "a/b/c"], message: /--step: "a\/b\/c" is not NAMESPACE\/NAME/ },
      {
        argv: ["agent", "restore", "--step=a/b", "--from-snapshot"],
        message: /--from-snapshot is not a flag of agent restore/,
      },
      { argv: ["agent", "cleanup", "--snapshots-path", "x"], message: /--backup-path is required/ },
      {
        argv: ["agent", "backup", "--step", "a/b", "now"],
        message: /^fedbackup agent backup: Unexpected argument 'now'/,
      },
      {
        argv: ["digest", "--bogus"],
        message: /^fedbackup digest: Unknown option '--bogus' \(see 'fedbackup digest --help'\)$/m,
      },
      {
        argv: ["digest", "--min-node-failures", "x"],
        message: /--min-node-failures: "x" is not a non-negative integer/,
      },
      { argv: ["digest", "--context"], message: /^fedbackup digest: Option '--context <value>' argument missing/ },
    ];
    for (const { argv, message } of cases) {
      it(`fedbackup ${argv.join(" ")}`, async () => assertOneLine(await runCli(argv), 2, message));
    }
  });

  describe("help", () => {
    const cases: Array<{ argv: string[]; text: string }> = [
      { argv: [], text: usage },
      { argv: ["help"], text: usage },
      { argv: ["--help"], text: usage },
      { argv: ["help", "operator"], text: operatorUsage },
      { argv: ["operator", "-h"], text: operatorUsage },
      { argv: ["help", "agent"], text: agentUsage },
      { argv: ["agent", "--help"], text: agentUsage },
      { argv: ["agent", "backup", "--help"], text: agentUsage },
      { argv: ["help", "digest"], text: digestUsage },
      { argv: ["digest", "-h"], text: digestUsage },
    ];
    for (const { argv, text } of cases) {
      it(`fedbackup ${argv.join(" ")}`.trimEnd(), async () =>
        assert.deepEqual(await runCli(argv), { code: 0, stdout: text, stderr: "" }),
      );
    }

    it("names every command and the exit codes", () => {
      for (const command of ["operator", "agent", "digest", "version", "help"])
        assert.match(usage, new RegExp(`^  ${command} `, "m"));
      assert.match(usage, /2 on bad arguments or flags/);
    });
  });

  it("exits 1 with one line when a command fails at run time", async () => {
    assertOneLine(
      await runCli(["agent", "backup", "--step", "ns/step", "--kubeconfig", "/nonexistent/kubeconfig"]),
      1,
      /^fedbackup agent: ENOENT: no such file or directory, open '\/nonexistent\/kubeconfig'$/m,
    );
  });

  it("agent restore takes --claims-root and --devices-root as backup does; cleanup refuses them", async () => {
    // Accepted: the run goes on to the kubeconfig.
    assertOneLine(
      await runCli([
        "agent",
        "restore",
        "--step=ns/step",
        "--claims-root=/claims",
        "--devices-root=/devices",
        "--kubeconfig=/nonexistent/kubeconfig",
      ]),
      1,
      /^fedbackup agent: ENOENT: no such file or directory, open '\/nonexistent\/kubeconfig'$/m,
    );
    assertOneLine(
      await runCli(["agent", "cleanup", "--backup-path=x", "--devices-root=/devices"]),
      2,
      /--devices-root is not a flag of agent cleanup/,
    );
  });
});
