import { createHash, createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isAbsolute, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { readLocalEndpoints } from "../local/contract.ts";
import { CliError } from "./output.ts";

/** Where the CLI finds the admin API: flags first, then `<data>/endpoints.json` written by `jitr local`. */
export interface ApiOptions {
  api?: string;
  data?: string;
  token?: string;
}

/** An error answer of the admin API, with its status and details. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ApiRequest {
  method: string;
  path: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  /** A JSON value, a string, or a stream (only with a bearer token: SigV4 signs the whole body). */
  body?: unknown;
  stream?: Readable;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

const bytesOf = (data: SourceData): Buffer =>
  typeof data === "string"
    ? Buffer.from(data, "utf8")
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** A node:crypto SHA-256 (or HMAC-SHA-256 with a secret) in the shape the SigV4 signer expects. */
class Sha256 {
  readonly #secret: Buffer | undefined;
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : bytesOf(secret);
    this.#hash = this.#fresh();
  }
  #fresh() {
    return this.#secret === undefined ? createHash("sha256") : createHmac("sha256", this.#secret);
  }
  update(data: SourceData): void {
    this.#hash.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
  reset(): void {
    this.#hash = this.#fresh();
  }
}

type Auth = { kind: "bearer"; token: string } | { kind: "sigv4"; signer: SignatureV4 };

/** A client of the admin API: a bearer token locally, SigV4 (`execute-api`) against a deployed API. */
export class AdminApiClient {
  private constructor(
    readonly baseUrl: URL,
    private readonly auth: Auth,
  ) {}

  /** Resolves the API address and credentials from flags, the environment and `<data>/endpoints.json`. */
  static async connect(options: ApiOptions): Promise<AdminApiClient> {
    const dataDir = options.data ?? ".jitr";
    const endpoints = await readLocalEndpoints(dataDir);
    const api = options.api ?? process.env.JITR_ADMIN_API ?? endpoints?.adminApi;
    if (api === undefined) {
      throw new CliError(
        `no admin API: pass --api URL, or start \`jitr local\` (it writes ${join(dataDir, "endpoints.json")})`,
      );
    }
    let baseUrl: URL;
    try {
      baseUrl = new URL(api);
    } catch {
      throw new CliError(`--api is not a URL: ${api}`);
    }
    let token = options.token ?? process.env.JITR_ADMIN_TOKEN;
    const local = endpoints?.adminApi !== undefined && sameOrigin(endpoints.adminApi, baseUrl);
    if (token === undefined && local && endpoints?.adminTokenFile !== undefined) {
      token = await readToken(endpoints.adminTokenFile, dataDir);
    }
    if (token !== undefined) return new AdminApiClient(baseUrl, { kind: "bearer", token });
    const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? regionOfHost(baseUrl.hostname);
    if (region === undefined) {
      throw new CliError("cannot tell the API's region for SigV4: set AWS_REGION");
    }
    const signer = new SignatureV4({
      service: "execute-api",
      region,
      credentials: defaultProvider(),
      sha256: Sha256,
    });
    return new AdminApiClient(baseUrl, { kind: "sigv4", signer });
  }

  /** Sends one request; resolves with any status (see {@link call} for one that throws on errors). */
  async send(request: ApiRequest): Promise<ApiResponse> {
    const url = new URL(
      request.path.replace(/^\//, ""),
      this.baseUrl.href.endsWith("/") ? this.baseUrl : `${this.baseUrl.href}/`,
    );
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    let body: string | undefined;
    const headers: Record<string, string> = { accept: "application/json", ...request.headers };
    if (request.body !== undefined) {
      body = typeof request.body === "string" ? request.body : JSON.stringify(request.body);
      headers["content-type"] ??= "application/json";
    }
    if (this.auth.kind === "bearer") headers.authorization = `Bearer ${this.auth.token}`;
    else {
      if (request.stream !== undefined) body = await collect(request.stream);
      const signed = await this.auth.signer.sign({
        method: request.method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: { ...headers, host: url.host },
        ...(body !== undefined ? { body } : {}),
      });
      Object.assign(headers, signed.headers);
    }
    const stream = this.auth.kind === "bearer" ? request.stream : undefined;
    return transmit(url, request.method, headers, body, stream);
  }

  /** Sends a request and parses its JSON answer; an error status throws ApiError with the API's message. */
  async call<T = unknown>(request: ApiRequest): Promise<{ value: T; response: ApiResponse }> {
    const response = await this.send(request);
    if (response.status >= 400) throw apiError(response);
    const value = (response.text === "" ? undefined : JSON.parse(response.text)) as T;
    return { value, response };
  }
}

/** The API's error JSON as an ApiError (or a plain description when the body is not one). */
export function apiError(response: ApiResponse): ApiError {
  try {
    const parsed = JSON.parse(response.text) as {
      error?: { code?: string; message?: string; details?: unknown };
    };
    if (parsed.error?.message !== undefined) {
      return new ApiError(
        response.status,
        parsed.error.code ?? "Error",
        parsed.error.message,
        parsed.error.details,
      );
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(
    response.status,
    "Error",
    `HTTP ${response.status}: ${response.text.slice(0, 200)}`,
    undefined,
  );
}

function transmit(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  stream: Readable | undefined,
): Promise<ApiResponse> {
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolvePromise, reject) => {
    const req = send(url, { method, headers }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolvePromise({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", (error) =>
      reject(new CliError(`cannot reach the admin API at ${url.origin}: ${error.message}`)),
    );
    if (stream !== undefined) {
      stream.on("error", (error) => req.destroy(error));
      stream.pipe(req);
    } else req.end(body);
  });
}

async function collect(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8");
}

async function readToken(file: string, dataDir: string): Promise<string> {
  const candidates = isAbsolute(file)
    ? [file]
    : [resolve(file), resolve(dataDir, file), resolve(dataDir, "..", file)];
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined)
    throw new CliError(`the admin token file ${file} does not exist (is \`jitr local\` running?)`);
  return (await readFile(path, "utf8")).trim();
}

function sameOrigin(a: string, b: URL): boolean {
  try {
    return new URL(a).origin === b.origin;
  } catch {
    return false;
  }
}

/** `abc.execute-api.eu-west-1.amazonaws.com` -> `eu-west-1`. */
function regionOfHost(hostname: string): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(hostname)?.[1];
}
