import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JitrError } from "../../domain/errors.ts";
import { evaluateProvisioningTemplate, validateProvisioningTemplate } from "../../domain/jitp/index.ts";
import type { CertificateFacts } from "../../domain/types.ts";

/*
 * JITP evaluation fails only with the service's own answers: whatever the template (AWS's examples with
 * any part replaced by any JSON or any intrinsic function, or no template at all) and whatever the device,
 * validation and evaluation return a result (a problem list, or ok / an error naming the problem) and never
 * throw anything but the service's own errors (domain/errors.ts).
 */

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "jitp");
const templates: unknown[] = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .map((f) => JSON.parse(readFileSync(join(FIXTURES, f), "utf8")) as Record<string, unknown>)
  .map((t) => (typeof t.templateBody === "string" ? JSON.parse(t.templateBody) : t));

const name = fc.oneof(
  fc.constantFrom(
    "ThingName",
    "SerialNumber",
    "AWS::IoT::Certificate::CommonName",
    "AWS::IoT::Certificate::Id",
    "AWS::Region",
    "AWS::NoValue",
    "thing",
    "policy",
    "certificate",
    "__proto__",
    "constructor",
  ),
  fc.string({ maxLength: 12 }),
);
const leaf = fc.oneof(fc.jsonValue({ maxDepth: 2 }), name);
/** Any JSON, or an intrinsic function with arguments of any shape (cycles through Ref included). */
const node: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.record({ Ref: name }),
    fc.record({
      "Fn::Sub": fc.oneof(
        fc.string(),
        fc.constant("${ThingName}/${Missing}/${!Literal}"),
        fc.tuple(fc.string(), fc.dictionary(name, tie("node"), { maxKeys: 2 })),
      ),
    }),
    fc.record({
      "Fn::Join": fc.tuple(
        fc.oneof(fc.string({ maxLength: 2 }), tie("node")),
        fc.array(tie("node"), { maxLength: 3 }),
      ),
    }),
    fc.record({
      "Fn::Select": fc.tuple(
        fc.oneof(fc.integer({ min: -2, max: 5 }), fc.string({ maxLength: 3 }), tie("node")),
        tie("node"),
      ),
    }),
    fc.record({ "Fn::Split": fc.tuple(fc.oneof(fc.constantFrom(",", "", "/"), tie("node")), tie("node")) }),
    fc.record({ "Fn::If": fc.array(tie("node"), { maxLength: 4 }) }),
    fc.record({ "Fn::FindInMap": fc.array(tie("node"), { maxLength: 4 }) }),
    fc.record({ "Fn::Base64": tie("node") }),
    fc.record({ "Fn::Equals": fc.array(tie("node"), { maxLength: 3 }) }),
    fc.record({ "Fn::Not": tie("node"), "Fn::And": tie("node") }),
    fc.record({ Condition: name }),
    fc.array(tie("node"), { maxLength: 3 }),
    fc.dictionary(name, tie("node"), { maxKeys: 3 }),
  ),
})).node;

/** Every place in a JSON tree a value can be put, as a path of keys and indexes. */
function placesIn(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  const places: (string | number)[][] = [path];
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) places.push(...placesIn(v, [...path, i]));
  } else if (value !== null && typeof value === "object")
    for (const [k, v] of Object.entries(value)) places.push(...placesIn(v, [...path, k]));
  return places;
}

function replaced(value: unknown, path: (string | number)[], replacement: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return replacement;
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? replaced(v, rest, replacement) : v));
  if (value !== null && typeof value === "object")
    return { ...value, [head]: replaced((value as Record<string, unknown>)[head], rest, replacement) };
  return value;
}

/** As the template arrives: through JSON (the API body, the table), so plain objects only. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value) ?? "null");

/** An example template with one to three parts replaced. */
const mutatedTemplate = fc
  .tuple(fc.constantFrom(...templates), fc.array(fc.tuple(fc.nat(), node), { minLength: 1, maxLength: 3 }))
  .map(([template, edits]) =>
    edits.reduce<unknown>((t, [at, value]) => {
      const places = placesIn(t);
      return replaced(t, places[at % places.length] ?? [], value);
    }, template),
  )
  .map(asJson);
const templateBody = fc.oneof(
  { arbitrary: fc.constantFrom(...templates), weight: 2 },
  { arbitrary: mutatedTemplate, weight: 6 },
  { arbitrary: mutatedTemplate.map((t) => JSON.stringify(t) ?? ""), weight: 1 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }).map(asJson), weight: 1 },
);

const text = fc.oneof(
  { arbitrary: fc.stringMatching(/^[a-zA-Z0-9-]{1,12}$/), weight: 3 },
  { arbitrary: fc.string({ maxLength: 16 }), weight: 1 },
);
const facts = (cn: string, attributes: Record<string, string>): CertificateFacts => ({
  fingerprint: "a".repeat(64),
  subject: `CN=${cn}`,
  issuer: "CN=Fleet",
  subjectAttributes: { CN: cn, ...attributes },
  commonName: cn,
  sanUris: [],
  sanDnsNames: [],
  notBefore: new Date(0),
  notAfter: new Date(4e12),
});

/** Runs `fn`; a throw must be one of the service's own errors. */
function answers<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    expect(error).toBeInstanceOf(JitrError);
    return undefined;
  }
}

describe("JITP templates, whatever they hold", () => {
  it("validation answers with problems, never a crash", () => {
    fc.assert(
      fc.property(
        templateBody,
        fc.dictionary(name, fc.string({ maxLength: 8 }), { maxKeys: 2 }),
        (body, parameters) => {
          const validation = answers(() => validateProvisioningTemplate({ templateBody: body, parameters }));
          if (validation !== undefined && !validation.ok) {
            for (const problem of validation.errors) expect(problem.message).toEqual(expect.any(String));
          }
        },
      ),
      {
        numRuns: 600,
        // found by this property: a key that names a member of Object.prototype
        examples: [
          [
            JSON.parse(
              '{"Resources":{"thing":{"Type":"AWS::IoT::Thing","Properties":{"__proto__":0,"constructor":1,"toString":2}}}}',
            ),
            {},
          ],
        ],
      },
    );
  });

  it("evaluation answers ok or an error, never a crash", () => {
    let evaluated = 0;
    fc.assert(
      fc.property(
        templateBody,
        fc.record({
          deviceId: text,
          subject: fc.record(
            { O: text, OU: text, C: text, serialNumber: text, L: text },
            { requiredKeys: [] },
          ),
          record: fc.dictionary(name, text, { maxKeys: 3 }),
          mapping: fc.dictionary(name, text, { maxKeys: 3 }),
        }),
        (body, device) => {
          const result = answers(() =>
            evaluateProvisioningTemplate(
              { templateBody: body as string | Record<string, unknown>, parameters: device.mapping },
              {
                deviceId: device.deviceId,
                certificateId: "a".repeat(64),
                certificate: facts(device.deviceId, device.subject),
                recordAttributes: device.record,
                region: "eu-west-1",
                accountId: "111122223333",
              },
            ),
          );
          if (result === undefined) return;
          if (result.ok) evaluated += 1;
          else expect(result.error).toMatch(/\S/);
        },
      ),
      { numRuns: 800 },
    );
    // the property held on real evaluations too, not only on refusals
    expect(evaluated).toBeGreaterThan(20);
  });
});
