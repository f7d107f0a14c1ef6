/** The Fetch API transport: the admin API client as a browser console runs it. */
import { describe, expect, it } from "vitest";
import { AdminClient, ApiError } from "../../api/client.ts";
import { type FetchFunction, fetchTransport } from "../../api/fetch-transport.ts";

/** A fetch that records each call and answers the given responses in turn. */
function fakeFetch(responses: Response[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetchFunction: FetchFunction = async (input, init) => {
    calls.push({ url: input.href, init });
    const response = responses.shift();
    if (response === undefined) throw new Error("no more answers");
    return response;
  };
  return { calls, fetchFunction };
}

describe("fetchTransport", () => {
  it("sends a write with its method, headers and body, and reads the ETag of the answer", async () => {
    // Prepare
    const { calls, fetchFunction } = fakeFetch([
      new Response(JSON.stringify({ lot: "L1", provisionedCount: 0, version: 1 }), {
        status: 201,
        headers: { ETag: '"1"', "Content-Type": "application/json" },
      }),
    ]);
    const client = new AdminClient({
      baseUrl: "https://admin.example.com",
      transport: fetchTransport(fetchFunction),
    });

    // Act
    const written = await client.lots.put("L1", { maxDevices: 3 }, { ifNoneMatch: "*" });

    // Assess
    expect(written).toMatchObject({ created: true, etag: '"1"', value: { lot: "L1" } });
    expect(calls).toEqual([
      {
        url: "https://admin.example.com/lots/L1",
        init: {
          method: "PUT",
          headers: { accept: "application/json", "if-none-match": "*", "content-type": "application/json" },
          body: '{"maxDevices":3}',
        },
      },
    ]);
  });

  it("uploads a Blob, streams an export, and turns an error answer into an ApiError", async () => {
    // Prepare
    const { calls, fetchFunction } = fakeFetch([
      new Response(JSON.stringify({ accepted: 1, rejectedCount: 0 })),
      new Response('{"deviceId":"a"}\n{"deviceId":"b"}\n'),
      new Response(JSON.stringify({ error: { code: "NotFound", message: "no lot L9" } }), { status: 404 }),
    ]);
    const client = new AdminClient({
      baseUrl: "https://admin.example.com",
      transport: fetchTransport(fetchFunction),
    });
    const file = new Blob(["deviceId\na\n"], { type: "text/csv" });

    // Act
    const report = await client.allowlist.import(file, { format: "csv" });
    let exported = "";
    for await (const chunk of await client.allowlist.export()) exported += chunk;
    const missing = await client.lots.get("L9").catch((e: unknown) => e);

    // Assess
    expect(report).toEqual({ accepted: 1, rejectedCount: 0 });
    expect(calls[0]?.init.body).toBe(file);
    expect(exported).toBe('{"deviceId":"a"}\n{"deviceId":"b"}\n');
    expect(missing).toBeInstanceOf(ApiError);
    expect(missing).toMatchObject({ status: 404, code: "NotFound", message: "no lot L9" });
  });
});
