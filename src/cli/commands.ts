// The commands of the fedbackup binary and how each is run: usage errors exit 2 and runtime errors 1,
// each with one line on stderr.
import { VERSION } from "../version.js";
import { agentUsage, runAgent } from "./agent.js";
import { digestUsage, runDigest } from "./digest.js";
import { operatorUsage, runOperator } from "./operator.js";
import { errorLine, stdio, usageErrorLine, UsageError, type Io } from "./flags.js";

interface Command {
  summary: string;
  usage: string;
  run: (argv: string[], io: Io) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  operator: {
    summary: "run the operator (controllers for FederatedBackup, WorkloadRestore and their node steps)",
    usage: operatorUsage,
    run: runOperator,
  },
  agent: {
    summary: "run a node step (inside the Jobs the operator creates)",
    usage: agentUsage,
    run: runAgent,
  },
  digest: {
    summary: "list every VM with its node, phase and last backup and restore",
    usage: digestUsage,
    run: (argv, io) => runDigest(argv, io.out, io.err),
  },
};

export const usage = `fedbackup ${VERSION}: back up and restore KubeVirt VMs on a shared volume, node by node

Usage: fedbackup <command> [flags]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join("\n")}
  version    print the version
  help       print this help, or a command's help: fedbackup help <command> (also fedbackup <command> --help)

Exit codes: 0 on success, 1 when a command fails, 2 on bad arguments or flags.
`;

/** Runs `fedbackup ARGV...`; resolves to the exit code. Never throws, never prints a stack trace. */
export async function run(argv: readonly string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  let label = name ?? "";
  try {
    switch (name) {
      case "version":
      case "--version":
        io.out(`${VERSION}\n`);
        return 0;
      case undefined:
      case "--help":
      case "-h":
        io.out(usage);
        return 0;
      case "help": {
        label = "help";
        const [topic, ...extra] = rest;
        if (extra.length > 0) throw new UsageError(`one command at most, not "${rest.join(" ")}"`);
        if (topic === undefined) {
          io.out(usage);
          return 0;
        }
        const command = Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
        if (!command)
          throw new UsageError(`no help for "${topic}": the commands are ${Object.keys(COMMANDS).join(", ")}`);
        io.out(command.usage);
        return 0;
      }
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) {
      io.err(`fedbackup: unknown command "${name}" (see 'fedbackup help')\n`);
      return 2;
    }
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(usageErrorLine(err.command ?? label, err.message));
      return 2;
    }
    io.err(errorLine(label, err));
    return 1;
  }
}
