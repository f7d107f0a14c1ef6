import { describe, expect, it } from "vitest";
import { type DecisionInput, decide, policyNameFor } from "../../domain/decide.ts";
import type { CertificateFacts } from "../../domain/types.ts";
import { allowed, CA_ID, defaultMapping, eventFor } from "../support/world.ts";

const now = new Date("2026-06-01T12:00:00Z");
const facts: CertificateFacts = {
  fingerprint: "a".repeat(64),
  subject: "CN=dev-1",
  issuer: "CN=Test Fleet CA",
  subjectAttributes: { CN: "dev-1" },
  commonName: "dev-1",
  sanUris: [],
  sanDnsNames: [],
  notBefore: new Date("2026-01-01T00:00:00Z"),
  notAfter: new Date("2027-01-01T00:00:00Z"),
};

/** An input that provisions (row 12); each test changes one thing. */
const input = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  event: eventFor("a".repeat(64)),
  certificate: facts,
  deviceId: "dev-1",
  record: allowed("dev-1"),
  boundCertificate: undefined,
  lot: undefined,
  mappings: [defaultMapping],
  now,
  settings: { region: "eu-west-1", accountId: "111122223333", policyPrefix: "jitr-" },
  ...over,
});

const denial = (over: Partial<DecisionInput>) => {
  const decision = decide(input(over));
  if (decision.outcome !== "deny") throw new Error(`expected a denial, got ${decision.outcome}`);
  return [decision.reason, decision.certificateStatus];
};

describe("decide: the decision table, row by row", () => {
  it("row 1: no valid device id -> REVOKED invalid-device-id", () => {
    expect(denial({ deviceId: undefined })).toEqual(["invalid-device-id", "REVOKED"]);
    expect(denial({ certificate: undefined })).toEqual(["invalid-device-id", "REVOKED"]);
  });

  it("row 2: outside the certificate's validity -> REVOKED certificate-expired / certificate-not-yet-valid", () => {
    expect(denial({ now: new Date("2027-01-02T00:00:00Z") })).toEqual(["certificate-expired", "REVOKED"]);
    expect(denial({ now: new Date("2025-12-31T00:00:00Z") })).toEqual([
      "certificate-not-yet-valid",
      "REVOKED",
    ]);
  });

  it("row 3: no allowlist record -> INACTIVE not-allowlisted", () => {
    expect(denial({ record: undefined })).toEqual(["not-allowlisted", "INACTIVE"]);
  });

  it("row 4: blocked record -> REVOKED blocked", () => {
    expect(denial({ record: allowed("dev-1", { status: "blocked" }) })).toEqual(["blocked", "REVOKED"]);
  });

  it("row 5: record pins another CA -> REVOKED wrong-ca", () => {
    expect(denial({ record: allowed("dev-1", { caCertificateId: "d".repeat(64) }) })).toEqual([
      "wrong-ca",
      "REVOKED",
    ]);
    expect(decide(input({ record: allowed("dev-1", { caCertificateId: CA_ID }) })).outcome).toBe("allow");
  });

  it("row 6: record window excludes now -> INACTIVE entry-not-valid-now", () => {
    expect(denial({ record: allowed("dev-1", { notBefore: "2026-07-01T00:00:00Z" }) })).toEqual([
      "entry-not-valid-now",
      "INACTIVE",
    ]);
    expect(denial({ record: allowed("dev-1", { notAfter: "2026-05-01T00:00:00Z" }) })).toEqual([
      "entry-not-valid-now",
      "INACTIVE",
    ]);
    expect(
      decide(
        input({
          record: allowed("dev-1", { notBefore: "2026-05-01T00:00:00Z", notAfter: "2026-07-01T00:00:00Z" }),
        }),
      ).outcome,
    ).toBe("allow");
  });

  it("row 6 (lot): the record's lot window excludes now -> INACTIVE entry-not-valid-now", () => {
    const record = allowed("dev-1", { lot: "L1" });
    const lot = { lot: "L1", provisionedCount: 0, notAfter: "2026-05-01T00:00:00Z" };
    expect(denial({ record, lot })).toEqual(["entry-not-valid-now", "INACTIVE"]);
  });

  it("row 7: pinned fingerprint differs -> REVOKED fingerprint-mismatch", () => {
    expect(denial({ record: allowed("dev-1", { certificateFingerprint: "b".repeat(64) }) })).toEqual([
      "fingerprint-mismatch",
      "REVOKED",
    ]);
    const colonUpper = `${"AA:".repeat(31)}AA`;
    expect(decide(input({ record: allowed("dev-1", { certificateFingerprint: colonUpper }) })).outcome).toBe(
      "allow",
    );
  });

  it("row 8: bound to another ACTIVE certificate with rotation reject -> REVOKED already-provisioned", () => {
    const record = allowed("dev-1", { certificateId: "e".repeat(64) });
    const bound = { certificateId: "e".repeat(64), status: "ACTIVE" as const };
    expect(denial({ record, boundCertificate: bound })).toEqual(["already-provisioned", "REVOKED"]);
    // a certificate still being provisioned holds the device too
    expect(denial({ record, boundCertificate: { ...bound, status: "PENDING_ACTIVATION" } })).toEqual([
      "already-provisioned",
      "REVOKED",
    ]);
  });

  it("row 8: a suspended (INACTIVE) bound certificate still holds the device -> REVOKED already-provisioned", () => {
    // Prepare
    const record = allowed("dev-1", { certificateId: "e".repeat(64) });
    const suspended = { certificateId: "e".repeat(64), status: "INACTIVE" as const };

    // Act
    const rejected = denial({ record, boundCertificate: suspended });
    const replaced = decide(
      input({ record: { ...record, rotation: "replace" }, boundCertificate: suspended }),
    );
    const multiple = decide(
      input({ record: { ...record, rotation: "allow-multiple" }, boundCertificate: suspended }),
    );

    // Assess: reject holds the device; replace provisions and retires the suspended one; allow-multiple adds
    expect(rejected).toEqual(["already-provisioned", "REVOKED"]);
    expect(replaced).toMatchObject({ outcome: "allow", replaces: suspended.certificateId });
    expect(multiple).toMatchObject({ outcome: "allow", replaces: undefined });
  });

  it("row 8: other rotations, and a bound certificate no longer ACTIVE, let the new one in", () => {
    const bound = { certificateId: "e".repeat(64), status: "ACTIVE" as const };
    const replace = decide(
      input({
        record: allowed("dev-1", { rotation: "replace", certificateId: bound.certificateId }),
        boundCertificate: bound,
      }),
    );
    expect(replace).toMatchObject({
      outcome: "allow",
      replaces: bound.certificateId,
      expectedBinding: bound.certificateId,
    });
    const multiple = decide(
      input({
        record: allowed("dev-1", { rotation: "allow-multiple", certificateId: bound.certificateId }),
        boundCertificate: bound,
      }),
    );
    expect(multiple).toMatchObject({ outcome: "allow", replaces: undefined });
    const revokedOld = decide(
      input({
        record: allowed("dev-1", { certificateId: bound.certificateId }),
        boundCertificate: { ...bound, status: "REVOKED" },
      }),
    );
    expect(revokedOld).toMatchObject({
      outcome: "allow",
      replaces: undefined,
      expectedBinding: bound.certificateId,
    });
  });

  it("row 9: the lot is full -> INACTIVE lot-quota-exceeded", () => {
    const record = allowed("dev-1", { lot: "L1" });
    expect(denial({ record, lot: { lot: "L1", maxDevices: 2, provisionedCount: 2 } })).toEqual([
      "lot-quota-exceeded",
      "INACTIVE",
    ]);
    expect(denial({ record, lot: undefined })).toEqual(["lot-quota-exceeded", "INACTIVE"]);
    expect(decide(input({ record, lot: { lot: "L1", maxDevices: 2, provisionedCount: 1 } }))).toMatchObject({
      outcome: "allow",
      reserveLot: "L1",
    });
    // a device provisioned before is already counted in its lot
    const again = allowed("dev-1", { lot: "L1", provisionedAt: "2026-01-01T00:00:00Z" });
    expect(
      decide(input({ record: again, lot: { lot: "L1", maxDevices: 2, provisionedCount: 2 } })),
    ).toMatchObject({
      outcome: "allow",
      reserveLot: undefined,
    });
  });

  it("row 10: no mapping resolves -> INACTIVE no-policy", () => {
    expect(denial({ mappings: [] })).toEqual(["no-policy", "INACTIVE"]);
    expect(
      denial({ mappings: [{ selector: "default", policy: { template: "no-such" }, version: 1 }] }),
    ).toEqual(["no-policy", "INACTIVE"]);
    // a mapping for another device does not resolve for this one
    expect(denial({ mappings: [{ ...defaultMapping, selector: "device:dev-2" }] })).toEqual([
      "no-policy",
      "INACTIVE",
    ]);
  });

  it("row 10: a rendered policy over the AWS size limit does not resolve -> INACTIVE no-policy", () => {
    const statement = {
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: `arn:aws:iot:*:*:topic/${"x".repeat(100)}`,
    };
    const document = { Version: "2012-10-17", Statement: Array.from({ length: 20 }, () => statement) };
    const decision = decide(input({ mappings: [{ selector: "default", policy: { document }, version: 1 }] }));
    expect(decision).toMatchObject({ outcome: "deny", reason: "no-policy", certificateStatus: "INACTIVE" });
    expect(decision.outcome === "deny" && decision.detail).toMatch(/2048/);
  });

  it("row 11: a provisioning template that cannot be evaluated -> INACTIVE template-parameter-invalid", () => {
    const mapping = {
      selector: "default",
      provisioningTemplate: { templateBody: { Resources: {} } },
      version: 1,
    };
    expect(denial({ mappings: [mapping] })).toEqual(["template-parameter-invalid", "INACTIVE"]);
  });

  it("row 11a: a template naming a thing other than the device id -> INACTIVE thing-name-mismatch", () => {
    // Prepare: one template names the thing by a literal, one by the CN (the device id here)
    const named = (ThingName: unknown) => ({
      selector: "default",
      policy: { template: "sensor" },
      provisioningTemplate: {
        templateBody: {
          Parameters: { "AWS::IoT::Certificate::CommonName": { Type: "String" } },
          Resources: { thing: { Type: "AWS::IoT::Thing", Properties: { ThingName } } },
        },
      },
      version: 1,
    });

    // Act
    const literal = decide(input({ mappings: [named("someone-else")] }));
    const fromCn = decide(input({ mappings: [named({ Ref: "AWS::IoT::Certificate::CommonName" })] }));

    // Assess
    expect(literal).toMatchObject({
      outcome: "deny",
      reason: "thing-name-mismatch",
      certificateStatus: "INACTIVE",
      detail: expect.stringContaining('"someone-else"'),
    });
    expect(fromCn).toMatchObject({ outcome: "allow", thing: { thingName: "dev-1" } });
  });

  it("row 11 wins over row 11a: a template that cannot be evaluated is template-parameter-invalid", () => {
    // Prepare: the thing name is not the device id, and a parameter has no value
    const mapping = {
      selector: "default",
      policy: { template: "sensor" },
      provisioningTemplate: {
        templateBody: {
          Parameters: { Missing: { Type: "String" } },
          Resources: {
            thing: {
              Type: "AWS::IoT::Thing",
              Properties: { ThingName: "other", AttributePayload: { m: { Ref: "Missing" } } },
            },
          },
        },
      },
      version: 1,
    };

    // Act
    const result = denial({ mappings: [mapping] });

    // Assess
    expect(result).toEqual(["template-parameter-invalid", "INACTIVE"]);
  });

  it("row 12: otherwise provision, with thing, groups, attributes and the rendered policy", () => {
    const record = allowed("dev-1", {
      thingGroups: ["g2"],
      attributes: { site: "s1", model: "m9" },
      thingType: "Sensor",
    });
    const mapping = {
      selector: "thingType:Sensor",
      policy: { template: "sensor" },
      thingGroups: ["g1", "g2"],
      attributes: { model: "m1", tier: "gold" },
      version: 3,
    };
    const decision = decide(input({ record, mappings: [mapping, defaultMapping] }));
    if (decision.outcome !== "allow") throw new Error(decision.detail);
    expect(decision.mapping.selector).toBe("thingType:Sensor");
    expect(decision.thing).toEqual({
      thingName: "dev-1",
      thingTypeName: "Sensor",
      attributes: { site: "s1", model: "m9", tier: "gold" },
      thingGroups: ["g1", "g2"],
    });
    expect(decision.policy.policyName).toBe("jitr-sensor");
    expect(decision.policy.perDevice).toBe(false);
    expect(decision.policy.document).toContain(
      "arn:aws:iot:eu-west-1:111122223333:client/${iot:Connection.Thing.ThingName}",
    );
  });

  it("the first matching row wins: blocked beats wrong CA, expiry beats not-allowlisted", () => {
    const record = allowed("dev-1", { status: "blocked", caCertificateId: "d".repeat(64) });
    expect(denial({ record })).toEqual(["blocked", "REVOKED"]);
    expect(denial({ record: undefined, now: new Date("2030-01-01T00:00:00Z") })).toEqual([
      "certificate-expired",
      "REVOKED",
    ]);
    expect(denial({ deviceId: undefined, record: undefined })).toEqual(["invalid-device-id", "REVOKED"]);
  });

  it("per-device templates get a per-device policy name within AWS's pattern", () => {
    const record = allowed("dev:1", { attributes: { site: "north" } });
    const decision = decide(
      input({
        deviceId: "dev:1",
        record,
        mappings: [{ selector: "default", policy: { template: "per-device-sensor" }, version: 1 }],
      }),
    );
    if (decision.outcome !== "allow") throw new Error(decision.detail);
    expect(decision.policy.perDevice).toBe(true);
    expect(decision.policy.policyName).toMatch(/^jitr-per-device-sensor-dev_1-[0-9a-f]{8}$/);
    expect(decision.policy.document).toContain("topic/sites/north/devices/dev:1/telemetry");
  });
});

describe("policyNameFor", () => {
  it("keeps names inside [\\w+=,.@-]{1,128} and distinct after sanitizing", () => {
    expect(policyNameFor("jitr-", "sensor")).toBe("jitr-sensor");
    const a = policyNameFor("jitr-", "t", "a:b");
    const b = policyNameFor("jitr-", "t", "a_b");
    expect(a).not.toBe(b);
    const long = policyNameFor("jitr-", "t", "x".repeat(128));
    expect(long.length).toBeLessThanOrEqual(128);
    expect(long).toMatch(/^[\w+=,.@-]+$/);
  });
});

describe("quarantine setting", () => {
  it("`revoke` turns every reversible denial into REVOKED, and leaves provisioning alone", () => {
    const strict = (over: Partial<DecisionInput>) =>
      decide(
        input({
          ...over,
          settings: {
            region: "eu-west-1",
            accountId: "111122223333",
            policyPrefix: "jitr-",
            quarantine: "revoke",
          },
        }),
      );
    expect(strict({ record: undefined })).toMatchObject({
      outcome: "deny",
      reason: "not-allowlisted",
      certificateStatus: "REVOKED",
    });
    expect(strict({ mappings: [] })).toMatchObject({ reason: "no-policy", certificateStatus: "REVOKED" });
    expect(strict({})).toMatchObject({ outcome: "allow" });
    expect(denial({ record: undefined })).toEqual(["not-allowlisted", "INACTIVE"]);
  });
});
