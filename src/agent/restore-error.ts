// Why a VM was not restored, as the agent reports it (NodeRestore status.results[].reason): the errors
// restore.ts and restore-claims.ts throw for one VM, so that one VM's refusal does not stop the others.
export type RestoreErrorReason =
  | "ChecksumMismatch"
  | "MissingFile"
  | "SizeMismatch"
  | "InvalidManifest"
  /** The manifest lists a file or a claim disk that is not among those the VM may be restored to. */
  | "ForeignFile"
  /** A backup file or a target is not a plain file below plain directories (see safe-fs.ts), or not a device. */
  | "UnsafeFile"
  /** A claim disk of the backup has another volume mode than the claim the VM names now: nothing was written. */
  | "VolumeModeMismatch"
  /**
   * The VM's captured definition (asked for with reportDefinition) does not match its manifest (size,
   * sha256) or is not a definition: nothing was written.
   */
  | "DefinitionCorrupt"
  /** A Block-mode claim's device is smaller than the device in the backup: nothing was written. */
  | "ClaimTooSmall"
  /**
   * Writing a Block-mode claim's device, or reading it back, failed after it had begun: the device holds
   * neither what it did nor the backup. The VM's files were not swapped.
   */
  | "ClaimPartlyWritten";

/** A restore of one VM refused or failed; unless the reason is ClaimPartlyWritten, nothing was written. */
export class RestoreError extends Error {
  override readonly name = "RestoreError";
  constructor(
    readonly reason: RestoreErrorReason,
    message: string,
    /**
     * The file concerned: relative to the shared volume root for a file, `<claim>/disk.img` for a
     * Filesystem-mode claim's disk, the claim's name for a Block-mode claim's device.
     */
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
