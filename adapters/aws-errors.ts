import { ConflictError, JitrError, TransientError } from "../domain/errors.ts";

/**
 * Reading AWS SDK v3 errors without depending on a particular client's exception classes.
 * Service exceptions carry `name`, `$metadata` (with `httpStatusCode`) and sometimes `$retryable`;
 * errors raised before a response arrives (DNS, connection reset, timeouts) carry no `$metadata`.
 */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null;

/** The error's `name` (e.g. "ResourceNotFoundException"), or "" when it has none. */
export const errorName = (error: unknown): string =>
  isRecord(error) && typeof error.name === "string" ? error.name : "";

/** The HTTP status of the failed response, when there was one. */
export const httpStatusOf = (error: unknown): number | undefined => {
  if (!isRecord(error) || !isRecord(error.$metadata)) return undefined;
  const status = error.$metadata.httpStatusCode;
  return typeof status === "number" ? status : undefined;
};

/** True when the SDK marked the error retryable (`$retryable` set). */
export const isMarkedRetryable = (error: unknown): boolean =>
  isRecord(error) &&
  error.$retryable !== undefined &&
  error.$retryable !== null &&
  error.$retryable !== false;

/**
 * True when the error never reached the service or came back without a response: no `$metadata`, or
 * `$metadata` without an HTTP status on an error that is no service exception (no `$fault`): the SDK adds
 * `attempts` to a connection reset or socket timeout.
 */
export const isNetworkError = (error: unknown): boolean =>
  isRecord(error) &&
  (!isRecord(error.$metadata) ||
    (error.$metadata.httpStatusCode === undefined && error.$fault === undefined));

/**
 * True when trying again may help: a name in `transientNames`, `$retryable`, HTTP 5xx or 429,
 * or a network-level failure (no `$metadata`).
 */
export const isTransientAwsError = (error: unknown, transientNames: ReadonlySet<string>): boolean => {
  if (transientNames.has(errorName(error))) return true;
  if (isMarkedRetryable(error)) return true;
  const status = httpStatusOf(error);
  if (status !== undefined) return status >= 500 || status === 429;
  return isNetworkError(error);
};

const MAX_DETAIL = 200;

/** "Name: message" of the underlying error, shortened; for the wrapping error's message. */
export const errorDetail = (error: unknown): string => {
  const name = errorName(error) || "Error";
  const message = isRecord(error) && typeof error.message === "string" ? error.message : String(error);
  const detail = message ? `${name}: ${message}` : name;
  return detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}…` : detail;
};

const TRANSIENT_DYNAMO_ERRORS: ReadonlySet<string> = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "InternalServerError",
  "RequestLimitExceeded",
  "TransactionConflictException",
]);

/**
 * Maps an error from the DynamoDB client to the service's errors: throttling, capacity, 5xx and
 * network failures become TransientError; a ConditionalCheckFailedException that reaches here
 * becomes ConflictError; anything else JitrError. `operation` is the DynamoDB API name and
 * `resource` names the table and key. An error that already is a JitrError is returned as it is.
 */
export function mapDynamoError(error: unknown, operation: string, resource: string): JitrError {
  if (error instanceof JitrError) return error;
  const message = `DynamoDB ${operation} failed for ${resource}: ${errorDetail(error)}`;
  if (errorName(error) === "ConditionalCheckFailedException")
    return new ConflictError(message, { cause: error });
  if (isTransientAwsError(error, TRANSIENT_DYNAMO_ERRORS))
    return new TransientError(message, { cause: error });
  return new JitrError(message, { cause: error });
}
