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

/** A ValidationError for field issues: the one issue as its message, or how many fields are invalid. */
export function invalidFields(issues: { path: string; message: string }[]): ValidationError {
  const [first] = issues;
  const message =
    issues.length === 1 && first ? `${first.path}: ${first.message}` : `${issues.length} fields are invalid`;
  return new ValidationError(message, issues);
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

/** What a conditional admin write expected and found instead. */
export type PreconditionFailure =
  /** A create found the record there already. */
  | { kind: "exists"; what: string }
  /** An update named a version of a record that does not exist. */
  | { kind: "missing"; what: string; version: number }
  /** An update named another version than the stored one. */
  | { kind: "stale"; what: string; version: number; stored: number }
  /** The record changed between the read and the conditional write. */
  | { kind: "changed"; what: string };

/** A conditional admin write found another version than the caller named. */
export class PreconditionFailedError extends JitrError {
  constructor(
    readonly failure: PreconditionFailure,
    options?: { cause?: unknown },
  ) {
    super(preconditionFailureMessage(failure), options);
    this.name = "PreconditionFailedError";
  }
}

function preconditionFailureMessage(failure: PreconditionFailure): string {
  switch (failure.kind) {
    case "exists":
      return `${failure.what} exists already; update it at its version instead`;
    case "missing":
      return `${failure.what} does not exist (expected version ${failure.version})`;
    case "stale":
      return `${failure.what} is at version ${failure.stored}, not ${failure.version}; read it again and retry`;
    case "changed":
      return `${failure.what} was changed by someone else meanwhile; read it again and retry`;
  }
}

/** An admin write named neither "create" nor the version it updates. */
export class PreconditionRequiredError extends JitrError {
  constructor(
    /** The record the write is about ("allowlist record dev-1"). */
    readonly what: string,
    options?: { cause?: unknown },
  ) {
    super(`writing ${what} needs a precondition: create it, or update it at the version read`, options);
    this.name = "PreconditionRequiredError";
  }
}

/** The request is well formed but refused in the resource's current state. */
export class StateConflictError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StateConflictError";
  }
}

/** A device cannot lose its allowlist record while a live certificate is bound to it: deprovision it first. */
export class DeviceBoundError extends StateConflictError {
  constructor(
    readonly deviceId: string,
    readonly certificateId: string,
    readonly certificateStatus: string,
  ) {
    super(
      `device ${deviceId} is bound to ${certificateStatus} certificate ${certificateId}; deprovision it first`,
    );
    this.name = "DeviceBoundError";
  }
}

/** A failure that may succeed when tried again (throttling, 5xx, a lost optimistic race). */
export class TransientError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransientError";
  }
}

/** The service refused a call because the account is over its rate quota; worth retrying more slowly. */
export class ThrottlingError extends TransientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ThrottlingError";
  }
}

/**
 * A write that failed in a way that leaves its outcome unknown (a 5xx or a lost response: it may have
 * been applied). Not transient: repeating a count could count twice.
 */
export class OutcomeUnknownError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OutcomeUnknownError";
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
