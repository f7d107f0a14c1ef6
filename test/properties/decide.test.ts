import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DecisionInput, decide } from "../../domain/decide.ts";
import type {
  AllowlistRecord,
  CertificateFacts,
  CertificateStatus,
  DenialReason,
  Lot,
  PolicyMapping,
} from "../../domain/types.ts";

/*
 * `decide` never allows what a row of the decision table denies, whatever the record, the lot, the
 * binding, the mappings and the clock: an oracle written from the table's rows 1-10 says which row must
 * deny, and the decision must be that row's denial (the first row that matches wins), with the status
 * the table gives it.
 */

const CA = "c".repeat(64);
const OTHER_CA = "d".repeat(64);
const FINGERPRINT = "a".repeat(64);
const DAY = 86_400_000;
const BASE = Date.parse("2026-06-01T12:00:00Z");

/** Dates as a record may hold them: valid instants around now, and strings that are no date at all. */
const dateText = fc.oneof(
  fc.integer({ min: -400, max: 400 }).map((days) => new Date(BASE + days * DAY).toISOString()),
  fc.constantFrom("", "soon", "2026-13-01", "not-a-date", "0", "+275760-09-13T00:00:00.001Z"),
);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const deviceId = fc.constantFrom("dev-1", "dev-2");

/** A field that is mostly absent, so that inputs reach the later rows and allows happen too. */
const sometimes = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: arb, weight: 1 });

/** Drops the absent fields, as a record read from the table has none. */
const present = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

const record: fc.Arbitrary<AllowlistRecord> = fc
  .record({
    deviceId,
    status: fc.oneof(
      { arbitrary: fc.constant("allowed"), weight: 6 },
      { arbitrary: fc.constantFrom("blocked", "Allowed", "", "deleted"), weight: 1 },
    ) as fc.Arbitrary<AllowlistRecord["status"]>,
    profile: sometimes(fc.constantFrom("p1", "p2")),
    thingType: sometimes(fc.constantFrom("t1", "t2")),
    caCertificateId: sometimes(fc.constantFrom(CA, OTHER_CA, CA.toUpperCase())),
    certificateFingerprint: sometimes(
      fc.constantFrom(
        FINGERPRINT,
        FINGERPRINT.toUpperCase(),
        FINGERPRINT.match(/../g)?.join(":") ?? "",
        "b".repeat(64),
        "",
      ),
    ),
    notBefore: sometimes(dateText),
    notAfter: sometimes(dateText),
    lot: sometimes(fc.constantFrom("lot-a", "lot-b")),
    rotation: sometimes(fc.constantFrom("reject", "replace", "allow-multiple")) as fc.Arbitrary<
      AllowlistRecord["rotation"]
    >,
    version: fc.nat(5),
    certificateId: sometimes(fc.constantFrom("e".repeat(64), "f".repeat(64))),
    provisionedAt: sometimes(dateText),
    lotCounted: sometimes(fc.constantFrom("lot-a", "lot-b")),
  })
  .map(present);
const lot: fc.Arbitrary<Lot> = fc
  .record({
    lot: fc.constantFrom("lot-a", "lot-b"),
    maxDevices: sometimes(fc.nat(3)),
    provisionedCount: fc.nat(4),
    notBefore: sometimes(dateText),
    notAfter: sometimes(dateText),
  })
  .map(present);
const SELECTORS = ["device:dev-1", "device:dev-2", "profile:p1", "thingType:t2", `ca:${CA}`, "default"];
const mappings: fc.Arbitrary<PolicyMapping[]> = fc
  .subarray(SELECTORS)
  .map((selectors) =>
    selectors.map((selector) => ({ selector, policy: { template: "sensor" }, version: 1 })),
  );
const facts: fc.Arbitrary<CertificateFacts> = fc
  .record({ from: fc.integer({ min: -800, max: 10 }), to: fc.integer({ min: -10, max: 800 }) })
  .map(({ from, to }) => ({
    fingerprint: FINGERPRINT,
    subject: "CN=dev-1",
    issuer: "CN=Fleet",
    subjectAttributes: { CN: "dev-1" },
    commonName: "dev-1",
    sanUris: [],
    sanDnsNames: [],
    notBefore: new Date(BASE + from * DAY),
    notAfter: new Date(BASE + to * DAY),
  }));
const bound: fc.Arbitrary<DecisionInput["boundCertificate"]> = maybe(
  fc.record({
    certificateId: fc.constant("e".repeat(64)),
    status: fc.constantFrom(
      "ACTIVE",
      "INACTIVE",
      "REVOKED",
      "PENDING_ACTIVATION",
    ) as fc.Arbitrary<CertificateStatus>,
  }),
);

const inputs: fc.Arbitrary<DecisionInput> = fc
  .record({
    certificate: maybe(facts),
    deviceId: maybe(deviceId),
    record: maybe(record),
    boundCertificate: bound,
    lot: maybe(lot),
    mappings,
    nowDays: fc.integer({ min: -3, max: 3 }),
    quarantine: fc.constantFrom(undefined, "inactive", "revoke") as fc.Arbitrary<
      "inactive" | "revoke" | undefined
    >,
  })
  .map(({ nowDays, quarantine, record, deviceId, ...rest }) => ({
    ...rest,
    deviceId,
    // a record is looked up by the device id
    record: record === undefined || deviceId === undefined ? undefined : { ...record, deviceId },
    event: {
      certificateId: FINGERPRINT,
      caCertificateId: CA,
      timestamp: BASE,
      certificateStatus: "PENDING_ACTIVATION",
      awsAccountId: "111122223333",
      certificateRegistrationTimestamp: null,
    },
    now: new Date(BASE + nowDays * DAY),
    settings: {
      region: "eu-west-1",
      accountId: "111122223333",
      policyPrefix: "jitr-",
      ...(quarantine !== undefined ? { quarantine } : {}),
    },
  }));

/** A window that does not plainly include now: now outside it, or a bound that is not a date. */
const excludes = (now: Date, notBefore?: string, notAfter?: string): boolean => {
  const from = notBefore === undefined ? Number.NEGATIVE_INFINITY : Date.parse(notBefore);
  const to = notAfter === undefined ? Number.POSITIVE_INFINITY : Date.parse(notAfter);
  return Number.isNaN(from) || Number.isNaN(to) || now.getTime() < from || now.getTime() > to;
};

/** The rows 1-10 of the table, written from the README: the first row that must deny, if any. */
function oracle(input: DecisionInput): [DenialReason, "REVOKED" | "INACTIVE"] | undefined {
  const { certificate, deviceId, record, lot, now } = input;
  if (certificate === undefined || deviceId === undefined) return ["invalid-device-id", "REVOKED"];
  if (now < certificate.notBefore) return ["certificate-not-yet-valid", "REVOKED"];
  if (now > certificate.notAfter) return ["certificate-expired", "REVOKED"];
  if (record === undefined) return ["not-allowlisted", "INACTIVE"];
  if (record.status === "blocked") return ["blocked", "REVOKED"];
  if (record.status !== "allowed") return ["not-allowlisted", "INACTIVE"];
  if (record.caCertificateId !== undefined && record.caCertificateId !== input.event.caCertificateId)
    return ["wrong-ca", "REVOKED"];
  if (excludes(now, record.notBefore, record.notAfter)) return ["entry-not-valid-now", "INACTIVE"];
  if (lot !== undefined && excludes(now, lot.notBefore, lot.notAfter))
    return ["entry-not-valid-now", "INACTIVE"];
  if (
    record.certificateFingerprint !== undefined &&
    record.certificateFingerprint.replace(/:/g, "").toLowerCase() !== certificate.fingerprint
  )
    return ["fingerprint-mismatch", "REVOKED"];
  const live = input.boundCertificate !== undefined && input.boundCertificate.status !== "REVOKED";
  if (live && (record.rotation ?? "reject") === "reject") return ["already-provisioned", "REVOKED"];
  const counts =
    record.lot !== undefined && record.provisionedAt === undefined && record.lotCounted === undefined;
  if (
    counts &&
    (lot === undefined || (lot.maxDevices !== undefined && lot.provisionedCount >= lot.maxDevices))
  )
    return ["lot-quota-exceeded", "INACTIVE"];
  const selectors = [
    `device:${deviceId}`,
    ...(record.profile !== undefined ? [`profile:${record.profile}`] : []),
    ...(record.thingType !== undefined ? [`thingType:${record.thingType}`] : []),
    `ca:${input.event.caCertificateId}`,
    "default",
  ];
  if (!input.mappings.some((m) => selectors.includes(m.selector))) return ["no-policy", "INACTIVE"];
  return undefined;
}

describe("decide, whatever the input", () => {
  it("denies with the first row that denies, and the status that row gives", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const decision = decide(input);
        const row = oracle(input);
        if (row === undefined) return;
        const [reason, status] = row;
        const expected = input.settings.quarantine === "revoke" ? "REVOKED" : status;
        expect(decision).toMatchObject({ outcome: "deny", reason, certificateStatus: expected });
      }),
      { numRuns: 3000 },
    );
  });

  it("allows only a device that is allowlisted, allowed and valid now, as its own thing", () => {
    let allowed = 0;
    fc.assert(
      fc.property(inputs, (input) => {
        const decision = decide(input);
        if (decision.outcome !== "allow") return;
        allowed += 1;
        expect(oracle(input)).toBeUndefined();
        expect(input.record?.status).toBe("allowed");
        expect(decision.deviceId).toBe(input.deviceId);
        expect(decision.thing.thingName).toBe(input.deviceId);
      }),
      { numRuns: 3000 },
    );
    // the property held on real allows, not only on denials
    expect(allowed).toBeGreaterThan(100);
  });
});
