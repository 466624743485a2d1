// How the S3 client's errors are told apart: by their name (the S3 error code) or the HTTP status the
// SDK attaches, since S3-compatible stores do not all send the same code for the same thing.

interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status of a failed request, when the store answered. */
export function httpStatusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The S3 error code (NoSuchKey, SignatureDoesNotMatch, ...), or the SDK's error name. */
export function s3CodeOf(err: unknown): string | undefined {
  const e = err as SdkError | undefined;
  return e?.Code ?? e?.name;
}

/** A key (or bucket) that is not there: 404, whatever the code (HEAD answers carry none). */
export function isNotFound(err: unknown): boolean {
  const code = s3CodeOf(err);
  return httpStatusOf(err) === 404 || code === "NoSuchKey" || code === "NotFound";
}
