/** The admin API client over a fake transport: what it sends, and how it reads the answers. */
import { describe, expect, it } from "vitest";
import { AdminClient, ApiError, type ApiRequest, type ApiResponse, orNone, pages } from "../../api/client.ts";
import type { ImportReport } from "../../api/contract.ts";

/** A streamed body as a test hands it over (the client must pass it through untouched). */
interface Upload {
  upload: string;
}

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Sent chunk by chunk (a streamed answer). */
  chunks?: string[];
}

function responseOf(answer: Answer): ApiResponse {
  const chunks =
    answer.chunks ??
    (answer.body === undefined
      ? []
      : [typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body)]);
  return {
    status: answer.status ?? 200,
    headers: answer.headers ?? {},
    text: async () => chunks.join(""),
    chunks: async function* () {
      yield* chunks;
    },
  };
}

/** A client whose transport records each request and answers the given answers in turn. */
function fakeApi(answers: Answer[], baseUrl = "https://admin.example.com/prod") {
  const sent: ApiRequest<Upload>[] = [];
  const client = new AdminClient<Upload>({
    baseUrl,
    transport: async (request) => {
      sent.push(request);
      return responseOf(answers.shift() ?? { status: 200 });
    },
    sign: async (request) => ({ ...request, headers: { ...request.headers, authorization: "Bearer t" } }),
  });
  const request = (index: number): ApiRequest<Upload> => {
    const r = sent[index];
    if (r === undefined) throw new Error(`no request ${index}`);
    return r;
  };
  return { client, sent, request };
}

const record = { deviceId: "dev/1", status: "allowed", version: 3 };

describe("AdminClient: requests", () => {
  it("encodes names in paths, under the base URL's own path", async () => {
    // Prepare
    const { client, request } = fakeApi([
      { body: record },
      { body: { selector: "device:a#1", version: 1 } },
      { body: { lot: "L 1", provisionedCount: 0 } },
      { body: { outcome: "skipped" } },
      { body: {} },
      { body: { items: [] } },
    ]);

    // Act
    await client.allowlist.get("dev/1");
    await client.mappings.get("device:a#1");
    await client.lots.get("L 1");
    await client.devices.approve("dev?1");
    await client.devices.deprovision("dev%1");
    await client.devices.history("a/b");

    // Assess
    expect([0, 1, 2, 3, 4, 5].map((i) => `${request(i).method} ${request(i).url.href}`)).toEqual([
      "GET https://admin.example.com/prod/allowlist/dev%2F1",
      "GET https://admin.example.com/prod/mappings/device%3Aa%231",
      "GET https://admin.example.com/prod/lots/L%201",
      "POST https://admin.example.com/prod/devices/dev%3F1/approve",
      "POST https://admin.example.com/prod/devices/dev%251/deprovision",
      "GET https://admin.example.com/prod/devices/a%2Fb/history",
    ]);
  });

  it("asks for JSON, sends JSON bodies with their content type, and signs every request", async () => {
    // Prepare
    const { client, request } = fakeApi([{ body: { decision: "allow" } }, { body: { items: [] } }]);

    // Act
    await client.devices.explain({ deviceId: "dev-1" });
    await client.mappings.list();

    // Assess
    expect(request(0).headers).toEqual({
      accept: "application/json",
      "content-type": "application/json",
      authorization: "Bearer t",
    });
    expect(request(0).body).toBe('{"deviceId":"dev-1"}');
    expect(request(1).headers).toEqual({ accept: "application/json", authorization: "Bearer t" });
    expect(request(1).body).toBeUndefined();
  });

  it("writes with If-None-Match: * to create and If-Match to update; deletes with If-Match when given", async () => {
    // Prepare
    const { client, request } = fakeApi([
      { status: 201, body: { ...record, version: 1 }, headers: { etag: '"1"' } },
      { status: 200, body: { ...record, version: 2 }, headers: { etag: '"2"' } },
      { status: 204 },
      { status: 204 },
    ]);

    // Act
    const created = await client.allowlist.put("dev-1", { status: "allowed" }, { ifNoneMatch: "*" });
    const updated = await client.lots.put("L1", { maxDevices: 3 }, { ifMatch: '"1"' });
    await client.mappings.remove("default", { ifMatch: "4" });
    await client.allowlist.remove("dev-1");

    // Assess
    expect(created).toMatchObject({ created: true, etag: '"1"', value: { version: 1 } });
    expect(updated).toMatchObject({ created: false, etag: '"2"' });
    expect(request(0)).toMatchObject({ method: "PUT", body: '{"status":"allowed"}' });
    expect(request(0).headers["if-none-match"]).toBe("*");
    expect(request(0).headers["if-match"]).toBeUndefined();
    expect(request(1).headers["if-match"]).toBe('"1"');
    expect(request(2)).toMatchObject({ method: "DELETE" });
    expect(request(2).headers["if-match"]).toBe("4");
    expect(request(3).headers["if-match"]).toBeUndefined();
  });

  it("dry-runs a mapping with dryRun=true and no precondition", async () => {
    // Prepare
    const whatIf = { dryRun: true, devicesExamined: 2, affected: [], affectedCount: 0, mapping: undefined };
    const { client, request } = fakeApi([{ body: whatIf }]);

    // Act
    const answer = await client.mappings.whatIf("profile:p", { policy: { template: "sensor" } });

    // Assess
    expect(answer).toEqual({ dryRun: true, devicesExamined: 2, affected: [], affectedCount: 0 });
    expect(request(0).method).toBe("PUT");
    expect(request(0).url.pathname).toBe("/prod/mappings/profile%3Ap");
    expect(request(0).url.search).toBe("?dryRun=true");
    expect(Object.keys(request(0).headers).filter((h) => h.startsWith("if-"))).toEqual([]);
  });

  it("imports a text body or an upload with the format's content type, and streams an export back", async () => {
    // Prepare
    const report = { mode: "best-effort", accepted: 1, rejectedCount: 0 };
    const { client, request } = fakeApi([
      { body: report },
      { body: report },
      { chunks: ['{"deviceId":"a"}\n{"dev', 'iceId":"b"}\n'] },
    ]);
    const upload = { upload: "deviceId\na\n" };

    // Act
    const fromText = await client.allowlist.import('{"deviceId":"a"}\n');
    const fromUpload = await client.allowlist.import(upload, { mode: "all-or-nothing", format: "csv" });
    const chunks: string[] = [];
    for await (const chunk of await client.allowlist.export()) chunks.push(chunk);

    // Assess
    expect(fromText).toEqual(report);
    expect(fromUpload).toEqual(report);
    expect(request(0)).toMatchObject({ method: "POST", body: '{"deviceId":"a"}\n' });
    expect(request(0).url.pathname).toBe("/prod/allowlist/import");
    expect(request(0).headers["content-type"]).toBe("application/x-ndjson");
    expect(request(1).body).toBe(upload);
    expect(request(1).headers["content-type"]).toBe("text/csv");
    expect(request(1).url.search).toBe("?mode=all-or-nothing&format=csv");
    expect(request(2).url.pathname).toBe("/prod/allowlist/export");
    expect(chunks.join("")).toBe('{"deviceId":"a"}\n{"deviceId":"b"}\n');
  });
});

describe("AdminClient: answers", () => {
  it("reads the ETag from the header, else from the record's version", async () => {
    // Prepare
    const { client } = fakeApi([
      { body: record, headers: { etag: 'W/"3"' } },
      { body: { lot: "L1", provisionedCount: 0 } },
    ]);

    // Act
    const withHeader = await client.allowlist.get("dev-1");
    const withoutHeader = await client.lots.get("L1");

    // Assess
    expect(withHeader).toEqual({ value: record, etag: 'W/"3"' });
    expect(withoutHeader.etag).toBe('"0"');
  });

  it("turns an error body into one ApiError with its status, code, message and details", async () => {
    // Prepare
    const details = [{ path: "status", message: "must be allowed or blocked" }];
    const { client } = fakeApi([
      { status: 400, body: { error: { code: "ValidationError", message: "status: bad", details } } },
      { status: 412, body: { error: { code: "PreconditionFailed", message: "at version 4, not 3" } } },
      { status: 502, body: "<html>Bad Gateway</html>" },
    ]);

    // Act
    const invalid = await client.allowlist.put("dev-1", { status: "maybe" }).catch((e: unknown) => e);
    const stale = await client.mappings.put("default", {}, { ifMatch: '"3"' }).catch((e: unknown) => e);
    const gateway = await client.lots.list().catch((e: unknown) => e);

    // Assess
    expect(invalid).toBeInstanceOf(ApiError);
    expect(invalid).toMatchObject({ status: 400, code: "ValidationError", message: "status: bad", details });
    expect(stale).toMatchObject({ status: 412, code: "PreconditionFailed", details: undefined });
    expect(gateway).toMatchObject({
      status: 502,
      code: "Error",
      message: "HTTP 502: <html>Bad Gateway</html>",
    });
  });

  it("hands an all-or-nothing import's report back as the details of ImportRejected", async () => {
    // Prepare
    const report = { mode: "all-or-nothing", rejectedCount: 1, rejected: [{ line: 2, reason: "bad" }] };
    const { client } = fakeApi([
      {
        status: 400,
        body: { error: { code: "ImportRejected", message: "1 line(s) are invalid", details: report } },
      },
    ]);

    // Act
    const error = await client.allowlist.import("x\n", { mode: "all-or-nothing" }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe("ImportRejected");
    expect((error as ApiError).details as Partial<ImportReport>).toEqual(report);
  });

  it("answers undefined for a missing record with orNone, and rethrows other errors", async () => {
    // Prepare
    const { client } = fakeApi([
      { status: 404, body: { error: { code: "NotFound", message: "no allowlist record for device x" } } },
      { status: 401, body: { error: { code: "Unauthorized", message: "missing or wrong bearer token" } } },
    ]);

    // Act
    const missing = await orNone(client.allowlist.get("x"));
    const refused = await orNone(client.allowlist.get("x")).catch((e: unknown) => e);

    // Assess
    expect(missing).toBeUndefined();
    expect(refused).toMatchObject({ status: 401, message: "missing or wrong bearer token" });
  });

  it("passes a transport failure through as it is", async () => {
    // Prepare
    const unreachable = new Error("cannot reach the admin API");
    const client = new AdminClient({
      baseUrl: "http://127.0.0.1:1",
      transport: () => Promise.reject(unreachable),
    });

    // Act
    const error = await client.allowlist.list().catch((e: unknown) => e);

    // Assess
    expect(error).toBe(unreachable);
  });
});

describe("AdminClient: pages", () => {
  it("sends the filters and page of a listing, leaving out what is not given", async () => {
    // Prepare
    const { client, request } = fakeApi([{ body: { items: [] } }, { body: { items: [] } }]);

    // Act
    await client.allowlist.list({ status: "blocked", lot: "L 1", limit: 2, cursor: "abc=" });
    await client.allowlist.list({ lot: undefined, limit: "100" });

    // Assess
    expect(request(0).url.search).toBe("?status=blocked&lot=L+1&limit=2&cursor=abc%3D");
    expect(request(1).url.search).toBe("?limit=100");
  });

  it("follows the cursor from the first page to the last", async () => {
    // Prepare
    const { client, request } = fakeApi([
      { body: { items: [{ lot: "a" }], cursor: "c1" } },
      { body: { items: [{ lot: "b" }], cursor: "c2" } },
      { body: { items: [{ lot: "c" }] } },
    ]);

    // Act
    const lots: string[] = [];
    for await (const page of pages((cursor) => client.lots.list({ limit: 1, cursor }))) {
      lots.push(...page.items.map((l) => l.lot));
    }

    // Assess
    expect(lots).toEqual(["a", "b", "c"]);
    expect([0, 1, 2].map((i) => request(i).url.search)).toEqual([
      "?limit=1",
      "?limit=1&cursor=c1",
      "?limit=1&cursor=c2",
    ]);
  });
});
