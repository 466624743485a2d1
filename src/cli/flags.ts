// What every fedbackup command shares about its flags: they are parsed strictly, a bad one is a
// UsageError (one line on stderr, exit code 2) and numbers are checked before anything starts.
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Bad flags or arguments: the command prints one line naming the problem and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
  /** The command as the message names it ("agent backup"), when more precise than the top-level one. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

/** Where a command writes its output and its messages. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const stdio: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** The line printed for a UsageError of `command` ("operator", "agent backup", ...). */
export function usageErrorLine(command: string, message: string): string {
  const help = command === "help" ? "fedbackup help" : `fedbackup ${command.split(" ")[0]} --help`;
  return `fedbackup ${command}: ${message} (see '${help}')\n`;
}

/** The line printed for any other error: its message on one line, never a stack trace. */
export function errorLine(command: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return `fedbackup ${command}: ${message.replace(/\s*\n\s*/g, " ").trim() || "failed"}\n`;
}

/** node:util parseArgs (strict: unknown flags and stray arguments are errors), failing with a UsageError. */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS_")) throw err;
    throw new UsageError((err as Error).message.split("\n")[0]!);
  }
}

/** The value of a flag that takes a whole number, within [min, max]; anything else is a UsageError naming it. */
export function integerFlag(flag: string, text: string, bounds: { min?: number; max?: number } = {}): number {
  const { min = 0, max } = bounds;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isSafeInteger(value) && value >= min && (max === undefined || value <= max)) return value;
  const wanted =
    max !== undefined
      ? `an integer from ${min} to ${max}`
      : min === 0
        ? "a non-negative integer"
        : min === 1
          ? "a positive integer"
          : `an integer of at least ${min}`;
  throw new UsageError(`--${flag}: "${text}" is not ${wanted}`);
}
