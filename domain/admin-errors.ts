import { JitrError } from "./errors.ts";

/** A conditional admin write found another version than the caller named (HTTP 412). */
export class PreconditionFailedError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PreconditionFailedError";
  }
}

/** An admin write named no version: `If-None-Match: *` to create, `If-Match: <version>` to update (HTTP 428). */
export class PreconditionRequiredError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PreconditionRequiredError";
  }
}

/** The request is well formed but refused in the resource's current state (HTTP 409). */
export class StateConflictError extends JitrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StateConflictError";
  }
}
