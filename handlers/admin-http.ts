import type { APIGatewayProxyEventV2, APIGatewayProxyEventV2WithIAMAuthorizer } from "aws-lambda";
import {
  CONTENT_TYPES,
  type ErrorCode,
  etagOf,
  HEADERS,
  IMPORT_LIMITS,
  versionOfTag,
} from "../api/contract.ts";
import {
  type AllowlistQuery,
  type ImportFormat,
  ImportLimitError,
  type ImportOptions,
  type Issue,
  isLotName,
  LOT_NAME_RULE,
  type MappingSaveOptions,
  type Precondition,
  RECONCILE_LIMITS,
  type ReconcileOptions,
} from "../domain/admin/index.ts";
import { invalidFields, JitrError, ValidationError } from "../domain/errors.ts";
import type { PageRequest } from "../domain/ports.ts";

/*
 * The HTTP side of the admin API: the request and response shapes, and reading what a request says
 * (path, caller, preconditions, query parameters, body) into the typed requests the use cases take.
 */

/** The largest request body accepted, the import excepted (see IMPORT_LIMITS). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** An admin API event: HTTP API payload 2.0, with the IAM authorizer's identity when deployed. */
export type AdminEvent = APIGatewayProxyEventV2 | APIGatewayProxyEventV2WithIAMAuthorizer;

/** What the local server adds to an event: the import body as lines, read as they arrive. */
export interface AdminRequestExtras {
  lines?: AsyncIterable<string>;
}

/** One admin request: the event, and the import body as lines when the local server streams it. */
export interface AdminRequest extends AdminRequestExtras {
  event: AdminEvent;
}

/** A response whose body is a string, or (export) lines streamed by the local server. */
export interface AdminResponse {
  statusCode: number;
  headers: Record<string, string>;
  body?: string;
  lines?: AsyncIterable<string>;
}

/** An HTTP failure raised by the HTTP layer itself (401, 404 route, 405, 413). */
export class HttpError extends JitrError {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** A JSON response. */
export const json = (
  statusCode: number,
  value: unknown,
  headers: Record<string, string> = {},
): AdminResponse => ({
  statusCode,
  headers: { [HEADERS.contentType]: CONTENT_TYPES.json, ...headers },
  body: JSON.stringify(value),
});

/** The caller's identity: the IAM principal deployed, the local server's identity locally. */
export function actorOf(event: AdminEvent): string {
  const authorizer = (event.requestContext as { authorizer?: { iam?: { userArn?: unknown } } }).authorizer;
  const arn = authorizer?.iam?.userArn;
  if (typeof arn !== "string" || arn === "") throw new HttpError(401, "Unauthorized", "no caller identity");
  return arn;
}

/** The path without the stage prefix, split into decoded segments. */
export function segmentsOf(event: AdminEvent): string[] {
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

/** `If-None-Match: *` (create) or `If-Match: <version>` (update); quotes and W/ are tolerated. */
export function preconditionOf(headers: Record<string, string | undefined>): Precondition {
  const ifMatch = headers[HEADERS.ifMatch]?.trim();
  const ifNoneMatch = headers[HEADERS.ifNoneMatch]?.trim();
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

/** The version a delete names with `If-Match`, if it names one. */
export function deleteVersionOf(headers: Record<string, string | undefined>): number | undefined {
  const precondition = preconditionOf(headers);
  return precondition !== undefined && "version" in precondition ? precondition.version : undefined;
}

function versionOf(value: string): number {
  const version = versionOfTag(value);
  if (version === undefined) {
    throw new ValidationError("If-Match must be a record version", [
      { path: "If-Match", message: "must be a version number (as in the ETag)" },
    ]);
  }
  return version;
}

/** The ETag of a record's version. */
export const etag = (version: number | undefined) => ({ [HEADERS.etag]: etagOf(version) });

type Query = Record<string, string | undefined>;

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** `limit` (1..1000, default 100) and `cursor` of a listing. */
export function pageOf(query: Query): PageRequest {
  let limit = DEFAULT_LIMIT;
  if (query.limit !== undefined) {
    // decimal digits only: Number() would also read 0x10, 1e2 and surrounding blanks
    const n = /^\d{1,4}$/.test(query.limit) ? Number(query.limit) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
      throw invalidFields([{ path: "limit", message: `must be a whole number from 1 to ${MAX_LIMIT}` }]);
    }
    limit = n;
  }
  return query.cursor === undefined || query.cursor === "" ? { limit } : { limit, cursor: query.cursor };
}

/** One reconcile slice's query: `dryRun=true|false`, `limit` (1..100, default 20) and `cursor`. */
export function reconcileQueryOf(query: Query): ReconcileOptions {
  const issues: Issue[] = [];
  const { dryRun, limit, cursor } = query;
  if (dryRun !== undefined && dryRun !== "true" && dryRun !== "false") {
    issues.push({ path: "dryRun", message: "must be true or false" });
  }
  const n = limit === undefined ? RECONCILE_LIMITS.default : Number(limit);
  if (!/^\d{1,3}$/.test(limit ?? "1") || n < 1 || n > RECONCILE_LIMITS.max) {
    issues.push({ path: "limit", message: `must be a whole number from 1 to ${RECONCILE_LIMITS.max}` });
  }
  if (issues.length > 0) throw invalidFields(issues);
  return {
    dryRun: dryRun === "true",
    limit: n,
    ...(cursor !== undefined && cursor !== "" ? { cursor } : {}),
  };
}

/** The `status` and `lot` filters of an allowlist listing. */
export function allowlistQueryOf(query: Query): AllowlistQuery {
  const issues: Issue[] = [];
  const { status, lot } = query;
  if (status !== undefined && status !== "allowed" && status !== "blocked") {
    issues.push({ path: "status", message: "must be allowed or blocked" });
  }
  if (lot !== undefined && !isLotName(lot)) {
    issues.push({ path: "lot", message: `must be a lot name (${LOT_NAME_RULE})` });
  }
  if (issues.length > 0) throw invalidFields(issues);
  return {
    ...(status === "allowed" || status === "blocked" ? { status } : {}),
    ...(lot !== undefined ? { lot } : {}),
  };
}

/** An import's `mode`, `format` (the query's, or the Content-Type's; otherwise sniffed) and `dryRun`. */
export function importOptionsOf(query: Query, headers: Record<string, string | undefined>): ImportOptions {
  const mode = query.mode ?? "best-effort";
  if (mode !== "best-effort" && mode !== "all-or-nothing") {
    throw new ValidationError("mode must be best-effort or all-or-nothing", [
      { path: "mode", message: "must be best-effort or all-or-nothing" },
    ]);
  }
  const dryRun = query.dryRun ?? "false";
  if (dryRun !== "true" && dryRun !== "false") {
    throw new ValidationError("dryRun must be true or false", [
      { path: "dryRun", message: "must be true or false" },
    ]);
  }
  const format = query.format ?? formatOfContentType(headers[HEADERS.contentType]);
  if (format !== undefined && format !== "jsonl" && format !== "csv") {
    throw new ValidationError("format must be jsonl or csv", [
      { path: "format", message: "must be jsonl or csv" },
    ]);
  }
  return {
    mode,
    ...(format !== undefined ? { format } : {}),
    ...(dryRun === "true" ? { dryRun: true } : {}),
  };
}

/** A mapping save's overrides: `force=true` (missing references) and `allowBroadPolicy=true` (a broad inline policy). */
export function mappingSaveOptionsOf(query: Query): MappingSaveOptions {
  const flag = (name: "force" | "allowBroadPolicy"): boolean => {
    const value = query[name] ?? "false";
    if (value !== "true" && value !== "false")
      throw invalidFields([{ path: name, message: "must be true or false" }]);
    return value === "true";
  };
  const force = flag("force");
  const allowBroadPolicy = flag("allowBroadPolicy");
  return { ...(force ? { force } : {}), ...(allowBroadPolicy ? { allowBroadPolicy } : {}) };
}

/** The import format a Content-Type names, or undefined (then sniffed). */
export function formatOfContentType(contentType: string | undefined): ImportFormat | undefined {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  if (type === undefined) return undefined;
  if (type === CONTENT_TYPES.csv || type === "application/csv") return "csv";
  if (
    [
      CONTENT_TYPES.jsonLines,
      "application/jsonl",
      "application/x-jsonlines",
      "application/json-lines",
    ].includes(type)
  ) {
    return "jsonl";
  }
  return undefined;
}

/** The body as text (base64 decoded); 413 over {@link MAX_BODY_BYTES}. */
function bodyText(event: AdminEvent): string {
  if (event.body === undefined || event.body === null) return "";
  const text = event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body;
  if (Buffer.byteLength(text, "utf8") > MAX_BODY_BYTES) {
    throw new HttpError(413, "PayloadTooLarge", `the body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  return text;
}

/** The body parsed as JSON (an empty body is `{}`). */
export function jsonBody(event: AdminEvent): unknown {
  const text = bodyText(event);
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError("the body is not valid JSON", [{ path: "", message: "not valid JSON" }]);
  }
}

/**
 * An import body as lines: streamed by the local server (which bounds it), or split from the whole body
 * the deployed HTTP API hands over: 413 over {@link IMPORT_LIMITS}`.bodyBytes` before a line is read, and
 * a line over `lineBytes` stops the import there.
 */
export function importLinesOf(request: AdminRequest): AsyncIterable<string> {
  if (request.lines !== undefined) return request.lines;
  const { event } = request;
  const body = Buffer.from(event.body ?? "", event.isBase64Encoded ? "base64" : "utf8");
  if (body.length > IMPORT_LIMITS.bodyBytes) {
    throw new HttpError(
      413,
      "PayloadTooLarge",
      `the import body is larger than ${IMPORT_LIMITS.bodyBytes} bytes; nothing was imported: split the file`,
    );
  }
  return linesOf([body], { lineBytes: IMPORT_LIMITS.lineBytes, bodyBytes: IMPORT_LIMITS.bodyBytes });
}

/** The most bytes one line, and the whole body, may hold. */
export interface LineLimits {
  lineBytes: number;
  bodyBytes: number;
}

/**
 * Splits a body, arriving in chunks, into UTF-8 lines on `\n`, holding at most one line's bytes: a line
 * longer than `limits.lineBytes`, or a body longer than `limits.bodyBytes`, throws ImportLimitError naming
 * the line (1-based) that broke it, before another byte is read; every line before it has been yielded.
 */
export async function* linesOf(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  limits: LineLimits,
): AsyncGenerator<string> {
  let parts: Uint8Array[] = [];
  let lineBytes = 0;
  let bodyBytes = 0;
  let line = 1;
  const tooLong = () =>
    new ImportLimitError(
      "line",
      line,
      `line ${line} is longer than ${limits.lineBytes} bytes (an allowlist record is far smaller); the import stopped there`,
    );
  for await (const chunk of chunks) {
    // Only the bytes within the body limit are split; lines wholly inside it are still yielded.
    const room = limits.bodyBytes - bodyBytes;
    const bytes = chunk.length > room ? chunk.subarray(0, room) : chunk;
    bodyBytes += bytes.length;
    let start = 0;
    while (start < bytes.length) {
      const newline = bytes.indexOf(10, start);
      const end = newline < 0 ? bytes.length : newline;
      lineBytes += end - start;
      if (lineBytes > limits.lineBytes) throw tooLong();
      parts.push(bytes.subarray(start, end));
      if (newline < 0) break;
      yield Buffer.concat(parts).toString("utf8");
      parts = [];
      lineBytes = 0;
      line += 1;
      start = newline + 1;
    }
    if (chunk.length > room) {
      throw new ImportLimitError(
        "body",
        line,
        `the import body is larger than ${limits.bodyBytes} bytes; the import stopped at line ${line}`,
      );
    }
  }
  if (lineBytes > 0) yield Buffer.concat(parts).toString("utf8");
}

/** A `true`/`false` query flag (default false); ValidationError for any other value. */
export function flagOf(query: Query, name: string): boolean {
  const value = query[name] ?? "false";
  if (value !== "true" && value !== "false") {
    throw new ValidationError(`${name} must be true or false`, [
      { path: name, message: "must be true or false" },
    ]);
  }
  return value === "true";
}
