#!/usr/bin/env node
// The one fedbackup binary: `fedbackup <command>`. Commands are added as they are built.
import { VERSION } from "../version.js";

const usage = `fedbackup ${VERSION}: back up and restore KubeVirt VMs on a shared volume, node by node

Usage: fedbackup <command>

Commands:
  version    print the version
  help       print this help
`;

export function main(argv: string[]): Promise<number> | number {
  const [command] = argv;
  switch (command) {
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
