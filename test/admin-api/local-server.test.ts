/** The local admin server: bearer token, body limit, streamed import and export, over real HTTP. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminServer } from "../../local/admin-server.ts";
import { startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(() => worlds.close());

const TOKEN = "s3cret-token";

async function serve() {
  const w = await worlds.world();
  const server = await startAdminServer({ port: 0, token: TOKEN, deps: w.deps });
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
