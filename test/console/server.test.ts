/*
 * The console server's gate: the one-time token, the session cookie, Host and Origin checks, no CORS, and
 * the proxy that signs for the browser (against a recording stand-in of the admin API).
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bearer, nodeTransport, Sha256, sigV4 } from "../../cli/api-client.ts";
import { type ConsoleServer, cookieOf, SESSION_COOKIE, startConsoleServer } from "../../console/server.ts";

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const TOKEN = "per-run-token-for-tests";
let upstream: Server;
let seen: Seen[] = [];
let consoleServer: ConsoleServer;
let port: number;

/** A raw request (node:http, so Host, Origin and Cookie are sent exactly as given). */
function send(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Exchanges the token for the session cookie; answers the cookie header to send. */
async function signIn(): Promise<string> {
  const answer = await send("GET", `/?token=${TOKEN}`);
  const cookie = [answer.headers["set-cookie"] ?? []].flat()[0] ?? "";
  return cookie.split(";")[0] ?? "";
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d;
    });
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(200, { "content-type": "application/json", etag: '"7"', "set-cookie": "upstream=1" });
      res.end(JSON.stringify({ items: [], from: "upstream" }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  consoleServer = await startConsoleServer({
    upstream: {
      baseUrl: new URL(`http://127.0.0.1:${upstreamPort}/admin/`),
      sign: bearer("upstream-admin-token"),
      transport: nodeTransport,
    },
    assets: { html: "<!doctype html><title>console</title>", script: "console.log(1)", style: "body{}" },
    token: TOKEN,
  });
  port = Number(new URL(consoleServer.origin).port);
});

afterAll(async () => {
  await consoleServer.close();
  await new Promise((resolve) => upstream.close(resolve));
});

beforeEach(() => {
  seen = [];
});

describe("console server", () => {
  it("binds 127.0.0.1 and prints an address that carries the per-run token", () => {
    expect(consoleServer.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(consoleServer.openUrl).toBe(`${consoleServer.origin}?token=${TOKEN}`);
  });

  it("refuses the page and the API without the session cookie, and never calls the admin API", async () => {
    const page = await send("GET", "/");
    const api = await send("GET", "/api/allowlist");
    const bearerOnly = await send("GET", "/api/allowlist", { authorization: "Bearer upstream-admin-token" });
    expect([page.status, api.status, bearerOnly.status]).toEqual([401, 401, 401]);
    expect(JSON.parse(api.body)).toMatchObject({ error: { code: "Unauthorized" } });
    expect(seen).toEqual([]);
  });

  it("exchanges the token once for an HttpOnly, SameSite=Strict cookie and redirects to the bare address", async () => {
    const fresh = await startConsoleServer({
      upstream: { baseUrl: new URL("http://127.0.0.1:9/"), sign: bearer("x"), transport: nodeTransport },
      assets: { html: "page", script: "", style: "" },
      token: "one-time",
    });
    try {
      const freshPort = Number(new URL(fresh.origin).port);
      const get = (path: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve) => {
          request(
            {
              host: "127.0.0.1",
              port: freshPort,
              path,
              headers: { host: `127.0.0.1:${freshPort}`, ...headers },
            },
            (res) => {
              res.resume();
              resolve({ status: res.statusCode ?? 0, headers: res.headers });
            },
          ).end();
        });
      const wrong = await get("/?token=not-it");
      const first = await get("/?token=one-time");
      const again = await get("/?token=one-time");
      expect(wrong.status).toBe(403);
      expect(first.status).toBe(303);
      expect(first.headers.location).toBe("/");
      const setCookie = [first.headers["set-cookie"] ?? []].flat()[0] ?? "";
      expect(setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
      expect(setCookie).toContain("HttpOnly");
      expect(setCookie).toContain("SameSite=Strict");
      expect(setCookie).toContain("Path=/");
      const session = cookieOf(setCookie.split(";")[0], SESSION_COOKIE);
      expect(session).toBeDefined();
      expect(session).not.toContain("one-time");
      // the token is spent: the same address without the cookie is refused
      expect(again.status).toBe(403);
      // with the cookie the page is served
      const page = await get("/", { cookie: `${SESSION_COOKIE}=${session}` });
      expect(page.status).toBe(200);
    } finally {
      await fresh.close();
    }
  });

  it("refuses a Host other than its own address (DNS rebinding)", async () => {
    const evil = await send("GET", `/?token=${TOKEN}`, { host: `evil.example:${port}` });
    const otherPort = await send("GET", "/api/allowlist", { host: `127.0.0.1:${port + 1}` });
    expect([evil.status, otherPort.status]).toEqual([403, 403]);
    expect(seen).toEqual([]);
  });

  describe("signed in", () => {
    let cookie: string;
    beforeAll(async () => {
      cookie = await signIn();
      expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=.+`));
    });

    it("serves the page, script and style with a strict content security policy and no CORS", async () => {
      const page = await send("GET", "/", { cookie });
      const script = await send("GET", "/app.js", { cookie });
      expect(page.status).toBe(200);
      expect(page.headers["content-type"]).toContain("text/html");
      expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
      expect(page.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(page.headers["x-content-type-options"]).toBe("nosniff");
      expect(script.body).toBe("console.log(1)");
      expect(script.headers["access-control-allow-origin"]).toBeUndefined();
    });

    it("proxies reads to the admin API, signed by the console, without the browser's cookie or credentials", async () => {
      const answer = await send("GET", "/api/allowlist?status=allowed&limit=5", {
        cookie,
        authorization: "Bearer from-the-browser",
        accept: "application/json",
      });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ items: [], from: "upstream" });
      expect(answer.headers.etag).toBe('"7"');
      expect(answer.headers["set-cookie"]).toBeUndefined();
      expect(seen).toHaveLength(1);
      expect(seen[0]?.url).toBe("/admin/allowlist?status=allowed&limit=5");
      expect(seen[0]?.headers.authorization).toBe("Bearer upstream-admin-token");
      expect(seen[0]?.headers.cookie).toBeUndefined();
    });

    it("forwards a change from its own origin with its body and preconditions", async () => {
      const answer = await send(
        "PUT",
        "/api/allowlist/dev%2F1",
        { cookie, origin: `http://127.0.0.1:${port}`, "content-type": "application/json", "if-match": '"3"' },
        '{"status":"allowed"}',
      );
      expect(answer.status).toBe(200);
      expect(seen[0]).toMatchObject({
        method: "PUT",
        url: "/admin/allowlist/dev%2F1",
        body: '{"status":"allowed"}',
      });
      expect(seen[0]?.headers["if-match"]).toBe('"3"');
    });

    it("refuses a change from another origin, or with no origin, and a cross-site read", async () => {
      const evil = await send(
        "POST",
        "/api/devices/d1/approve",
        { cookie, origin: "https://evil.example" },
        "",
      );
      const none = await send("POST", "/api/devices/d1/approve", { cookie }, "");
      const crossSite = await send("GET", "/api/allowlist", { cookie, "sec-fetch-site": "cross-site" });
      const nullOrigin = await send("DELETE", "/api/allowlist/d1", { cookie, origin: "null" });
      expect([evil.status, none.status, crossSite.status, nullOrigin.status]).toEqual([403, 403, 403, 403]);
      expect(seen).toEqual([]);
    });

    it("answers no CORS preflight and sends no Access-Control header", async () => {
      const preflight = await send("OPTIONS", "/api/allowlist", {
        cookie,
        origin: `http://127.0.0.1:${port}`,
        "access-control-request-method": "PUT",
      });
      expect(preflight.status).toBe(405);
      expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
      expect(preflight.headers["access-control-allow-methods"]).toBeUndefined();
      expect(seen).toEqual([]);
    });

    it("keeps the proxy under the admin API's base path", async () => {
      const answer = await send("GET", "/api/%2e%2e/%2e%2e/etc", { cookie });
      expect(seen.every((s) => s.url.startsWith("/admin/"))).toBe(true);
      expect(answer.status).not.toBe(500);
    });
  });

  it("signs each proxied call with SigV4 for a deployed API; the browser holds no AWS credential", async () => {
    const signer = new SignatureV4({
      service: "execute-api",
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDCONSOLETEST", secretAccessKey: "console-test-secret" },
      sha256: Sha256,
    });
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const signed = await startConsoleServer({
      upstream: {
        baseUrl: new URL(`http://127.0.0.1:${upstreamPort}/prod/`),
        sign: sigV4(signer),
        transport: nodeTransport,
      },
      assets: { html: "page", script: "", style: "" },
      token: "sigv4-run",
    });
    try {
      const signedPort = Number(new URL(signed.origin).port);
      const host = `127.0.0.1:${signedPort}`;
      const call = (path: string, headers: Record<string, string>, method = "GET", body?: string) =>
        new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>(
          (resolve) => {
            const req = request(
              { host: "127.0.0.1", port: signedPort, method, path, headers: { host, ...headers } },
              (res) => {
                let text = "";
                res.on("data", (d: Buffer) => {
                  text += d;
                });
                res.on("end", () =>
                  resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
                );
              },
            );
            req.end(body);
          },
        );
      const exchange = await call("/?token=sigv4-run", {});
      const cookie = String([exchange.headers["set-cookie"]].flat()[0]).split(";")[0] ?? "";
      const page = await call("/", { cookie });
      const answer = await call(
        "/api/devices/d1/approve",
        { cookie, origin: `http://${host}`, "content-type": "application/json" },
        "POST",
        "{}",
      );
      expect(answer.status).toBe(200);
      expect(page.body).not.toContain("AKIDCONSOLETEST");
      expect(seen).toHaveLength(1);
      expect(seen[0]?.url).toBe("/prod/devices/d1/approve");
      expect(String(seen[0]?.headers.authorization)).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDCONSOLETEST\/\d{8}\/eu-west-1\/execute-api\/aws4_request/,
      );
      expect(seen[0]?.headers["x-amz-date"]).toBeDefined();
    } finally {
      await signed.close();
    }
  });
});
