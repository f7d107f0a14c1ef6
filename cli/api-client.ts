import { createHash, createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isAbsolute, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { AdminClient, type ApiRequest, type ApiResponse, type Signer } from "../api/client.ts";
import { HEADERS } from "../api/contract.ts";
import { defaultDataDir, ENDPOINTS_FILE, readLocalEndpoints } from "../local/contract.ts";
import { CliError } from "./output.ts";

/** Where the CLI finds the admin API: flags first, then `<data>/endpoints.json` written by `jitr local`. */
export interface ApiOptions {
  api?: string;
  data?: string;
  token?: string;
}

/** The admin API client as the CLI runs it: over node:http, an import streamed from a Node stream. */
export type NodeAdminClient = AdminClient<Readable>;

/**
 * Connects to the admin API found from flags, the environment and `<data>/endpoints.json`: a bearer token
 * locally, SigV4 (`execute-api`) against a deployed API.
 */
export async function connectAdminApi(options: ApiOptions): Promise<NodeAdminClient> {
  const { baseUrl, sign } = await adminApiConnection(options);
  return new AdminClient({ baseUrl, transport: nodeTransport, sign });
}

/** Where the admin API is and how to sign for it (what {@link connectAdminApi} builds its client on). */
export async function adminApiConnection(
  options: ApiOptions,
): Promise<{ baseUrl: URL; sign: Signer<Readable>; scheme: "bearer" | "sigv4" }> {
  const dataDir = options.data ?? defaultDataDir();
  const endpoints = await readLocalEndpoints(dataDir);
  const api = options.api ?? process.env.JITR_ADMIN_API ?? endpoints?.adminApi;
  if (api === undefined) {
    throw new CliError(
      `no admin API: pass --api URL, or start \`jitr local\` (it writes ${join(dataDir, ENDPOINTS_FILE)})`,
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
  if (token !== undefined) return { baseUrl, sign: bearer(token), scheme: "bearer" };
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
  return { baseUrl, sign: sigV4(signer), scheme: "sigv4" };
}

/** Adds `Authorization: Bearer <token>` (the local admin server's scheme). */
export function bearer(token: string): Signer<Readable> {
  return async (request) => ({
    ...request,
    headers: { ...request.headers, [HEADERS.authorization]: `Bearer ${token}` },
  });
}

/** Signs with SigV4; a streamed body is read whole first, since the signature covers it. */
export function sigV4(signer: SignatureV4): Signer<Readable> {
  return async (request) => {
    const { url } = request;
    const body =
      request.body === undefined || typeof request.body === "string"
        ? request.body
        : await collect(request.body);
    const signed = await signer.sign({
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...request.headers, host: url.host },
      ...(body !== undefined ? { body } : {}),
    });
    const headers = { ...request.headers, ...signed.headers };
    return { ...request, headers, ...(body !== undefined ? { body } : {}) };
  };
}

/** Sends a request over node:http(s); a stream body is piped as it is read. */
export function nodeTransport(request: ApiRequest<Readable>): Promise<ApiResponse> {
  const { url, method, headers, body } = request;
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolvePromise, reject) => {
    const req = send(url, { method, headers }, (res: IncomingMessage) => {
      res.setEncoding("utf8");
      resolvePromise(responseOf(res));
    });
    req.on("error", (error) =>
      reject(new CliError(`cannot reach the admin API at ${url.origin}: ${error.message}`)),
    );
    if (body !== undefined && typeof body !== "string") {
      body.on("error", (error) => req.destroy(error));
      body.pipe(req);
    } else req.end(body);
  });
}

/** An answer over node:http: its body read once, whole or chunk by chunk. */
function responseOf(res: IncomingMessage): ApiResponse {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  const chunks = async function* (): AsyncGenerator<string> {
    for await (const chunk of res) yield String(chunk);
  };
  return {
    status: res.statusCode ?? 0,
    headers,
    chunks,
    text: async () => {
      let text = "";
      for await (const chunk of chunks()) text += chunk;
      return text;
    },
  };
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

const bytesOf = (data: SourceData): Buffer =>
  typeof data === "string"
    ? Buffer.from(data, "utf8")
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** A node:crypto SHA-256 (or HMAC-SHA-256 with a secret) in the shape the SigV4 signer expects. */
export class Sha256 {
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
