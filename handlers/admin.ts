import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
} from "aws-lambda";
import { Admin, type AdminDeps, type Precondition } from "../domain/admin.ts";
import {
  PreconditionFailedError,
  PreconditionRequiredError,
  StateConflictError,
} from "../domain/admin-errors.ts";
import { formatOfContentType, type ImportMode, importAllowlist, linesOf } from "../domain/admin-import.ts";
import {
  AlreadyExistsError,
  ConflictError,
  describeError,
  JitrError,
  NotFoundError,
  ValidationError,
} from "../domain/errors.ts";

/** The largest request body accepted, the import excepted (streamed). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** An admin API event: HTTP API payload 2.0, with the IAM authorizer's identity when deployed. */
export type AdminEvent = APIGatewayProxyEventV2 | APIGatewayProxyEventV2WithIAMAuthorizer;

/** A response whose body is a string, or (export) lines streamed by the local server. */
export interface AdminResponse {
  statusCode: number;
  headers: Record<string, string>;
  body?: string;
  lines?: AsyncIterable<string>;
}

/** What the local server adds to an event: the import body as lines, read as they arrive. */
export interface AdminRequestExtras {
  lines?: AsyncIterable<string>;
}

/** Routes one admin API request to its use case and maps every error to a JSON response. */
export type AdminRouter = (event: AdminEvent, extras?: AdminRequestExtras) => Promise<AdminResponse>;

/** The deployed handler: the router with the body collected into a string. */
export type AdminHandler = (event: AdminEvent) => Promise<APIGatewayProxyStructuredResultV2>;

export interface AdminHandlerDeps {
  admin: AdminDeps;
  /** Where 5xx details go (the caller sees only "internal error"). */
  logError?: (message: string, details: Record<string, unknown>) => void;
}

/** An HTTP failure raised by the routing layer itself (401, 404 route, 405, 413). */
export class HttpError extends JitrError {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** The error JSON of DESIGN section 8 and its status; a 5xx says only "internal error". */
export function errorResponse(error: unknown): { statusCode: number; body: Record<string, unknown> } {
  const out = (statusCode: number, code: string, message: string, details?: unknown) => ({
    statusCode,
    body: { error: { code, message, ...(details === undefined ? {} : { details }) } },
  });
  if (error instanceof HttpError) return out(error.statusCode, error.code, error.message);
  if (error instanceof ValidationError) {
    return out(400, "ValidationError", error.message, error.issues.length > 0 ? error.issues : undefined);
  }
  if (error instanceof NotFoundError) return out(404, "NotFound", error.message);
  if (
    error instanceof StateConflictError ||
    error instanceof ConflictError ||
    error instanceof AlreadyExistsError
  ) {
    return out(409, "Conflict", error.message);
  }
  if (error instanceof PreconditionFailedError) return out(412, "PreconditionFailed", error.message);
  if (error instanceof PreconditionRequiredError) return out(428, "PreconditionRequired", error.message);
  return out(500, "InternalError", "internal error");
}

const json = (statusCode: number, value: unknown, headers: Record<string, string> = {}): AdminResponse => ({
  statusCode,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(value),
});

const etag = (version: number | undefined) => ({ etag: `"${version ?? 0}"` });

/** The caller's identity: the IAM principal deployed, the local server's identity locally. */
function actorOf(event: AdminEvent): string {
  const authorizer = (event.requestContext as { authorizer?: { iam?: { userArn?: unknown } } }).authorizer;
  const arn = authorizer?.iam?.userArn;
  if (typeof arn !== "string" || arn === "") throw new HttpError(401, "Unauthorized", "no caller identity");
  return arn;
}

/** `If-None-Match: *` (create) or `If-Match: <version>` (update); quotes and W/ are tolerated. */
export function preconditionOf(headers: Record<string, string | undefined>): Precondition {
  const ifMatch = headers["if-match"]?.trim();
  const ifNoneMatch = headers["if-none-match"]?.trim();
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new ValidationError("send either If-Match or If-None-Match, not both", [
      { path: "If-Match", message: "cannot be combined with If-None-Match" },
    ]);
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== "*") {
      throw new ValidationError("If-None-Match must be *", [{ path: "If-None-Match", message: "must be *" }]);
    }
    return { create: true };
  }
  if (ifMatch !== undefined) return { version: versionOf(ifMatch) };
  return undefined;
}

function versionOf(value: string): number {
  const bare = value.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  const version = Number(bare);
  if (!/^\d+$/.test(bare) || !Number.isSafeInteger(version)) {
    throw new ValidationError("If-Match must be a record version", [
      { path: "If-Match", message: "must be a version number (as in the ETag)" },
    ]);
  }
  return version;
}

function bodyText(event: AdminEvent): string {
  if (event.body === undefined || event.body === null) return "";
  const text = event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body;
  if (Buffer.byteLength(text, "utf8") > MAX_BODY_BYTES) {
    throw new HttpError(413, "PayloadTooLarge", `the body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  return text;
}

function jsonBody(event: AdminEvent): unknown {
  const text = bodyText(event);
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError("the body is not valid JSON", [{ path: "", message: "not valid JSON" }]);
  }
}

/** The path without the stage prefix, split into decoded segments. */
function segmentsOf(event: AdminEvent): string[] {
  let path = event.rawPath || event.requestContext.http.path;
  const stage = event.requestContext.stage;
  if (stage && stage !== "$default" && path.startsWith(`/${stage}/`)) path = path.slice(stage.length + 1);
  return path
    .split("/")
    .filter((s) => s !== "")
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new ValidationError("the path is not valid percent-encoding", [{ path: "path", message: s }]);
      }
    });
}

const notFound = () => new HttpError(404, "NotFound", "no such route");
const notAllowed = (allowed: string) => new HttpError(405, "MethodNotAllowed", `this route takes ${allowed}`);

/** Builds the admin router (shared by the deployed handler and the local server). */
export function makeAdminRouter(deps: AdminHandlerDeps): AdminRouter {
  const admin = new Admin(deps.admin);
  const logError =
    deps.logError ?? ((message, details) => console.error(JSON.stringify({ message, ...details })));

  async function route(event: AdminEvent, extras: AdminRequestExtras): Promise<AdminResponse> {
    const actor = actorOf(event);
    const method = event.requestContext.http.method.toUpperCase();
    const query = event.queryStringParameters ?? {};
    const headers = event.headers ?? {};
    const [collection, id, action, ...rest] = segmentsOf(event);
    if (rest.length > 0) throw notFound();

    switch (collection) {
      case "allowlist": {
        if (id === "import" && action === undefined) {
          if (method !== "POST") throw notAllowed("POST");
          const mode = query.mode ?? "best-effort";
          if (mode !== "best-effort" && mode !== "all-or-nothing") {
            throw new ValidationError("mode must be best-effort or all-or-nothing", [
              { path: "mode", message: "must be best-effort or all-or-nothing" },
            ]);
          }
          const format = query.format ?? formatOfContentType(headers["content-type"]);
          if (format !== undefined && format !== "jsonl" && format !== "csv") {
            throw new ValidationError("format must be jsonl or csv", [
              { path: "format", message: "must be jsonl or csv" },
            ]);
          }
          const lines =
            extras.lines ??
            linesOf(
              event.isBase64Encoded
                ? Buffer.from(event.body ?? "", "base64").toString("utf8")
                : (event.body ?? ""),
            );
          const report = await importAllowlist(deps.admin, actor, lines, {
            mode: mode as ImportMode,
            ...(format !== undefined ? { format } : {}),
          });
          if (mode === "all-or-nothing" && report.rejectedCount > 0) {
            return json(400, {
              error: {
                code: "ImportRejected",
                message: `${report.rejectedCount} line(s) are invalid; nothing was written`,
                details: report,
              },
            });
          }
          return json(200, report);
        }
        if (id === "export" && action === undefined) {
          if (method !== "GET") throw notAllowed("GET");
          return {
            statusCode: 200,
            headers: { "content-type": "application/x-ndjson" },
            lines: admin.allowlist.export(),
          };
        }
        if (action !== undefined) throw notFound();
        if (id === undefined) {
          if (method !== "GET") throw notAllowed("GET");
          return json(200, await admin.allowlist.list(query));
        }
        if (method === "GET") {
          const record = await admin.allowlist.get(id);
          return json(200, record, etag(record.version));
        }
        if (method === "PUT") {
          const written = await admin.allowlist.put(actor, id, jsonBody(event), preconditionOf(headers));
          return json(written.created ? 201 : 200, written.value, etag(written.value.version));
        }
        if (method === "DELETE") {
          const precondition = preconditionOf(headers);
          await admin.allowlist.remove(
            actor,
            id,
            precondition && "version" in precondition ? precondition.version : undefined,
          );
          return { statusCode: 204, headers: {} };
        }
        throw notAllowed("GET, PUT, DELETE");
      }
      case "mappings": {
        if (action !== undefined) throw notFound();
        if (id === undefined) {
          if (method !== "GET") throw notAllowed("GET");
          return json(200, await admin.mappings.list(query));
        }
        if (method === "GET") {
          const mapping = await admin.mappings.get(id);
          return json(200, mapping, etag(mapping.version));
        }
        if (method === "PUT") {
          if (query.dryRun === "true") return json(200, await admin.mappings.whatIf(id, jsonBody(event)));
          const written = await admin.mappings.put(actor, id, jsonBody(event), preconditionOf(headers));
          return json(written.created ? 201 : 200, written.value, etag(written.value.version));
        }
        if (method === "DELETE") {
          const precondition = preconditionOf(headers);
          await admin.mappings.remove(
            actor,
            id,
            precondition && "version" in precondition ? precondition.version : undefined,
          );
          return { statusCode: 204, headers: {} };
        }
        throw notAllowed("GET, PUT, DELETE");
      }
      case "lots": {
        if (action !== undefined) throw notFound();
        if (id === undefined) {
          if (method !== "GET") throw notAllowed("GET");
          return json(200, await admin.lots.list(query));
        }
        if (method === "GET") {
          const lot = await admin.lots.get(id);
          return json(200, lot, etag(lot.version));
        }
        if (method === "PUT") {
          const written = await admin.lots.put(actor, id, jsonBody(event), preconditionOf(headers));
          return json(written.created ? 201 : 200, written.value, etag(written.value.version));
        }
        throw notAllowed("GET, PUT");
      }
      case "explain": {
        if (id !== undefined) throw notFound();
        if (method !== "POST") throw notAllowed("POST");
        return json(200, await admin.devices.explain(jsonBody(event)));
      }
      case "devices": {
        if (id === undefined || action === undefined) throw notFound();
        if (action === "history") {
          if (method !== "GET") throw notAllowed("GET");
          return json(200, await admin.devices.history(id, query));
        }
        if (method !== "POST") {
          if (action === "approve" || action === "deprovision") throw notAllowed("POST");
          throw notFound();
        }
        if (action === "approve") return json(200, await admin.devices.approve(actor, id));
        if (action === "deprovision") return json(200, await admin.devices.deprovision(actor, id));
        throw notFound();
      }
      default:
        throw notFound();
    }
  }

  return async (event, extras = {}) => {
    try {
      return await route(event, extras);
    } catch (error) {
      const { statusCode, body } = errorResponse(error);
      if (statusCode >= 500) {
        logError("admin request failed", {
          method: event.requestContext.http.method,
          path: event.rawPath,
          error: describeError(error),
        });
      }
      return json(statusCode, body);
    }
  };
}

/** The deployed admin handler: routes the event, collecting a streamed body into the response. */
export function makeAdminHandler(deps: AdminHandlerDeps): AdminHandler {
  const router = makeAdminRouter(deps);
  return async (event) => {
    const response = await router(event);
    if (response.lines === undefined) {
      return {
        statusCode: response.statusCode,
        headers: response.headers,
        ...(response.body !== undefined ? { body: response.body } : {}),
      };
    }
    const lines: string[] = [];
    try {
      for await (const line of response.lines) lines.push(line);
    } catch (error) {
      const failed = errorResponse(error);
      return {
        statusCode: failed.statusCode,
        headers: { "content-type": "application/json" },
        body: JSON.stringify(failed.body),
      };
    }
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body: lines.map((l) => `${l}\n`).join(""),
    };
  };
}
