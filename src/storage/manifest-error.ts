// The error every reader of a backup location throws for a manifest that is missing or does not check.
export type ManifestErrorCode = "NotFound" | "Invalid";

export class ManifestError extends Error {
  override readonly name = "ManifestError";
  constructor(
    readonly code: ManifestErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
