/*
 * A typed client of the admin API: one method per route. It builds each request (encoded path, query,
 * preconditions, JSON body), has it signed and sent by functions it is given, and turns every error answer
 * into one ApiError. It knows no transport: Node (cli/) and a browser each bring their own.
 */
import {
  type AllowlistDraft,
  type AllowlistListQuery,
  type AllowlistPage,
  type AllowlistRecord,
  type AllowlistSaved,
  type ApprovalPage,
  adminPaths,
  BLOCK_QUERY,
  type BlockJobRequest,
  CONTENT_TYPES,
  conditionHeaders,
  type Deprovisioned,
  DRY_RUN_QUERY,
  type ExplainRequest,
  type Explanation,
  etagOf,
  HEADERS,
  type HistoryPage,
  type ImportJobRequest,
  type ImportQuery,
  type ImportReport,
  importContentType,
  type Job,
  type JobPage,
  type JobView,
  type LedgerQuery,
  type Lot,
  type LotDraft,
  type LotPage,
  type MappingDraft,
  type MappingPage,
  type MappingPutQuery,
  type MappingSaved,
  type MappingWhatIf,
  type Method,
  type Page,
  type PageQuery,
  type PolicyMapping,
  type ProvisionResult,
  parseErrorBody,
  queryOf,
  type ReconcileQuery,
  type ReconcileSlice,
  type RestoreJobRequest,
  SUSPEND_QUERY,
  type UncheckedBody,
  type UploadTicket,
  type Versioned,
  type WriteCondition,
  type Written,
} from "./contract.ts";

/**
 * One request as the client hands it to the signer and the transport. `Upload` is the type of a streamed
 * body (a Node stream, a browser Blob...): the client passes it through untouched.
 */
export interface ApiRequest<Upload = never> {
  method: Method;
  url: URL;
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: string | Upload;
}

/** One answer: status, headers (lower-case names) and a body read once, whole or chunk by chunk. */
export interface ApiResponse {
  status: number;
  headers: Readonly<Record<string, string | undefined>>;
  text(): Promise<string>;
  chunks(): AsyncIterable<string>;
}

/** Sends a request and resolves with any status; rejects only when no answer came. */
export type Transport<Upload = never> = (request: ApiRequest<Upload>) => Promise<ApiResponse>;

/** Adds credentials to a request (a bearer token, a SigV4 signature); may replace its body. */
export type Signer<Upload = never> = (request: ApiRequest<Upload>) => Promise<ApiRequest<Upload>>;

/** What a client is built on. */
export interface ClientOptions<Upload = never> {
  /** The API's base URL; routes resolve under it. */
  baseUrl: URL | string;
  transport: Transport<Upload>;
  /** Applied to every request before it is sent (default: none). */
  sign?: Signer<Upload>;
}

/** An error answer of the admin API: the status, and the code, message and details of its error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The error of an answer's body, or a plain description when the body is not an error body. */
  static of(status: number, text: string): ApiError {
    const error = parseErrorBody(text);
    if (error !== undefined) return new ApiError(status, error.code, error.message, error.details);
    return new ApiError(status, "Error", `HTTP ${status}: ${text.slice(0, 200)}`, undefined);
  }
}

/** What one route sends: method, path, query, precondition headers and a body. */
export interface ApiCall<Upload = never> {
  method: Method;
  path: string;
  query?: object;
  headers?: Record<string, string>;
  /** A JSON body (sent as `application/json` unless the headers say otherwise). */
  json?: unknown;
  /** A text body, sent as it is. */
  text?: string;
  /** A streamed body, passed to the transport untouched. */
  upload?: Upload;
}

/** The admin API client: `allowlist`, `mappings`, `lots`, `devices` and `reconcile`, one method per route. */
export class AdminClient<Upload = never> {
  readonly baseUrl: URL;
  readonly allowlist: AllowlistClient<Upload>;
  readonly mappings: MappingClient<Upload>;
  readonly lots: LotClient<Upload>;
  readonly devices: DeviceClient<Upload>;
  readonly ledger: LedgerClient<Upload>;
  readonly reconcile: ReconcileClient<Upload>;
  readonly jobs: JobClient<Upload>;
  readonly #transport: Transport<Upload>;
  readonly #sign: Signer<Upload>;

  constructor(options: ClientOptions<Upload>) {
    const base = new URL(options.baseUrl);
    this.baseUrl = base.href.endsWith("/") ? base : new URL(`${base.href}/`);
    this.#transport = options.transport;
    this.#sign = options.sign ?? (async (request) => request);
    this.allowlist = new AllowlistClient(this);
    this.mappings = new MappingClient(this);
    this.lots = new LotClient(this);
    this.devices = new DeviceClient(this);
    this.ledger = new LedgerClient(this);
    this.reconcile = new ReconcileClient(this);
    this.jobs = new JobClient(this);
  }

  /** The URL of a path (relative to the base) with its query parameters. */
  urlOf(path: string, query: object = {}): URL {
    const url = new URL(path.replace(/^\//, ""), this.baseUrl);
    for (const [name, value] of Object.entries(queryOf(query))) url.searchParams.set(name, value);
    return url;
  }

  /** Sends one request; resolves with the answer when its status is below 400, else throws ApiError. */
  async send(call: ApiCall<Upload>): Promise<ApiResponse> {
    const headers: Record<string, string> = { [HEADERS.accept]: CONTENT_TYPES.json, ...call.headers };
    const request: ApiRequest<Upload> = {
      method: call.method,
      url: this.urlOf(call.path, call.query),
      headers,
    };
    if (call.json !== undefined) {
      request.body = JSON.stringify(call.json);
      headers[HEADERS.contentType] ??= CONTENT_TYPES.json;
    } else if (call.text !== undefined) request.body = call.text;
    else if (call.upload !== undefined) request.body = call.upload;
    const response = await this.#transport(await this.#sign(request));
    if (response.status >= 400) throw ApiError.of(response.status, await response.text());
    return response;
  }

  /** Sends one request and parses its JSON answer (undefined for an empty one). */
  async json<T>(call: ApiCall<Upload>): Promise<{ value: T; response: ApiResponse }> {
    const response = await this.send(call);
    const text = await response.text();
    return { value: (text === "" ? undefined : JSON.parse(text)) as T, response };
  }

  /** Reads a record with its ETag (from the header, else from the record's version). */
  async read<T extends { version?: number }>(path: string): Promise<Versioned<T>> {
    const { value, response } = await this.json<T>({ method: "GET", path });
    return { value, etag: response.headers[HEADERS.etag] ?? etagOf(value.version) };
  }

  /** Writes a record under a precondition; answers it, whether it was created, and its new ETag. */
  async write<T extends { version?: number }>(
    path: string,
    body: unknown,
    condition: WriteCondition | undefined,
    query?: object,
  ): Promise<Written<T> & { etag: string }> {
    const { value, response } = await this.json<T>({
      method: "PUT",
      path,
      json: body,
      headers: conditionHeaders(condition),
      ...(query !== undefined ? { query } : {}),
    });
    return {
      value,
      created: response.status === 201,
      etag: response.headers[HEADERS.etag] ?? etagOf(value.version),
    };
  }

  /** Deletes a record, only at the version named when `ifMatch` is given. */
  async remove(path: string, condition?: { ifMatch: string }): Promise<void> {
    await this.send({ method: "DELETE", path, headers: conditionHeaders(condition) });
  }
}

/** Awaits a read; undefined when the API answers 404 (there is no such record). */
export async function orNone<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

/** Every page of a listing, following the cursor from the first page to the last. */
export async function* pages<T>(
  list: (cursor: string | undefined) => Promise<Page<T>>,
): AsyncGenerator<Page<T>> {
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    yield page;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** The allowlist routes. */
export class AllowlistClient<Upload = never> {
  constructor(private readonly api: AdminClient<Upload>) {}

  /** One record and its ETag. */
  get(deviceId: string): Promise<Versioned<AllowlistRecord>> {
    return this.api.read(adminPaths.allowlistRecord(deviceId));
  }

  /**
   * Creates (`If-None-Match: *`) or updates (`If-Match`) a record; its `warnings`, if any, come with it.
   * A record written blocked has the device's live certificates revoked (`suspend`: set INACTIVE), as
   * its `block` says.
   */
  put(
    deviceId: string,
    record: AllowlistDraft | UncheckedBody,
    condition?: WriteCondition,
    options: { suspend?: boolean } = {},
  ): Promise<Written<AllowlistSaved> & { etag: string }> {
    const query = options.suspend === true ? SUSPEND_QUERY : undefined;
    return this.api.write(adminPaths.allowlistRecord(deviceId), record, condition, query);
  }

  /** Deletes a record (refused while it is bound to an ACTIVE certificate). */
  remove(deviceId: string, condition?: { ifMatch: string }): Promise<void> {
    return this.api.remove(adminPaths.allowlistRecord(deviceId), condition);
  }

  /** One page of records, filtered by status, lot, device id prefix and/or profile. */
  async list(query: AllowlistListQuery = {}): Promise<AllowlistPage> {
    return (await this.api.json<AllowlistPage>({ method: "GET", path: adminPaths.allowlist(), query })).value;
  }

  /**
   * Imports records from a body of JSON lines or CSV; answers the report. An all-or-nothing import with a
   * bad line, or an import stopped at a line over a limit, throws ApiError `ImportRejected` (413
   * `PayloadTooLarge` for a body over the limit) whose details are the report.
   */
  async import(body: string | Upload, query: ImportQuery = {}): Promise<ImportReport> {
    const headers = { [HEADERS.contentType]: importContentType(query.format) };
    const content = typeof body === "string" ? { text: body } : { upload: body };
    const response = await this.api.send({
      method: "POST",
      path: adminPaths.allowlistImport(),
      query,
      headers,
      ...content,
    });
    return JSON.parse(await response.text()) as ImportReport;
  }

  /** Every record as JSON lines (the form import reads back), chunk by chunk as the API sends them. */
  async export(): Promise<AsyncIterable<string>> {
    return (await this.api.send({ method: "GET", path: adminPaths.allowlistExport() })).chunks();
  }
}

/** The policy-mapping routes. */
export class MappingClient<Upload = never> {
  constructor(private readonly api: AdminClient<Upload>) {}

  /** One mapping and its ETag. */
  get(selector: string): Promise<Versioned<PolicyMapping>> {
    return this.api.read(adminPaths.mapping(selector));
  }

  /**
   * Creates (`If-None-Match: *`) or updates (`If-Match`) a mapping; its `warnings`, if any, come with it.
   * `query` overrides the checks of missing references (`force`) and broad inline policies (`allowBroadPolicy`).
   */
  put(
    selector: string,
    mapping: MappingDraft | UncheckedBody,
    condition?: WriteCondition,
    query?: MappingPutQuery,
  ): Promise<Written<MappingSaved> & { etag: string }> {
    return this.api.write(adminPaths.mapping(selector), mapping, condition, query);
  }

  /** Which provisioned devices would get another policy if the mapping were saved; saves nothing. */
  async whatIf(selector: string, mapping: MappingDraft | UncheckedBody): Promise<MappingWhatIf> {
    const path = adminPaths.mapping(selector);
    return (await this.api.json<MappingWhatIf>({ method: "PUT", path, query: DRY_RUN_QUERY, json: mapping }))
      .value;
  }

  /** Deletes a mapping (devices already provisioned keep their policy). */
  remove(selector: string, condition?: { ifMatch: string }): Promise<void> {
    return this.api.remove(adminPaths.mapping(selector), condition);
  }

  /** One page of mappings. */
  async list(query: PageQuery = {}): Promise<MappingPage> {
    return (await this.api.json<MappingPage>({ method: "GET", path: adminPaths.mappings(), query })).value;
  }

  /** One page of the mapping's changes, newest first. */
  async history(selector: string, query: PageQuery = {}): Promise<HistoryPage> {
    const path = adminPaths.mappingHistory(selector);
    return (await this.api.json<HistoryPage>({ method: "GET", path, query })).value;
  }
}

/** The lot routes. */
export class LotClient<Upload = never> {
  constructor(private readonly api: AdminClient<Upload>) {}

  /** One lot and its ETag. */
  get(lot: string): Promise<Versioned<Lot>> {
    return this.api.read(adminPaths.lot(lot));
  }

  /** Creates (`If-None-Match: *`) or updates (`If-Match`) a lot. */
  put(
    lot: string,
    fields: LotDraft | UncheckedBody,
    condition?: WriteCondition,
  ): Promise<Written<Lot> & { etag: string }> {
    return this.api.write(adminPaths.lot(lot), fields, condition);
  }

  /** Deletes a lot (refused 409 while it counts devices or a record names it). */
  remove(lot: string, condition?: { ifMatch: string }): Promise<void> {
    return this.api.remove(adminPaths.lot(lot), condition);
  }

  /** One page of lots. */
  async list(query: PageQuery = {}): Promise<LotPage> {
    return (await this.api.json<LotPage>({ method: "GET", path: adminPaths.lots(), query })).value;
  }

  /** One page of the lot's changes, newest first. */
  async history(lot: string, query: PageQuery = {}): Promise<HistoryPage> {
    return (await this.api.json<HistoryPage>({ method: "GET", path: adminPaths.lotHistory(lot), query }))
      .value;
  }
}

/** The routes about one device: explain, approve, deprovision, history. */
export class DeviceClient<Upload = never> {
  constructor(private readonly api: AdminClient<Upload>) {}

  /** A dry run of the decision for a device or a certificate; changes nothing. */
  async explain(request: ExplainRequest): Promise<Explanation> {
    return (await this.api.json<Explanation>({ method: "POST", path: adminPaths.explain(), json: request }))
      .value;
  }

  /** Re-decides the device's latest quarantined certificate, provisioning it when now allowed. */
  async approve(deviceId: string): Promise<ProvisionResult> {
    return (await this.api.json<ProvisionResult>({ method: "POST", path: adminPaths.approve(deviceId) }))
      .value;
  }

  /**
   * Revokes the device's certificates and takes its thing and policies apart; the record stays allowed
   * unless `block` (retire the device: the record is written blocked first).
   */
  async deprovision(deviceId: string, options: { block?: boolean } = {}): Promise<Deprovisioned> {
    const path = adminPaths.deprovision(deviceId);
    const query = options.block === true ? BLOCK_QUERY : undefined;
    return (
      await this.api.json<Deprovisioned>({ method: "POST", path, ...(query !== undefined ? { query } : {}) })
    ).value;
  }

  /** One page of the device's ledger entries, newest first. */
  async history(deviceId: string, query: PageQuery = {}): Promise<HistoryPage> {
    return (await this.api.json<HistoryPage>({ method: "GET", path: adminPaths.history(deviceId), query }))
      .value;
  }
}

/** The fleet-wide routes: the ledger across devices and the approve queue. */
export class LedgerClient<Upload = never> {
  constructor(private readonly api: AdminClient<Upload>) {}

  /** One page of every device's outcomes and admin changes matching the filters, newest first. */
  async list(query: LedgerQuery = {}): Promise<HistoryPage> {
    return (await this.api.json<HistoryPage>({ method: "GET", path: adminPaths.ledger(), query })).value;
  }

  /** One page of the approve queue: quarantined devices, each with whether its records now allow it. */
  async approvals(query: PageQuery = {}): Promise<ApprovalPage> {
    return (await this.api.json<ApprovalPage>({ method: "GET", path: adminPaths.approvals(), query })).value;
  }
}

/** The reconcile route: one slice at a time. */
export class ReconcileClient<Upload = never> {
  constructor(private readonly api: AdminClient<Upload>) {}

  /** Reconciles (or, with `dryRun`, examines) one slice of provisioned devices; follow `cursor` until `done`. */
  async slice(query: ReconcileQuery = {}): Promise<ReconcileSlice> {
    return (await this.api.json<ReconcileSlice>({ method: "POST", path: adminPaths.reconcile(), query }))
      .value;
  }
}

/** The job routes: an upload URL, starting import and export jobs, reading, listing and cancelling jobs. */
export class JobClient<Upload = never> {
  constructor(private readonly api: AdminClient<Upload>) {}

  /** A presigned URL to PUT a file of `bytes` bytes to, and the name to start its import job with. */
  async requestUpload(bytes: number): Promise<UploadTicket> {
    return (
      await this.api.json<UploadTicket>({ method: "POST", path: adminPaths.uploads(), json: { bytes } })
    ).value;
  }

  /** Starts an import job over an uploaded file. */
  async startImport(request: ImportJobRequest): Promise<Job> {
    return (await this.api.json<Job>({ method: "POST", path: adminPaths.importJobs(), json: request })).value;
  }

  /** Starts an export job (every allowlist record into one file, handed out by a download URL). */
  async startExport(): Promise<Job> {
    return (await this.api.json<Job>({ method: "POST", path: adminPaths.exportJobs(), json: {} })).value;
  }

  /** Starts a backup job (every lot, mapping and allowlist record into one file, handed out by a download URL). */
  async startBackup(): Promise<Job> {
    return (await this.api.json<Job>({ method: "POST", path: adminPaths.backupJobs(), json: {} })).value;
  }

  /** Starts a restore job over an uploaded backup file. */
  async startRestore(request: RestoreJobRequest): Promise<Job> {
    return (await this.api.json<Job>({ method: "POST", path: adminPaths.restoreJobs(), json: request }))
      .value;
  }

  /** One job (a finished export with a fresh download URL). */
  async get(id: string): Promise<JobView> {
    return (await this.api.json<JobView>({ method: "GET", path: adminPaths.job(id) })).value;
  }

  /** One page of jobs, newest first. */
  async list(query: PageQuery = {}): Promise<JobPage> {
    return (await this.api.json<JobPage>({ method: "GET", path: adminPaths.jobs(), query })).value;
  }

  /** Starts a reconcile job over every provisioned device; `dryRun` changes nothing. */
  async startReconcile(request: { dryRun?: boolean } = {}): Promise<Job> {
    return (await this.api.json<Job>({ method: "POST", path: adminPaths.reconcileJobs(), json: request }))
      .value;
  }

  /** Starts a block job over devices named by id or by lot. */
  async startBlock(request: BlockJobRequest): Promise<Job> {
    return (await this.api.json<Job>({ method: "POST", path: adminPaths.blockJobs(), json: request })).value;
  }

  /** Cancels a job that has not ended. */
  async cancel(id: string): Promise<Job> {
    return (await this.api.json<Job>({ method: "POST", path: adminPaths.cancelJob(id) })).value;
  }
}
