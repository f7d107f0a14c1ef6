/*
 * The admin API as both sides see it: routes, headers, query parameters, the error body and the types of
 * requests and answers. Pure types and small pure functions only (no Node module), so the server, the CLI
 * and a browser console share one definition. The record types are the domain's own (type-only imports).
 */
import type {
  AllowlistQuery as AllowlistFilter,
  Approval,
  BlockMode,
  CutOff,
  Deprovisioned,
  DeviceReconciliation,
  ExplainRequest,
  Explanation,
  ImportFormat,
  ImportMode,
  ImportOutcome,
  ImportReport,
  MappingWarning,
  MappingWhatIf,
  ProvisionResult,
  ReconcileSlice,
  RecordWarning,
  Written,
} from "../domain/admin/index.ts";
import type {
  ImportJobParams,
  Job,
  JobView,
  RestoreJobParams,
  RestoreReport,
  SignedUrl,
  UploadTicket,
} from "../domain/jobs/index.ts";
import type { Page } from "../domain/ports.ts";
import { ALLOWLIST_SERVICE_FIELDS, LOT_SERVICE_FIELDS } from "../domain/records.ts";
import type {
  AllowlistRecord,
  AllowlistStatus,
  LedgerEntry,
  Lot,
  PolicyMapping,
  PolicySource,
} from "../domain/types.ts";

export type {
  AllowlistRecord,
  AllowlistStatus,
  Approval,
  BlockMode,
  CutOff,
  Deprovisioned,
  DeviceReconciliation,
  ExplainRequest,
  Explanation,
  ImportFormat,
  ImportMode,
  ImportOutcome,
  ImportReport,
  Job,
  JobView,
  LedgerEntry,
  Lot,
  MappingWarning,
  MappingWhatIf,
  Page,
  PolicyMapping,
  PolicySource,
  ProvisionResult,
  ReconcileSlice,
  RecordWarning,
  RestoreReport,
  SignedUrl,
  UploadTicket,
  Written,
};

/** The body of `POST /allowlist/import-jobs`: the uploaded file and how to import it. */
export type ImportJobRequest = Omit<ImportJobParams, "mode"> & { mode?: ImportMode };
/** The body of `POST /restore-jobs`: the uploaded backup file and how to restore it. */
export type RestoreJobRequest = RestoreJobParams;
/** The answer of `GET /jobs`. */
export type JobPage = Page<Job>;
/** The result of a reconcile job (`POST /reconcile-jobs`), as `GET /jobs/{id}` shows it. */
export type { ReconcileJobResult } from "../domain/jobs/index.ts";
/** The body of `POST /block-jobs`: the devices (ids, or a lot) and whether to suspend rather than revoke. */
export type BlockJobRequest = ({ deviceIds: string[] } | { lot: string }) & { suspend?: boolean };
/** The result of a block job, as `GET /jobs/{id}` shows it. */
export type { BlockJobResult } from "../domain/jobs/index.ts";

// ---------------------------------------------------------------- routes

/** An HTTP method the admin API takes. */
export type Method = "GET" | "PUT" | "POST" | "DELETE";

/** Percent-encodes one path segment (a device id, selector or lot name may hold `/`, `:`, `#`...). */
export const segment = (value: string): string => encodeURIComponent(value);

/** The admin API's paths, relative to its base URL (no leading slash), with every name encoded. */
export const adminPaths = {
  allowlist: (): string => "allowlist",
  allowlistRecord: (deviceId: string): string => `allowlist/${segment(deviceId)}`,
  allowlistImport: (): string => "allowlist/import",
  allowlistExport: (): string => "allowlist/export",
  mappings: (): string => "mappings",
  mapping: (selector: string): string => `mappings/${segment(selector)}`,
  lots: (): string => "lots",
  lot: (lot: string): string => `lots/${segment(lot)}`,
  explain: (): string => "explain",
  approve: (deviceId: string): string => `devices/${segment(deviceId)}/approve`,
  deprovision: (deviceId: string): string => `devices/${segment(deviceId)}/deprovision`,
  history: (deviceId: string): string => `devices/${segment(deviceId)}/history`,
  ledger: (): string => "ledger",
  approvals: (): string => "approvals",
  mappingHistory: (selector: string): string => `mappings/${segment(selector)}/history`,
  lotHistory: (lot: string): string => `lots/${segment(lot)}/history`,
  reconcile: (): string => "reconcile",
  uploads: (): string => "uploads",
  importJobs: (): string => "allowlist/import-jobs",
  exportJobs: (): string => "allowlist/export-jobs",
  jobs: (): string => "jobs",
  job: (id: string): string => `jobs/${segment(id)}`,
  cancelJob: (id: string): string => `jobs/${segment(id)}/cancel`,
  backupJobs: (): string => "backup-jobs",
  restoreJobs: (): string => "restore-jobs",
  // Job kinds that change IoT: reconcile (and block of many).
  reconcileJobs: (): string => "reconcile-jobs",
  blockJobs: (): string => "block-jobs",
} as const;

// ---------------------------------------------------------------- headers and preconditions

/** The header names the admin API reads and writes (lower case, as Node and API Gateway hand them over). */
export const HEADERS = {
  accept: "accept",
  authorization: "authorization",
  contentType: "content-type",
  etag: "etag",
  ifMatch: "if-match",
  ifNoneMatch: "if-none-match",
} as const;

/** The content types of the admin API's bodies. */
export const CONTENT_TYPES = {
  json: "application/json",
  jsonLines: "application/x-ndjson",
  csv: "text/csv",
} as const;

/** The content type an import body of this format is sent with (JSON lines unless CSV). */
export const importContentType = (format: ImportFormat | undefined): string =>
  format === "csv" ? CONTENT_TYPES.csv : CONTENT_TYPES.jsonLines;

/** The ETag of a record at this version: the version in quotes (`"3"`); a record without one is at 0. */
export const etagOf = (version: number | undefined): string => `"${version ?? 0}"`;

/** The version an If-Match value names (quotes and `W/` tolerated), or undefined when it names none. */
export function versionOfTag(value: string): number | undefined {
  const bare = value
    .trim()
    .replace(/^W\//, "")
    .replace(/^"(.*)"$/, "$1");
  const version = Number(bare);
  return /^\d+$/.test(bare) && Number.isSafeInteger(version) ? version : undefined;
}

/**
 * The precondition of a write: create only when there is none (`If-None-Match: *`), or update only the
 * version read (`If-Match: <etag>`; the value is sent as given).
 */
export type WriteCondition = { ifNoneMatch: "*" } | { ifMatch: string };

/** The headers that carry a write's precondition. */
export function conditionHeaders(condition: WriteCondition | undefined): Record<string, string> {
  if (condition === undefined) return {};
  if ("ifNoneMatch" in condition) return { [HEADERS.ifNoneMatch]: condition.ifNoneMatch };
  return { [HEADERS.ifMatch]: condition.ifMatch };
}

// ---------------------------------------------------------------- query parameters

/** One page of a listing: at most `limit` (1..1000, default 100) after `cursor` (checked by the server). */
export interface PageQuery {
  limit?: number | string;
  cursor?: string;
}

/**
 * The filters of the fleet-wide ledger, with its page: `kind` (provisioned, denied, failed, admin),
 * `reason`, `lot`, and `since` (an ISO 8601 time, or a duration back from now: `30m`, `12h`, `7d`).
 */
export interface LedgerQuery extends PageQuery {
  kind?: LedgerEntry["kind"];
  reason?: string;
  lot?: string;
  since?: string;
}

/** The filters of an allowlist listing, with its page. */
export interface AllowlistListQuery extends PageQuery, AllowlistFilter {}

/**
 * How an import runs: `best-effort` (the default) or `all-or-nothing`; the format, else sniffed; a dry
 * run decides every line against the stored records and writes nothing.
 */
export interface ImportQuery {
  mode?: ImportMode;
  format?: ImportFormat;
  dryRun?: boolean;
}

/**
 * The limits of an import body, in bytes. A line longer than `lineBytes` (an allowlist record is far
 * smaller) is answered 400 naming it; a body larger than `bodyBytes` (what the deployed API passes a
 * Lambda function) or, on the local server that streams it, `localBodyBytes` is answered 413. Either stops
 * the import at that line: see the report's `stopped`.
 */
export const IMPORT_LIMITS = {
  lineBytes: 64 * 1024,
  bodyBytes: 6 * 1024 * 1024,
  localBodyBytes: 64 * 1024 * 1024,
} as const;

/**
 * The query of a mapping put that overrides its checks: `force` saves it although a thing type, thing group
 * or existing policy it names does not exist (else 409 naming each), `allowBroadPolicy` although its inline
 * policy grants more than a device's own resources (else 400 naming each grant); either adds a warning.
 */
export interface MappingPutQuery {
  force?: boolean;
  allowBroadPolicy?: boolean;
}

/** One reconcile slice: after `cursor`, at most `limit` (1..100, default 20) devices; `dryRun` changes nothing. */
export interface ReconcileQuery {
  dryRun?: boolean;
  limit?: number | string;
  cursor?: string;
}

/** The query of a mapping put that saves nothing and answers what would change. */
export const DRY_RUN_QUERY = { dryRun: "true" } as const;

/** Query parameters as sent: every defined value as a string. */
export function queryOf(query: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) out[name] = String(value);
  }
  return out;
}

// ---------------------------------------------------------------- bodies

/** The fields the service writes (stamps, the certificate binding, a lot's count): writes leave them out. */
export const SERVICE_FIELDS = [...new Set([...ALLOWLIST_SERVICE_FIELDS, ...LOT_SERVICE_FIELDS])];

export type ServiceField = (typeof SERVICE_FIELDS)[number];

/** A record without the fields the service writes. */
export function withoutServiceFields(value: object): Record<string, unknown> {
  const service: readonly string[] = SERVICE_FIELDS;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !service.includes(key)));
}

/** The body of an allowlist put: the admin fields (the server checks them, and refuses unknown ones). */
export type AllowlistDraft = Partial<Omit<AllowlistRecord, ServiceField>>;
/**
 * The answer of an allowlist put: the record as saved; for a record written blocked, `block`: what was
 * done to the device's certificates (`complete: false`: put it again to finish); and `warnings` (a lot
 * that does not exist) when any.
 */
export type AllowlistSaved = AllowlistRecord & { block?: CutOff; warnings?: RecordWarning[] };
/** The query of an allowlist put that suspends (INACTIVE) a blocked device's certificates, not revokes them. */
export const SUSPEND_QUERY = { suspend: "true" } as const;
/** The query of a deprovision that also writes the record blocked (the device is retired). */
export const BLOCK_QUERY = { block: "true" } as const;
/** The body of a mapping put (or its dry run). */
export type MappingDraft = Partial<Omit<PolicyMapping, ServiceField>>;
/** The answer of a mapping put: the mapping as saved, and `warnings` when it will not do what it reads as. */
export type MappingSaved = PolicyMapping & { warnings?: MappingWarning[] };
/** The body of a lot put. */
export type LotDraft = Partial<Omit<Lot, ServiceField>>;

/** A body read from elsewhere (a file): sent as it is, for the server to check. */
export type UncheckedBody = Readonly<Record<string, unknown>>;

/** A record with the ETag it was read or written at. */
export interface Versioned<T> {
  value: T;
  etag: string;
}

/** The answer of a listing. */
export type AllowlistPage = Page<AllowlistRecord>;
export type MappingPage = Page<PolicyMapping>;
export type LotPage = Page<Lot>;
export type HistoryPage = Page<LedgerEntry>;
export type ApprovalPage = Page<Approval>;

// ---------------------------------------------------------------- errors

/** The error codes of the admin API. */
export type ErrorCode =
  | "ValidationError"
  | "NotFound"
  | "Conflict"
  | "PreconditionFailed"
  | "PreconditionRequired"
  | "ImportRejected"
  | "Unauthorized"
  | "MethodNotAllowed"
  | "PayloadTooLarge"
  | "InternalError";

/** One field at fault, in a ValidationError's details. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** The error body of every failed request: `{"error":{"code","message","details"}}` (details optional). */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** An error body; `details` is left out when there are none. */
export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/** The error in a response body, or undefined when the body is not an error body. */
export function parseErrorBody(text: string): ErrorBody["error"] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || !("error" in parsed)) return undefined;
  const error = parsed.error;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message, details } = error as { code?: unknown; message?: unknown; details?: unknown };
  if (typeof message !== "string") return undefined;
  return {
    code: typeof code === "string" ? code : "Error",
    message,
    ...(details === undefined ? {} : { details }),
  };
}

/** The fields at fault of a ValidationError's details (none when the details are something else). */
export function fieldIssuesOf(details: unknown): FieldIssue[] {
  if (!Array.isArray(details)) return [];
  return details.map((d: { path?: unknown; message?: unknown } | null) => ({
    path: typeof d?.path === "string" ? d.path : "",
    message: typeof d?.message === "string" ? d.message : "",
  }));
}
