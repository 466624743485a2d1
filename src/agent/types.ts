// Small types shared by the agent's modules. The agent gets its clock and logger injected so that tests
// can run it with fakes and the CLI can hand it the process-wide winston logger.

/** One VirtualMachineInstance (same name as its VirtualMachine). */
export interface VmRef {
  namespace: string;
  name: string;
}

export const vmKey = (vm: VmRef): string => `${vm.namespace}/${vm.name}`;

/** Milliseconds since the epoch; Date.now in production. */
export interface Clock {
  now(): number;
}

/** The subset of a winston logger the agent uses (a winston Logger satisfies it). */
export interface AgentLog {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
}

/** A logger that drops everything, for callers that do not pass one. */
export const silentLog: AgentLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
