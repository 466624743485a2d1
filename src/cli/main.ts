#!/usr/bin/env node
// The one fedbackup binary: `fedbackup <command>` (see commands.ts).
import { run } from "./commands.js";

process.exitCode = await run(process.argv.slice(2));
