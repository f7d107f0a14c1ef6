/*
 * The admin console's server: the page, its script and its style, and `/api/*` proxied to the admin API.
 * It binds loopback only. The address it prints carries a per-run token; the first request with that token
 * gets a session cookie (HttpOnly, SameSite=Strict) and is redirected to the bare address, after which the
 * token is spent. Every request must name this server in `Host` (no DNS rebinding); every request that
 * changes something must come from this origin (`Origin`); the API answers only to the session cookie.
 * No CORS header is ever sent. The browser never sees the admin token or AWS credentials: the proxy signs.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import type { ApiRequest, ApiResponse, Signer, Transport } from "../api/client.ts";
import { type ErrorBody, HEADERS, IMPORT_LIMITS, type Method } from "../api/contract.ts";
import { API_PREFIX } from "./paths.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "jitr_console";
/** The query parameter of the printed address that carries the per-run token. */
export const TOKEN_PARAM = "token";

/** The console's static files: the page and its bundled script and style. */
export interface ConsoleAssets {
  html: string;
  script: string;
  style: string;
}

/** Where the proxy sends the API calls, and how it signs them (bearer token, or SigV4). */
export interface Upstream {
  baseUrl: URL;
  sign: Signer<Readable>;
  transport: Transport<Readable>;
}

export interface ConsoleServerOptions {
  upstream: Upstream;
  assets: ConsoleAssets;
  /** 0 (the default) lets the OS pick a free port. */
  port?: number;
  /** The per-run token (random unless given, for tests). */
  token?: string;
}

export interface ConsoleServer {
  /** The bare address, e.g. `http://127.0.0.1:41234/`. */
  origin: string;
  /** The address to open once: the bare address with the per-run token. */
  openUrl: string;
  close(): Promise<void>;
}

const HOST = "127.0.0.1";
const FORWARDED_REQUEST_HEADERS = [HEADERS.accept, HEADERS.contentType, HEADERS.ifMatch, HEADERS.ifNoneMatch];
const FORWARDED_RESPONSE_HEADERS = [HEADERS.contentType, HEADERS.etag];
const METHODS: readonly Method[] = ["GET", "PUT", "POST", "DELETE"];

/** The headers of every answer: nothing cached, framed, sniffed or referred; scripts and styles from here only. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
  "cross-origin-resource-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
};

/** Starts the console server on 127.0.0.1. */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const token = options.token ?? randomBytes(32).toString("base64url");
  const session = randomBytes(32).toString("base64url");
  const state = { tokenSpent: false };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (res.headersSent) res.destroy();
      else sendError(res, 502, "InternalError", "the admin API could not be reached");
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = `http://${HOST}:${port()}`;
    if (!hostAllowed(req.headers.host, port())) {
      return sendError(res, 403, "Forbidden", "this console answers only at its own address");
    }
    if (!originAllowed(req, origin)) {
      return sendError(res, 403, "Forbidden", "requests from other sites are refused");
    }
    const url = new URL(req.url ?? "/", origin);
    const hasSession = sameSecret(cookieOf(req.headers.cookie, SESSION_COOKIE), session);
    const offered = url.searchParams.get(TOKEN_PARAM);
    if (offered !== null) {
      if (hasSession) return redirect(res, "/");
      if (state.tokenSpent || !sameSecret(offered, token) || req.method !== "GET") {
        return sendError(
          res,
          403,
          "Forbidden",
          "this console link is not valid (it works once): restart jitr console",
        );
      }
      state.tokenSpent = true;
      res.setHeader("set-cookie", `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`);
      return redirect(res, "/");
    }
    if (!hasSession) {
      return sendError(
        res,
        401,
        "Unauthorized",
        "open the address jitr console printed (it signs you in once)",
      );
    }
    if (url.pathname.startsWith(API_PREFIX)) return proxy(req, res, url, options.upstream);
    if (req.method !== "GET") return sendError(res, 405, "MethodNotAllowed", "only GET here");
    if (url.pathname === "/app.js")
      return sendText(res, 200, "text/javascript; charset=utf-8", options.assets.script);
    if (url.pathname === "/app.css")
      return sendText(res, 200, "text/css; charset=utf-8", options.assets.style);
    if (url.pathname === "/favicon.ico") return sendText(res, 204, "image/x-icon", "");
    return sendText(res, 200, "text/html; charset=utf-8", options.assets.html);
  }

  const port = (): number => (server.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, HOST, () => resolve());
  });
  const origin = `http://${HOST}:${port()}/`;
  return {
    origin,
    openUrl: `${origin}?${TOKEN_PARAM}=${encodeURIComponent(token)}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Whether the Host header names this server (by its IP or as localhost): other names are DNS rebinding. */
export function hostAllowed(host: string | undefined, port: number): boolean {
  return host === `${HOST}:${port}` || host === `localhost:${port}`;
}

/**
 * Whether a request may come from where it says: a change (anything but GET) must carry this origin; a
 * read may carry none (a navigation), else this one. `Sec-Fetch-Site`, when the browser sends it, must say
 * the request is same-origin or typed by the user.
 */
export function originAllowed(req: Pick<IncomingMessage, "method" | "headers">, origin: string): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return false;
  const given = req.headers.origin;
  const localhostOrigin = origin.replace(HOST, "localhost");
  if (given !== undefined) return given === origin || given === localhostOrigin;
  return req.method === "GET" || req.method === "HEAD";
}

/** A cookie's value from a Cookie header. */
export function cookieOf(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

/** Compares a secret in constant time (false when none was given). */
function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given, "utf8");
  const b = Buffer.from(expected, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Sends `/api/<route>` on to the admin API, signed; the answer's status, type, ETag and body come back. */
async function proxy(req: IncomingMessage, res: ServerResponse, url: URL, upstream: Upstream): Promise<void> {
  const method = req.method as Method;
  if (!METHODS.includes(method))
    return sendError(res, 405, "MethodNotAllowed", `${req.method} is not allowed`);
  const route = url.pathname.slice(API_PREFIX.length);
  const target = new URL(`${route}${url.search}`, upstream.baseUrl);
  if (
    !target.href.startsWith(upstream.baseUrl.href) ||
    route.split("/").some((s) => s === ".." || s === ".")
  ) {
    return sendError(res, 400, "ValidationError", "not a route of the admin API");
  }
  const body = method === "GET" || method === "DELETE" ? undefined : await readBody(req);
  if (body === null) {
    return sendError(
      res,
      413,
      "PayloadTooLarge",
      `a request body holds at most ${IMPORT_LIMITS.bodyBytes} bytes`,
    );
  }
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  const request: ApiRequest<Readable> = {
    method,
    url: target,
    headers,
    ...(body !== undefined ? { body } : {}),
  };
  const answer: ApiResponse = await upstream.transport(await upstream.sign(request));
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = answer.headers[name];
    if (value !== undefined) res.setHeader(name, value);
  }
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  res.statusCode = answer.status;
  for await (const chunk of answer.chunks()) res.write(chunk);
  res.end();
}

/** A request body as text; null when it is larger than the deployed API takes. */
async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > IMPORT_LIMITS.bodyBytes) return null;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function redirect(res: ServerResponse, location: string): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  res.writeHead(303, { location });
  res.end();
}

function sendText(res: ServerResponse, status: number, type: string, text: string): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  res.writeHead(status, { "content-type": type });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body: ErrorBody = { error: { code, message } };
  sendText(res, status, "application/json", JSON.stringify(body));
}
