// What an invariant checker returns: one entry per broken rule, with enough detail to find it in the run.

export interface Violation {
  invariant: string;
  detail: string;
}

export const violation = (invariant: string, detail: string): Violation => ({ invariant, detail });
