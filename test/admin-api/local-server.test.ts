/** The local admin server: bearer token, body limit, streamed import and export, over real HTTP. */
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminServer } from "../../local/admin-server.ts";
import { startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(() => worlds.close());

const TOKEN = "s3cret-token";

async function serve(options: { importBodyBytes?: number } = {}) {
  const w = await worlds.world();
  const server = await startAdminServer({ port: 0, token: TOKEN, deps: w.deps, ...options });
  const request = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(init.headers ?? {}) },
    });
  return { ...w, server, request };
}

describe("local admin server", () => {
  it("answers 401 without the bearer token, or with a wrong one, and changes nothing", async () => {
    // Prepare
    const { request, server, scan } = await serve();
    const put = { method: "PUT", body: "{}", headers: { "if-none-match": "*" } };

    // Act
    const none = await request("/allowlist/dev-1", put, null);
    const wrong = await request("/allowlist/dev-1", put, "guess");
    const longer = await request("/allowlist/dev-1", put, `${TOKEN}x`);
    await server.close();

    // Assess
    expect([none.status, wrong.status, longer.status]).toEqual([401, 401, 401]);
    expect(await none.json()).toMatchObject({ error: { code: "Unauthorized" } });
    expect(await scan("allowlist")).toEqual([]);
  });

  it("serves the routes as local-admin", async () => {
    // Prepare
    const { request, server } = await serve();

    // Act
    const created = await request("/allowlist/dev-1", {
      method: "PUT",
      body: '{"profile":"p"}',
      headers: { "if-none-match": "*" },
    });
    const read = await request("/allowlist/dev-1");
    await server.close();

    // Assess
    expect(created.status).toBe(201);
    expect(read.headers.get("etag")).toBe('"1"');
    expect(await read.json()).toMatchObject({ deviceId: "dev-1", profile: "p", updatedBy: "local-admin" });
  });

  it("answers 413 for a body over 1 MiB on an ordinary route", async () => {
    // Prepare
    const { request, server, scan } = await serve();

    // Act
    const big = await request("/allowlist/dev-1", {
      method: "PUT",
      body: JSON.stringify({ note: "x".repeat(2 * 1024 * 1024) }),
      headers: { "if-none-match": "*" },
    });
    const answer = await big.json();
    await server.close();

    // Assess
    expect(big.status).toBe(413);
    expect(answer).toMatchObject({ error: { code: "PayloadTooLarge" } });
    expect(await scan("allowlist")).toEqual([]);
  });

  it("streams an import larger than the body limit, and streams the export back", async () => {
    // Prepare
    const { request, server } = await serve();
    const note = "n".repeat(1000);
    const body = Array.from({ length: 1100 }, (_, i) => JSON.stringify({ deviceId: `big-${i}`, note })).join(
      "\n",
    );

    // Act
    const imported = await request("/allowlist/import", {
      method: "POST",
      body,
      headers: { "content-type": "application/x-ndjson" },
    });
    const report = await imported.json();
    const exported = await request("/allowlist/export");
    const lines = (await exported.text()).trim().split("\n");
    await server.close();

    // Assess
    expect(body.length).toBeGreaterThan(1024 * 1024);
    expect(report).toMatchObject({ accepted: 1100, created: 1100, rejectedCount: 0 });
    expect(exported.headers.get("content-type")).toBe("application/x-ndjson");
    expect(lines).toHaveLength(1100);
  });
});

/**
 * Streams an import body in chunks (chunked transfer, no Content-Length), with backpressure, until the
 * server answers or the chunks run out; resolves with the answer and how many bytes had been sent by then.
 */
async function upload(
  url: string,
  chunks: Iterable<Buffer>,
): Promise<{ status: number; json: unknown; sentWhenAnswered: number }> {
  const req = httpRequest(`${url}/allowlist/import`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/x-ndjson" },
  });
  let sent = 0;
  let sentWhenAnswered: number | undefined;
  req.on("error", () => undefined); // the server closes the connection once it has answered
  const answered = new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    req.on("response", (res) => {
      sentWhenAnswered = sent;
      const parts: Buffer[] = [];
      res.on("data", (chunk: Buffer) => parts.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString("utf8")) }),
      );
      res.on("error", reject);
    });
  });
  for (const chunk of chunks) {
    if (sentWhenAnswered !== undefined || req.destroyed) break;
    sent += chunk.length;
    if (!req.write(chunk)) await Promise.race([once(req, "drain"), answered, once(req, "close")]);
  }
  if (!req.destroyed) req.end();
  const answer = await answered;
  return { ...answer, sentWhenAnswered: sentWhenAnswered ?? sent };
}

describe("local admin server: import limits", () => {
  it("stops reading at a line over 64 KiB, answers 400 naming it, and keeps the lines before it", async () => {
    // Prepare: one good line, then a line that never ends (64 MiB if the server read it all)
    const { server, scan } = await serve();
    const chunk = Buffer.alloc(64 * 1024, "a");
    function* body(): Generator<Buffer> {
      yield Buffer.from('{"deviceId":"before-1"}\n{"deviceId":"');
      for (let i = 0; i < 1024; i++) yield chunk;
    }

    // Act
    const answer = await upload(server.url, body());
    await server.close();

    // Assess
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({
      error: {
        code: "ImportRejected",
        message: expect.stringMatching(
          /^line 2 is longer than 65536 bytes.*the lines before it were imported/,
        ),
        details: { created: 1, stopped: { line: 2, limit: "line" } },
      },
    });
    expect(answer.sentWhenAnswered).toBeLessThan(16 * 1024 * 1024);
    expect(await scan("allowlist")).toEqual([expect.objectContaining({ deviceId: "before-1" })]);
  });

  it("answers 413 when a streamed body passes the limit, saying where it stopped and what was written", async () => {
    // Prepare: a server with a small body limit, and lines of about 1 KiB
    const { server, scan } = await serve({ importBodyBytes: 64 * 1024 });
    const note = "n".repeat(1000);
    function* body(): Generator<Buffer> {
      for (let i = 0; i < 200; i++) yield Buffer.from(`${JSON.stringify({ deviceId: `b-${i}`, note })}\n`);
    }

    // Act
    const answer = await upload(server.url, body());
    await server.close();

    // Assess
    expect(answer.status).toBe(413);
    const details = (answer.json as { error: { details: { created: number; stopped: { line: number } } } })
      .error.details;
    expect(answer.json).toMatchObject({
      error: { code: "PayloadTooLarge", details: { stopped: { limit: "body" } } },
    });
    expect(details.created).toBe(details.stopped.line - 1);
    expect(await scan("allowlist")).toHaveLength(details.created);
  });

  it("answers 413 before reading a body whose Content-Length is over the limit, writing nothing", async () => {
    // Prepare
    const { request, server, scan } = await serve({ importBodyBytes: 64 * 1024 });
    const body = Array.from({ length: 100 }, (_, i) =>
      JSON.stringify({ deviceId: `c-${i}`, note: "n".repeat(1000) }),
    );

    // Act
    const refused = await request("/allowlist/import", { method: "POST", body: body.join("\n") });
    const answer = await refused.json();
    await server.close();

    // Assess
    expect(refused.status).toBe(413);
    expect(answer).toMatchObject({
      error: { code: "PayloadTooLarge", message: expect.stringContaining("nothing was imported") },
    });
    expect(await scan("allowlist")).toEqual([]);
  });
});
