import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificateFactory, type CertificateSpec, expand } from "../support/certificate-specs.ts";
import { startTestStack } from "../support/local-stack.ts";
import { readCases, snapshot, type TestStack } from "./corpus.ts";

/*
 * The bad-input corpus, admin side: requests with bad bodies, query strings, headers and routes, and bad
 * import files, sent to the admin API of the local stack. Each gets the answer its case names (status and
 * error code, or the import report), in the API's error shape, and changes nothing: not a table item, not
 * a ledger entry, not a thing in the registry.
 */

interface Answer {
  status: number;
  code?: string;
  /** What the JSON answer holds (a partial match). */
  body?: Record<string, unknown>;
}

interface AdminCase {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  auth?: "none" | "wrong";
  /** A certificate to build; its PEM replaces `{{certificatePem}}` in the body. */
  certificate?: CertificateSpec;
  expect: Answer;
}

interface ImportCase {
  name: string;
  query: string;
  contentType?: string;
  body: string;
  expect: Answer;
}

const adminCases = readCases<AdminCase>("admin.jsonl");
const importCases = readCases<ImportCase>("imports.jsonl");

let t: TestStack;
let certificates: CertificateFactory;

beforeAll(async () => {
  t = await startTestStack();
  certificates = new CertificateFactory(t.ca);
  const seeded = [
    await t.admin("PUT", "/allowlist/adm-seed", { note: "seed" }, { "if-none-match": "*" }),
    await t.admin("PUT", "/lots/lot-seed", { maxDevices: 2 }, { "if-none-match": "*" }),
  ];
  for (const answer of seeded) expect(answer.status).toBe(201);
});
afterAll(async () => {
  await t.close();
});

/** Sends one request as a client would; the status and the parsed answer. */
async function send(
  method: string,
  path: string,
  body: string | undefined,
  headers: Record<string, string>,
  auth: AdminCase["auth"],
) {
  const authorization: Record<string, string> =
    auth === "none"
      ? {}
      : { authorization: `Bearer ${auth === "wrong" ? "not-the-token" : t.stack.adminToken}` };
  const response = await fetch(`${t.stack.endpoints.adminApi}${path}`, {
    method,
    headers: { ...authorization, ...headers },
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, json };
}

function assessAnswer(answer: { status: number; json: unknown }, expected: Answer) {
  expect({ status: answer.status, body: answer.json }).toMatchObject({ status: expected.status });
  if (expected.status >= 400) {
    // every refusal is the API's error shape, with a message a user can act on
    expect(answer.json).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    expect((answer.json as { error: { message: string } }).error.message).not.toBe("internal error");
  }
  if (expected.code !== undefined) expect(answer.json).toMatchObject({ error: { code: expected.code } });
  if (expected.body !== undefined) expect(answer.json).toMatchObject(expected.body);
}

describe("admin requests", () => {
  it.each(adminCases.map((c) => [`${c.line}: ${c.name}`, c] as const))("%s", async (_, c) => {
    // Prepare
    let body: string | undefined;
    if (c.rawBody !== undefined) body = expand(c.rawBody) as string;
    else if (c.body !== undefined) {
      const pem = c.certificate === undefined ? undefined : await certificates.build(c.certificate);
      body = JSON.stringify(expand(c.body)).replace('"{{certificatePem}}"', () => JSON.stringify(pem));
    }
    const headers = { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...c.headers };
    const before = await snapshot(t);

    // Act
    const answer = await send(c.method, expand(c.path) as string, body, headers, c.auth);

    // Assess
    assessAnswer(answer, c.expect);
    expect(await snapshot(t)).toEqual(before);
  });
});

describe("allowlist imports", () => {
  it.each(importCases.map((c) => [`${c.line}: ${c.name}`, c] as const))("%s", async (_, c) => {
    // Prepare
    const before = await snapshot(t);

    // Act
    const answer = await send(
      "POST",
      `/allowlist/import${c.query}`,
      expand(c.body) as string,
      c.contentType !== undefined ? { "content-type": c.contentType } : {},
      undefined,
    );

    // Assess
    assessAnswer(answer, c.expect);
    expect(await snapshot(t)).toEqual(before);
  });
});

describe("the before/after check itself", () => {
  it("sees a write to a table and a change in the registry", async () => {
    // Prepare
    const before = await snapshot(t);

    // Act: a good request, and a certificate registered
    const saved = await t.admin("PUT", "/allowlist/adm-check", {}, { "if-none-match": "*" });
    const pem = await certificates.build({ subject: [{ CN: ["adm-check"] }] });
    await t.stack.aws.iot.autoRegisterCertificate(pem, t.caId);

    // Assess
    expect(saved.status).toBe(201);
    const after = await snapshot(t);
    expect(after.tables).not.toEqual(before.tables);
    expect(after.certificates).not.toEqual(before.certificates);
  });
});
