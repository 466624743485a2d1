// Values of a run that cost a walk over all its steps and VMs (its storage keys, its agents' access) and
// change only when its steps do: kept per run, with the signature of the steps they were built from.
export class RunMemo<T> {
  private readonly seen = new Map<string, { signature: string; value: T }>();

  /** The value built for this run from steps of this signature, if it was. */
  cached(runUid: string, signature: string): T | undefined {
    const seen = this.seen.get(runUid);
    return seen?.signature === signature ? seen.value : undefined;
  }

  remember(runUid: string, signature: string, value: T): T {
    this.seen.set(runUid, { signature, value });
    return value;
  }

  /** The run ended or went away. */
  forget(runUid: string): void {
    this.seen.delete(runUid);
  }
}
