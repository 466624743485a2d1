/** An error answered by the API server (or the transport on the way to it). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/**
 * Whether trying again later may succeed: conflicts, throttling, server errors, timeouts and transport
 * failures (status 0). A 4xx that names something wrong with the request (400, 403, 404 on a create,
 * 422) does not get better by itself; callers decide what a 404 means for them.
 */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof ApiError)) return true;
  return err.status === 0 || err.status === 409 || err.status === 429 || err.status >= 500;
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
export const isForbidden = (err: unknown): boolean => err instanceof ApiError && err.status === 403;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.status === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof ApiError && err.status === 409 && err.reason === "AlreadyExists";
