/** Base of every error the service raises on purpose. */
export class JitrError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "JitrError";
  }
}

/** Input that can never be processed (a malformed event, a bad record); retrying cannot fix it. */
export class ValidationError extends JitrError {
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ValidationError";
  }
}

/** A configuration variable is missing or invalid. */
export class ConfigurationError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConfigurationError";
  }
}

/** A resource named by a call does not exist. */
export class NotFoundError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NotFoundError";
  }
}

/** A resource to be created already exists (with another configuration). */
export class AlreadyExistsError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AlreadyExistsError";
  }
}

/** A conditional write lost a race. */
export class ConflictError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConflictError";
  }
}

/** A failure that may succeed when tried again (throttling, 5xx, a lost optimistic race). */
export class TransientError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransientError";
  }
}

/** A provisioning step failed for good; what the run created was undone. */
export class ProvisioningError extends JitrError {
  constructor(
    message: string,
    readonly step: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ProvisioningError";
  }
}

/** True when the error is worth retrying. */
export const isTransient = (error: unknown): boolean => error instanceof TransientError;

/** A short, secret-free description of an error for logs and the ledger. */
export const describeError = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);
