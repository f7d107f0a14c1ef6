import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEventV2WithIAMAuthorizer } from "aws-lambda";
import { CONTENT_TYPES, errorBody, HEADERS, IMPORT_LIMITS } from "../api/contract.ts";
import { type AdminDeps, ImportLimitError } from "../domain/admin/index.ts";
import {
  type AdminRouter,
  errorResponse,
  HttpError,
  MAX_BODY_BYTES,
  makeAdminRouter,
} from "../handlers/admin.ts";
import { type LineLimits, linesOf } from "../handlers/admin-http.ts";

/** The identity local admin requests run as (the bearer token stands for it). */
export const LOCAL_ADMIN = "local-admin";

export interface AdminServerOptions {
  host?: string;
  /** 0 lets the OS pick a free port. */
  port?: number;
  /** The bearer token every request must carry. */
  token: string;
  deps: AdminDeps;
  logError?: (message: string, details: Record<string, unknown>) => void;
  /** The most bytes a streamed import body may hold; {@link IMPORT_LIMITS}`.localBodyBytes` unless given. */
  importBodyBytes?: number;
}

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The admin API over plain HTTP on loopback: checks `Authorization: Bearer <token>`, turns each request
 * into an HTTP API v2 event and calls the same router as the deployed handler. The import body is
 * streamed to the router line by line, holding one line at a time, within {@link IMPORT_LIMITS} (a larger
 * body than deployed: the local server never holds it whole); every other body is capped at
 * {@link MAX_BODY_BYTES}.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const router = makeAdminRouter({
    admin: options.deps,
    ...(options.logError ? { logError: options.logError } : {}),
  });
  const expected = Buffer.from(`Bearer ${options.token}`, "utf8");
  const limits: LineLimits = {
    lineBytes: IMPORT_LIMITS.lineBytes,
    bodyBytes: options.importBodyBytes ?? IMPORT_LIMITS.localBodyBytes,
  };
  const server = createServer((req, res) => {
    handle(req, res, router, expected, limits).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const failed = errorResponse(error);
      send(res, failed.statusCode, failed.body);
    });
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function authorized(header: string | undefined, expected: Buffer): boolean {
  const given = Buffer.from(header ?? "", "utf8");
  // Compare equal-length buffers only, in constant time; a length mismatch compares against itself.
  const same = given.length === expected.length;
  return timingSafeEqual(same ? given : expected, expected) && same;
}

function send(res: ServerResponse, statusCode: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(statusCode, {
    [HEADERS.contentType]: CONTENT_TYPES.json,
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpError(413, "PayloadTooLarge", `the body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Answers an error, then stops the upload (the rest of the body is never read). */
function refuseUpload(req: IncomingMessage, res: ServerResponse, statusCode: number, body: unknown): void {
  res.setHeader("connection", "close");
  res.once("finish", () => req.destroy());
  send(res, statusCode, body);
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  router: AdminRouter,
  expected: Buffer,
  limits: LineLimits,
): Promise<void> {
  if (!authorized(req.headers.authorization, expected)) {
    res.setHeader("www-authenticate", 'Bearer realm="jitr-admin"');
    send(res, 401, errorBody("Unauthorized", "missing or wrong bearer token"));
    req.resume();
    return;
  }
  const url = new URL(req.url ?? "/", "http://localhost");
  const method = (req.method ?? "GET").toUpperCase();
  const isImport = method === "POST" && url.pathname.replace(/\/+$/, "") === "/allowlist/import";
  let body: string | undefined;
  let lines: AsyncIterable<string> | undefined;
  let limitBroken = false;
  if (isImport) {
    const declared = Number(req.headers["content-length"] ?? Number.NaN);
    if (declared > limits.bodyBytes) {
      const message = `the import body is larger than ${limits.bodyBytes} bytes; nothing was imported: split the file`;
      refuseUpload(req, res, 413, errorBody("PayloadTooLarge", message));
      return;
    }
    // Read as the import asks for lines (the request stays paused until then), one line held at a time.
    const source = linesOf(req, limits);
    lines = {
      async *[Symbol.asyncIterator]() {
        try {
          yield* source;
        } catch (error) {
          limitBroken = error instanceof ImportLimitError;
          throw error;
        }
      },
    };
  } else {
    try {
      body = await readBody(req);
    } catch (error) {
      const failed = errorResponse(error);
      refuseUpload(req, res, failed.statusCode, failed.body);
      return;
    }
  }
  const response = await router(toEvent(req, url, method, body), lines ? { lines } : {});
  if (limitBroken) {
    // The body broke a limit: answer, then stop the upload; nothing more of it is read.
    res.setHeader("connection", "close");
    res.once("finish", () => req.destroy());
  } else if (lines !== undefined) {
    req.resume(); // drain whatever the router did not read (a refused import)
  }
  if (response.lines === undefined) {
    res.writeHead(response.statusCode, response.headers);
    res.end(response.body ?? "");
    return;
  }
  res.writeHead(response.statusCode, response.headers);
  for await (const line of response.lines) {
    if (!res.write(`${line}\n`)) await new Promise((resolve) => res.once("drain", resolve));
  }
  res.end();
}

function toEvent(
  req: IncomingMessage,
  url: URL,
  method: string,
  body: string | undefined,
): APIGatewayProxyEventV2WithIAMAuthorizer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && name !== "authorization")
      headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = name in query ? `${query[name]},${value}` : value;
  const now = new Date();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ""),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: "local",
      apiId: "local",
      authorizer: {
        iam: {
          accessKey: "",
          accountId: "local",
          callerId: LOCAL_ADMIN,
          cognitoIdentity: null,
          principalOrgId: "",
          userArn: LOCAL_ADMIN,
          userId: LOCAL_ADMIN,
        },
      },
      domainName: req.headers.host ?? "127.0.0.1",
      domainPrefix: "local",
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? "",
        userAgent: req.headers["user-agent"] ?? "",
      },
      requestId: crypto.randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body !== undefined && body !== "" ? { body } : {}),
    isBase64Encoded: false,
  };
}
