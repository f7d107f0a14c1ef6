/** AllowedPattern: linear-time evaluation, bounded inputs, patterns the engine cannot take refused. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import { ValidationError } from "../../../domain/errors.ts";
import { evaluateProvisioningTemplate } from "../../../domain/jitp/index.ts";
import { PATTERN_VALUE_MAX } from "../../../domain/jitp/parameters.ts";
import { provision } from "../../../domain/provision.ts";
import type { PolicyMapping } from "../../../domain/types.ts";
import { certificateIdOf, issueCertificate } from "../../../pki/certificates.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { allowed, CA_ID, makeWorld, testCa } from "../../support/world.ts";
import { deviceContext } from "./fixtures.ts";

const ORGANIZATION = "AWS::IoT::Certificate::Organization";
/** The reproduction's pattern: nested quantifiers, exponential for a backtracking engine on a near miss. */
const NESTED = "([a-zA-Z0-9]+-?)+";

/** A template whose thing takes the CN, with the Organization checked against `pattern`. */
const templateWith = (pattern: string) => ({
  Parameters: {
    "AWS::IoT::Certificate::CommonName": { Type: "String" },
    [ORGANIZATION]: { Type: "String", AllowedPattern: pattern },
  },
  Resources: {
    thing: {
      Type: "AWS::IoT::Thing",
      Properties: {
        ThingName: { Ref: "AWS::IoT::Certificate::CommonName" },
        AttributePayload: { org: { Ref: ORGANIZATION } },
      },
    },
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "ACTIVE" },
    },
  },
});

const mappingWith = (pattern: string): PolicyMapping => ({
  selector: "default",
  policy: { template: "sensor" },
  provisioningTemplate: { templateBody: templateWith(pattern) },
  version: 1,
});

describe("AllowedPattern", () => {
  it("explains a near miss of a nested-quantifier pattern promptly, as a denial", async () => {
    // Prepare: O = 30 letters and a "!", which a backtracking engine needs about 2^30 steps to refuse
    const world = makeAdminWorld({
      records: [{ deviceId: "org-1", status: "allowed", version: 1 }],
      mappings: [mappingWith(NESTED)],
    });
    const issued = await issueCertificate(await testCa(), {
      subject: { CN: "org-1", O: `${"a".repeat(30)}!` },
    });
    world.iot.addCertificate(certificateIdOf(issued.certificatePem), issued.certificatePem, CA_ID);
    const admin = new Admin(world.deps);

    // Act
    const started = performance.now();
    const explained = await admin.devices.explain({ certificatePem: issued.certificatePem });
    const elapsed = performance.now() - started;

    // Assess
    expect(explained).toMatchObject({ decision: "deny", reason: "template-parameter-invalid" });
    expect(elapsed).toBeLessThan(2000);
  });

  it("matches the whole value, as CloudFormation does", async () => {
    // Prepare
    const check = async (pattern: string, O: string) =>
      evaluateProvisioningTemplate(
        { templateBody: templateWith(pattern) },
        await deviceContext({ CN: "org-2", O }),
      ).ok;

    // Act
    const results = [
      await check(NESTED, "acme-corp"),
      await check("a|ab", "ab"),
      await check("[a-z]+", "acme!"),
      await check("[a-z]+", "!acme"),
    ];

    // Assess
    expect(results).toEqual([true, true, false, false]);
  });

  it.each([
    ["a backreference", "(a)\\1", /not a valid regular expression for the linear-time engine/],
    ["a lookahead", "(?=acme)[a-z]+", /not a valid regular expression for the linear-time engine/],
    ["a lookbehind", "(?<!x)[a-z]+", /not a valid regular expression for the linear-time engine/],
    ["an unbalanced group that would unanchor the pattern", "x)|(.*", /not a valid regular expression/],
    ["a pattern too large to check in bounded time", ".{0,1000}.{0,1000}", /too large to check/],
    ["a pattern over 1,024 characters", "a".repeat(1025), /longer than 1024 characters/],
  ])(
    "refuses saving a mapping whose template's AllowedPattern is %s, naming the field",
    async (_, pattern, message) => {
      // Prepare
      const world = makeAdminWorld();
      const admin = new Admin(world.deps);

      // Act
      const saving = admin.mappings.put(
        "admin",
        "default",
        { policy: { template: "sensor" }, provisioningTemplate: { templateBody: templateWith(pattern) } },
        { create: true },
      );

      // Assess
      const refused = await saving.then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(ValidationError);
      expect(refused instanceof ValidationError ? refused.issues : []).toEqual([
        {
          path: `provisioningTemplate.templateBody.Parameters.${ORGANIZATION}.AllowedPattern`,
          message: expect.stringMatching(message),
        },
      ]);
      expect(world.mappings.mappings.size).toBe(0);
    },
  );

  it("denies template-parameter-invalid for a stored mapping whose pattern the engine cannot take, creating nothing", async () => {
    // Prepare: a mapping written before patterns were held to the engine
    const w = makeWorld({ records: [allowed("org-3")], mappings: [mappingWith("(?=acme)[a-z]+")] });
    const { event } = await w.register({ subject: { CN: "org-3", O: "acme" } });

    // Act
    const result = await provision(event, w.deps);

    // Assess
    expect(result).toMatchObject({
      outcome: "denied",
      reason: "template-parameter-invalid",
      detail: expect.stringMatching(
        /AllowedPattern: is not a valid regular expression for the linear-time engine/,
      ),
    });
    expect(w.iot.statusOf(event.certificateId)).toBe("INACTIVE");
    expect(w.iot.things.size + w.iot.policies.size).toBe(0);
  });

  it(`fails the pattern check for a value longer than ${PATTERN_VALUE_MAX} characters, saying so`, async () => {
    // Prepare: the pattern would match the value; its length alone fails it
    const context = await deviceContext({ CN: "org-4", O: "acme" });
    const body = {
      ...templateWith("[a-z]+"),
      Parameters: {
        "AWS::IoT::Certificate::CommonName": { Type: "String" },
        [ORGANIZATION]: { Type: "String" },
        Site: { Type: "String", AllowedPattern: "[a-z]*" },
      },
    };

    // Act
    const long = evaluateProvisioningTemplate(
      { templateBody: body },
      { ...context, recordAttributes: { Site: "s".repeat(PATTERN_VALUE_MAX + 1) } },
    );
    const atTheCap = evaluateProvisioningTemplate(
      { templateBody: body },
      { ...context, recordAttributes: { Site: "s".repeat(PATTERN_VALUE_MAX) } },
    );

    // Assess
    expect(long).toMatchObject({
      ok: false,
      parameter: "Site",
      error: expect.stringMatching(/longer than 1024 characters, the most checked against AllowedPattern/),
    });
    expect(atTheCap.ok).toBe(true);
  });

  it("refuses a long near-miss number in linear time", async () => {
    // Prepare: 100,000 digits and an "x"; an ambiguous number pattern backtracks quadratically on it
    const context = await deviceContext({ CN: "num-1", O: "acme" });
    const body = {
      ...templateWith("[a-z]+"),
      Parameters: {
        "AWS::IoT::Certificate::CommonName": { Type: "String" },
        [ORGANIZATION]: { Type: "String" },
        Count: { Type: "Number" },
      },
    };
    const check = (value: string) =>
      evaluateProvisioningTemplate({ templateBody: body, parameters: { Count: value } }, context);

    // Act
    const started = performance.now();
    const refused = check(`${"1".repeat(100_000)}x`);
    const elapsed = performance.now() - started;
    const numbers = ["12", "-1.5", "1.", ".5", "2e10", "1.5E-3"].map((n) => check(n).ok);

    // Assess
    expect(refused).toMatchObject({
      ok: false,
      parameter: "Count",
      error: expect.stringMatching(/is not a number/),
    });
    expect(elapsed).toBeLessThan(2000);
    expect(numbers).toEqual([true, true, true, true, true, true]);
  });

  it("refuses a template body over 10,240 characters, which bounds the work of checking it", async () => {
    // Prepare: an Fn::Sub string of unclosed "${", which a scan for variables reads quadratically
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    const body = templateWith("[a-z]+");
    const sub = { "Fn::Sub": "${".repeat(200_000) };
    const big = {
      ...body,
      Resources: { ...body.Resources, thing: { ...body.Resources.thing, Properties: { ThingName: sub } } },
    };

    // Act
    const started = performance.now();
    const saving = await admin.mappings
      .put("admin", "default", { provisioningTemplate: { templateBody: big } }, { create: true })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const elapsed = performance.now() - started;

    // Assess
    expect(saving instanceof ValidationError ? saving.issues : []).toEqual([
      { path: "provisioningTemplate.templateBody", message: expect.stringMatching(/at most 10240/) },
    ]);
    expect(elapsed).toBeLessThan(2000);
  });
});
