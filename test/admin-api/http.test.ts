/** The HTTP side of the admin API without I/O: reading requests, and phrasing domain errors as responses. */
import { describe, expect, it } from "vitest";
import {
  DeviceBoundError,
  JitrError,
  PreconditionFailedError,
  PreconditionRequiredError,
} from "../../domain/errors.ts";
import { errorResponse, makeAdminHandler } from "../../handlers/admin.ts";
import {
  allowlistQueryOf,
  formatOfContentType,
  importOptionsOf,
  pageOf,
  preconditionOf,
} from "../../handlers/admin-http.ts";
import { makeAdminWorld } from "../support/admin-fakes.ts";
import { event } from "./support.ts";

describe("reading a request", () => {
  it.each([
    [{ "if-none-match": "*" }, { create: true }],
    [{ "if-match": '"3"' }, { version: 3 }],
    [{ "if-match": 'W/"4"' }, { version: 4 }],
    [{}, undefined],
  ])("reads the precondition of %j", (headers, precondition) => {
    // Prepare: the headers

    // Act
    const read = preconditionOf(headers);

    // Assess
    expect(read).toEqual(precondition);
  });

  it.each([
    [{ "if-match": "1", "if-none-match": "*" }, "If-Match"],
    [{ "if-none-match": '"1"' }, "If-None-Match"],
    [{ "if-match": "one" }, "If-Match"],
  ])("refuses the precondition %j naming %s", (headers, path) => {
    // Prepare: the headers

    // Act
    const read = () => preconditionOf(headers);

    // Assess
    expect(read).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path })] }));
  });

  it("reads a page (limit 1..1000, default 100) and the allowlist filters", () => {
    // Prepare
    const query = { limit: "5", cursor: "c", status: "blocked", lot: "L1" };

    // Act
    const page = pageOf(query);
    const filters = allowlistQueryOf(query);

    // Assess
    expect(page).toEqual({ limit: 5, cursor: "c" });
    expect(pageOf({})).toEqual({ limit: 100 });
    expect(filters).toEqual({ status: "blocked", lot: "L1" });
    expect(() => pageOf({ limit: "1001" })).toThrow("limit: must be a whole number from 1 to 1000");
    expect(() => allowlistQueryOf({ status: "x", lot: "" })).toThrow("2 fields are invalid");
    expect(allowlistQueryOf({ prefix: "thermo-", profile: "sensor" })).toEqual({
      prefix: "thermo-",
      profile: "sensor",
    });
    expect(() => allowlistQueryOf({ prefix: "", profile: "p".repeat(129) })).toThrow("2 fields are invalid");
  });

  it.each([
    ["text/csv; charset=utf-8", "csv"],
    ["application/csv", "csv"],
    ["application/x-ndjson", "jsonl"],
    ["application/jsonl", "jsonl"],
    ["text/plain", undefined],
    [undefined, undefined],
  ])("takes the import format of Content-Type %s to be %s", (contentType, format) => {
    // Prepare: the content type

    // Act
    const read = formatOfContentType(contentType);

    // Assess
    expect(read).toBe(format);
  });

  it("lets the query's format win over the Content-Type's, and refuses an unknown mode", () => {
    // Prepare
    const headers = { "content-type": "text/csv" };

    // Act
    const options = importOptionsOf({ format: "jsonl", mode: "all-or-nothing" }, headers);

    // Assess
    expect(options).toEqual({ mode: "all-or-nothing", format: "jsonl" });
    expect(() => importOptionsOf({ mode: "sometimes" }, headers)).toThrow("mode must be");
  });
});

describe("phrasing domain errors", () => {
  it.each([
    [
      new PreconditionRequiredError("allowlist record dev-1"),
      428,
      "writing allowlist record dev-1 needs If-None-Match: * (to create it) or If-Match: <version> (to update it)",
    ],
    [
      new PreconditionFailedError({ kind: "exists", what: "lot L1" }),
      412,
      "lot L1 exists already (If-None-Match: *); update it with If-Match",
    ],
    [
      new PreconditionFailedError({ kind: "missing", what: "lot L1", version: 2 }),
      412,
      "lot L1 does not exist (If-Match: 2)",
    ],
    [
      new PreconditionFailedError({ kind: "stale", what: "lot L1", version: 2, stored: 3 }),
      412,
      "lot L1 is at version 3, not 2; read it again and retry",
    ],
    [
      new DeviceBoundError("dev-1", "c".repeat(64), "ACTIVE"),
      409,
      `device dev-1 is bound to ACTIVE certificate ${"c".repeat(64)}; deprovision it first ` +
        "(POST /devices/dev-1/deprovision, or jitr deprovision dev-1)",
    ],
    [new JitrError("secret detail"), 500, "internal error"],
  ])("answers %s with %i", (error, statusCode, message) => {
    // Prepare: the error

    // Act
    const response = errorResponse(error);

    // Assess
    expect(response.statusCode).toBe(statusCode);
    expect(response.body).toMatchObject({ error: { message } });
  });
});

describe("the composed handler", () => {
  it("collects the export into the body and maps a failure while streaming to a logged 500", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [{ deviceId: "dev-1", status: "allowed", version: 1 }] });
    const logged: string[] = [];
    const handler = makeAdminHandler({ admin: world.deps, logError: (message) => logged.push(message) });
    const exported = await handler(event("GET", "/allowlist/export"));
    world.allowlist.failOn("list", () => new Error("secret detail"));

    // Act
    const failed = await handler(event("GET", "/allowlist/export"));

    // Assess
    expect(exported).toEqual({
      statusCode: 200,
      headers: { "content-type": "application/x-ndjson" },
      body: '{"deviceId":"dev-1","status":"allowed"}\n',
    });
    expect(failed.statusCode).toBe(500);
    expect(JSON.parse(failed.body ?? "")).toEqual({
      error: { code: "InternalError", message: "internal error" },
    });
    expect(logged).toEqual(["admin request failed"]);
  });
});
