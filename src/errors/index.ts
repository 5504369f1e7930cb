// The error catalogue: every failure Ambit reports has a class here or in its folder, each with a
// stable `code` (AMBIT_ERR_<AREA>_<WHAT>) that tests and callers match on, never the message.

export class AmbitError extends Error {
  readonly code: string;
  /** Extra structured detail for machine readers (a field path, a resource name). */
  readonly detail: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    options?: { cause?: unknown; detail?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AmbitError';
    this.code = code;
    this.detail = options?.detail;
  }
}

/** True when `err` is an AmbitError with the given code. */
export function hasCode(err: unknown, code: string): err is AmbitError {
  return err instanceof AmbitError && err.code === code;
}

/** A short, human-readable line for any thrown value, with the code when it has one. */
export function describeError(err: unknown): string {
  if (err instanceof AmbitError) return `${err.message} (${err.code})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
