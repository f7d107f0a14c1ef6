import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type DecisionInput, decide, policyNameFor } from "../../domain/decide.ts";
import { POLICY_NAME_MAX, POLICY_NAME_PATTERN } from "../../domain/naming.ts";
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

  it("row 6: a window bound that is no date excludes now (fail closed) -> INACTIVE entry-not-valid-now", () => {
    expect(denial({ record: allowed("dev-1", { notAfter: "soon" }) })).toEqual([
      "entry-not-valid-now",
      "INACTIVE",
    ]);
    expect(denial({ record: allowed("dev-1", { notBefore: "" }) })).toEqual([
      "entry-not-valid-now",
      "INACTIVE",
    ]);
    expect(
      denial({
        record: allowed("dev-1", { lot: "lot-a", lotCounted: "lot-a" }),
        lot: { lot: "lot-a", provisionedCount: 0, notAfter: "2026-13-01" },
      }),
    ).toEqual(["entry-not-valid-now", "INACTIVE"]);
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
    expect(decision.policy?.policyName).toBe("jitr-sensor");
    expect(decision.policy?.perDevice).toBe(false);
    expect(decision.policy?.document).toContain(
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
    expect(decision.policy?.perDevice).toBe(true);
    expect(decision.policy?.policyName).toBe("jitr-per-device-sensor@dev.1");
    expect(decision.policy?.document).toContain("topic/sites/north/devices/dev:1/telemetry");
  });
});

describe("policyNameFor", () => {
  const PREFIX = "jitr-";
  const BASES = [
    "per-device-sensor",
    "sensor",
    "default",
    "profile:x-Name",
    "profile:x",
    "selector-logicalName",
    "selector",
    "default-Pol@dev-1",
    "device:a:b-Policy",
  ];
  const THING_ALPHABET = "abcXYZ0129:_-";
  const CRAFT_ALPHABET = ":_-a";

  /** The 32-bit FNV-1a digest the former naming appended; used here to craft the ids that collided. */
  const fnv1a = (text: string): string => {
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    return (hash >>> 0).toString(16).padStart(8, "0");
  };

  /** A deterministic pseudo-random generator, so a failure can be replayed. */
  const random = (seed: number) => () => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0;
    return ((seed ^ (seed >>> 13)) >>> 0) / 2 ** 32;
  };
  const idFrom = (next: () => number, alphabet: string, length: number): string =>
    Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]).join("");

  it("a shared policy keeps its name when its base needs no escaping", () => {
    expect(policyNameFor(PREFIX, "sensor")).toBe("jitr-sensor");
    expect(policyNameFor(PREFIX, "default-policy")).toBe("jitr-default-policy");
    expect(policyNameFor(PREFIX, "profile:outdoor")).toBe("jitr-profile+outdoor");
  });

  it("a per-device name is <prefix><base>@<device id, ':' as '.'>", () => {
    expect(policyNameFor(PREFIX, "per-device-sensor", "dev:1")).toBe("jitr-per-device-sensor@dev.1");
    expect(policyNameFor(PREFIX, "profile:x-Name", "a-b_c")).toBe("jitr-profile+x-Name@a-b_c");
  });

  it("the ids that collided under the former naming (v:x and v_x-<digest>; a hashed long name) get distinct names", () => {
    // Prepare: the former name of v:x was <prefix><base>-v_x-<fnv of the raw name>; a device registered
    // under exactly that suffix had the same name. Likewise a long id whose name was cut and hashed.
    const base = "per-device-sensor";
    const crafted = `v_x-${fnv1a(`${PREFIX}${base}-v:x`)}`;
    const long = "L".repeat(128);
    const longRaw = `${PREFIX}${base}-${long}`;
    const formerLong = `${longRaw.slice(0, 128 - 9)}-${fnv1a(longRaw)}`;
    const craftedLong = formerLong.slice(`${PREFIX}${base}-`.length);

    // Act
    const names = [
      policyNameFor(PREFIX, base, "v:x"),
      policyNameFor(PREFIX, base, crafted),
      policyNameFor(PREFIX, base, long),
      policyNameFor(PREFIX, base, craftedLong),
    ];

    // Assess
    expect(craftedLong).toMatch(/^[a-zA-Z0-9:_-]{1,128}$/);
    expect(new Set(names).size).toBe(4);
  });

  it("a name over 128 characters is cut and followed by ',' and the full SHA-256 of the whole name", () => {
    // Prepare
    const id = `${"d".repeat(100)}:${"e".repeat(27)}`;
    const whole = `jitr-per-device-sensor@${"d".repeat(100)}.${"e".repeat(27)}`;

    // Act
    const name = policyNameFor(PREFIX, "per-device-sensor", id);

    // Assess
    expect(name).toBe(`${whole.slice(0, 63)},${createHash("sha256").update(whole).digest("hex")}`);
    expect(name).toHaveLength(128);
  });

  it("random and crafted ids never share a name, across bases and with shared names; every name is valid", () => {
    // Prepare: random ids over the thing-name alphabet and a narrow one (near-collisions), of every
    // length, plus long ids that differ only past the cut
    const next = random(12);
    const ids = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const alphabet = i % 2 === 0 ? THING_ALPHABET : CRAFT_ALPHABET;
      ids.add(idFrom(next, alphabet, 1 + Math.floor(next() * 128)));
    }
    for (let i = 0; i < 200; i++) ids.add(`${"a".repeat(100)}${idFrom(next, CRAFT_ALPHABET, 28)}`);
    for (const short of ["a", "a:b", "a_b", "a-b", "a:b:c", "a_b_c", "_", ":", "-", "logicalName"])
      ids.add(short);
    // and, for ids with a ':', the id the former naming gave the same name
    for (const id of [...ids].filter((i) => i.includes(":")).slice(0, 300)) {
      const former = `${id.replace(/:/g, "_")}-${fnv1a(`${PREFIX}per-device-sensor-${id}`)}`;
      if (former.length <= 128) ids.add(former);
    }

    // Act
    const owners = new Map<string, string>();
    const collisions: string[] = [];
    for (const base of BASES) {
      const shared = policyNameFor(PREFIX, base);
      if (owners.has(shared)) collisions.push(`${shared}: shared ${base} and ${owners.get(shared)}`);
      owners.set(shared, `shared ${base}`);
      for (const id of ids) {
        const name = policyNameFor(PREFIX, base, id);
        const owner = `${base} / ${id}`;
        if (owners.has(name)) collisions.push(`${name}: ${owner} and ${owners.get(name)}`);
        owners.set(name, owner);
      }
    }

    // Assess
    expect(collisions).toEqual([]);
    const invalid = [...owners.keys()].filter(
      (n) => !POLICY_NAME_PATTERN.test(n) || n.length > POLICY_NAME_MAX,
    );
    expect(invalid).toEqual([]);
    expect(owners.size).toBeGreaterThan(BASES.length * 4000);
  });

  it("every name that is not cut decodes back to its base and device id (so none can be another's)", () => {
    // Prepare: a decoder of the rule as the README states it
    const decodePart = (text: string, colon: string) =>
      text.replace(/=([0-9a-f]{4})|[+.]/g, (match, hex: string | undefined) => {
        if (hex !== undefined) return String.fromCharCode(Number.parseInt(hex, 16));
        return match === colon ? ":" : match;
      });
    const decode = (name: string) => {
      const rest = name.slice(PREFIX.length);
      const at = rest.indexOf("@");
      return at < 0
        ? { base: decodePart(rest, "+"), deviceId: undefined }
        : { base: decodePart(rest.slice(0, at), "+"), deviceId: decodePart(rest.slice(at + 1), ".") };
    };
    const next = random(7);
    const cases = BASES.flatMap((base) =>
      Array.from({ length: 200 }, () => ({
        base,
        deviceId: idFrom(next, THING_ALPHABET, 1 + Math.floor(next() * 40)),
      })),
    );

    // Act
    const decoded = cases
      .map((c) => policyNameFor(PREFIX, c.base, c.deviceId))
      .filter((name) => !name.includes(","))
      .map(decode);

    // Assess
    expect(decoded.length).toBeGreaterThan(cases.length / 2);
    for (const d of decoded) expect(cases).toContainEqual(d);
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
