#!/usr/bin/env node
// The one fedbackup binary: `fedbackup <command>`. Commands are added as they are built.
import { VERSION } from "../version.js";
import { runAgent } from "./agent.js";
import { runDigest } from "./digest.js";
import { runOperator } from "./operator.js";

const usage = `fedbackup ${VERSION}: back up and restore KubeVirt VMs on a shared volume, node by node

Usage: fedbackup <command>

Commands:
  operator   run the operator (controllers for FederatedBackup and its node steps)
  agent      run a node step (inside the Jobs the operator creates)
  digest     list every VM with its node, phase and last backup and restore (fedbackup digest --help)
  version    print the version
  help       print this help
`;

export function main(argv: string[]): Promise<number> | number {
  const [command] = argv;
  switch (command) {
    case "agent":
      return runAgent(argv.slice(1));
    case "digest":
      return runDigest(argv.slice(1));
    case "operator":
      return runOperator(argv.slice(1));
    case "version":
    case "--version":
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return 0;
    default:
      process.stderr.write(`fedbackup: unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
