import middy, { type MiddlewareObj } from "@middy/core";
import type { APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { type ErrorBody, type ErrorCode, errorBody } from "../api/contract.ts";
import { Admin, type AdminDeps, MissingReferenceError } from "../domain/admin/index.ts";
import {
  AlreadyExistsError,
  ConflictError,
  DeviceBoundError,
  describeError,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
  StateConflictError,
  ValidationError,
} from "../domain/errors.ts";
import {
  type AdminEvent,
  type AdminRequest,
  type AdminRequestExtras,
  type AdminResponse,
  HttpError,
  json,
} from "./admin-http.ts";
import { route } from "./admin-routes.ts";

export {
  type AdminEvent,
  type AdminRequestExtras,
  type AdminResponse,
  HttpError,
  MAX_BODY_BYTES,
} from "./admin-http.ts";

/** Routes one admin API request to its use case and maps every error to a JSON response. */
export type AdminRouter = (event: AdminEvent, extras?: AdminRequestExtras) => Promise<AdminResponse>;

/** The deployed handler: the router with the body collected into a string. */
export type AdminHandler = (
  event: AdminEvent,
  context?: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

export interface AdminHandlerDeps {
  admin: AdminDeps;
  /** Where 5xx details go (the caller sees only "internal error"). */
  logError?: (message: string, details: Record<string, unknown>) => void;
}

type ErrorLog = NonNullable<AdminHandlerDeps["logError"]>;

/**
 * The error JSON of DESIGN section 8 and its status: a 4xx says what is wrong (in the words of HTTP
 * where the domain speaks of preconditions), a 5xx says only "internal error".
 */
export function errorResponse(error: unknown): { statusCode: number; body: ErrorBody } {
  const out = (statusCode: number, code: ErrorCode, message: string, details?: unknown) => ({
    statusCode,
    body: errorBody(code, message, details),
  });
  if (error instanceof HttpError) return out(error.statusCode, error.code, error.message);
  if (error instanceof ValidationError) {
    return out(400, "ValidationError", error.message, error.issues.length > 0 ? error.issues : undefined);
  }
  if (error instanceof NotFoundError) return out(404, "NotFound", error.message);
  if (error instanceof DeviceBoundError) {
    const { deviceId } = error;
    return out(
      409,
      "Conflict",
      `${error.message} (POST /devices/${deviceId}/deprovision, or jitr deprovision ${deviceId})`,
    );
  }
  if (error instanceof MissingReferenceError) return out(409, "Conflict", error.message, error.issues);
  if (
    error instanceof StateConflictError ||
    error instanceof ConflictError ||
    error instanceof AlreadyExistsError
  ) {
    return out(409, "Conflict", error.message);
  }
  if (error instanceof PreconditionFailedError)
    return out(412, "PreconditionFailed", preconditionFailed(error));
  if (error instanceof PreconditionRequiredError) {
    return out(
      428,
      "PreconditionRequired",
      `writing ${error.what} needs If-None-Match: * (to create it) or If-Match: <version> (to update it)`,
    );
  }
  return out(500, "InternalError", "internal error");
}

/** A failed precondition in the words of the headers that named it. */
function preconditionFailed({ failure, message }: PreconditionFailedError): string {
  switch (failure.kind) {
    case "exists":
      return `${failure.what} exists already (If-None-Match: *); update it with If-Match`;
    case "missing":
      return `${failure.what} does not exist (If-Match: ${failure.version})`;
    default:
      return message;
  }
}

/** Maps any error to its JSON response, in one place; a 5xx is logged with its details. */
const httpErrors = (logError: ErrorLog): MiddlewareObj<AdminRequest, AdminResponse> => ({
  onError: (request) => {
    const { statusCode, body } = errorResponse(request.error);
    if (statusCode >= 500) {
      const { event } = request.event;
      logError("admin request failed", {
        method: event.requestContext.http.method,
        path: event.rawPath,
        error: describeError(request.error),
      });
    }
    request.response = json(statusCode, body);
  },
});

/** Collects a streamed response (the export) into its body, for API Gateway. */
const collectLines = (): MiddlewareObj<AdminRequest, AdminResponse> => ({
  after: async (request) => {
    const response = request.response;
    if (response?.lines === undefined) return;
    const lines: string[] = [];
    for await (const line of response.lines) lines.push(`${line}\n`);
    request.response = { statusCode: response.statusCode, headers: response.headers, body: lines.join("") };
  },
});

/** The routes behind the error mapping, as one middy handler (no early timeout: API Gateway has its own). */
function composeAdmin(deps: AdminHandlerDeps) {
  const admin = new Admin(deps.admin);
  const logError: ErrorLog =
    deps.logError ?? ((message, details) => console.error(JSON.stringify({ message, ...details })));
  return middy<AdminRequest, AdminResponse>((request: AdminRequest) => route(admin, request), {
    timeoutEarlyInMillis: 0,
  }).use(httpErrors(logError));
}

/** The Lambda context of a request served outside Lambda (the local server, tests). */
function servedContext(event: AdminEvent): Context {
  const none = () => undefined;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: "jitr-admin",
    functionVersion: "$LATEST",
    invokedFunctionArn: "",
    memoryLimitInMB: "",
    awsRequestId: event.requestContext.requestId,
    logGroupName: "",
    logStreamName: "",
    getRemainingTimeInMillis: () => Number.MAX_SAFE_INTEGER,
    done: none,
    fail: none,
    succeed: none,
  };
}

/** Builds the admin router (shared by the deployed handler and the local server, which streams). */
export function makeAdminRouter(deps: AdminHandlerDeps): AdminRouter {
  const handler = composeAdmin(deps);
  return (event, extras = {}) => handler({ event, ...extras }, servedContext(event));
}

/** The deployed admin handler: routes the event, collecting a streamed body into the response. */
export function makeAdminHandler(deps: AdminHandlerDeps): AdminHandler {
  const handler = composeAdmin(deps).use(collectLines());
  return async (event, context = servedContext(event)) => {
    const { statusCode, headers, body } = await handler({ event }, context);
    return { statusCode, headers, ...(body !== undefined ? { body } : {}) };
  };
}
