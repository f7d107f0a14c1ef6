import { describe, expect, it } from "vitest";
import {
  CHECKS,
  type CheckName,
  checkSoak,
  formatViolations,
  type SoakState,
} from "../../bench/soak/check.ts";
import type { AllowlistRecord, LedgerEntry } from "../../domain/types.ts";

const record = (deviceId: string, extra: Partial<AllowlistRecord> = {}): AllowlistRecord => ({
  deviceId,
  status: "allowed",
  version: 1,
  lot: "lot-1",
  ...extra,
});
const entry = (deviceId: string, certificateId: string, kind: LedgerEntry["kind"]): LedgerEntry => ({
  deviceId,
  certificateId,
  kind,
  at: "2026-12-03T01:00:00.000Z",
});

/**
 * A healthy state: dev-a provisioned (cert-a ACTIVE, thing, per-device policy, counted in lot-1), dev-u unknown
 * and quarantined (cert-u INACTIVE), and dev-a's clone revoked (cert-c REVOKED).
 */
function healthy(): SoakState {
  return {
    fleet: [
      { deviceId: "dev-a", certificateId: "cert-a", expect: "provisioned" },
      { deviceId: "dev-u", certificateId: "cert-u", expect: "quarantined" },
      { deviceId: "dev-a", certificateId: "cert-c", expect: "revoked" },
    ],
    certificates: [
      { certificateId: "cert-a", status: "ACTIVE", things: ["dev-a"], policies: ["jitr-p--dev-a"] },
      { certificateId: "cert-u", status: "INACTIVE", things: [], policies: [] },
      { certificateId: "cert-c", status: "REVOKED", things: [], policies: [] },
    ],
    things: [{ thingName: "dev-a", principals: ["cert-a"] }],
    perDevicePolicies: [{ policyName: "jitr-p--dev-a", deviceId: "dev-a", targets: ["cert-a"] }],
    records: [
      record("dev-a", {
        certificateId: "cert-a",
        thingName: "dev-a",
        policyName: "jitr-p--dev-a",
        provisionedAt: "2026-12-03T01:00:00.000Z",
        lotCounted: "lot-1",
      }),
    ],
    lots: [{ lot: "lot-1", provisionedCount: 1 }],
    ledger: [
      entry("dev-a", "cert-a", "failed"),
      entry("dev-a", "cert-a", "provisioned"),
      entry("dev-u", "cert-u", "denied"),
      entry("dev-a", "cert-c", "denied"),
      entry("dev-a", "cert-a", "admin"),
    ],
  };
}

const checksOf = (state: SoakState): CheckName[] => [...new Set(checkSoak(state).map((v) => v.check))].sort();
const cert = (s: SoakState, id: string) =>
  s.certificates.find((c) => c.certificateId === id) as SoakState["certificates"][number];
const rec = (s: SoakState, id: string) => s.records.find((r) => r.deviceId === id) as AllowlistRecord;

describe("soak checker", () => {
  it("finds nothing wrong in a healthy state (a failed attempt before the outcome and admin entries are fine)", () => {
    expect(checkSoak(healthy())).toEqual([]);
    expect(formatViolations([])).not.toContain("FAIL");
  });

  it("I1: an ACTIVE certificate without its thing, its policy, its binding or an allowed record", () => {
    const noThing = healthy();
    cert(noThing, "cert-a").things = [];
    expect(checksOf(noThing)).toContain("I1-active-complete");

    const noPolicy = healthy();
    cert(noPolicy, "cert-a").policies = [];
    expect(checksOf(noPolicy)).toEqual(["I1-active-complete"]);

    const unbound = healthy();
    rec(unbound, "dev-a").certificateId = "cert-other";
    expect(checksOf(unbound)).toContain("I1-active-complete");

    const blocked = healthy();
    rec(blocked, "dev-a").status = "blocked";
    expect(checksOf(blocked)).toEqual(["I1-active-complete"]);

    const stranger = healthy();
    stranger.certificates.push({ certificateId: "cert-x", status: "ACTIVE", things: [], policies: [] });
    expect(checkSoak(stranger).map((v) => v.subject)).toContain("cert-x");
  });

  it("I2: a denied certificate that is ACTIVE", () => {
    const s = healthy();
    cert(s, "cert-u").status = "ACTIVE";
    cert(s, "cert-u").things = ["dev-u"];
    expect(checksOf(s)).toContain("I2-denied-not-active");
  });

  it("I3: a decided certificate with no terminal outcome, or with two", () => {
    const none = healthy();
    none.ledger = none.ledger.filter((e) => !(e.certificateId === "cert-a" && e.kind === "provisioned"));
    expect(checksOf(none)).toEqual(["I3-one-terminal-outcome"]);

    const two = healthy();
    two.ledger.push(entry("dev-u", "cert-u", "denied"));
    expect(checksOf(two)).toEqual(["I3-one-terminal-outcome"]);
  });

  it("I4: two ACTIVE certificates for one device, unless its rotation allows several", () => {
    const s = healthy();
    cert(s, "cert-c").status = "ACTIVE";
    cert(s, "cert-c").things = ["dev-a"];
    cert(s, "cert-c").policies = ["jitr-p--dev-a"];
    expect(checksOf(s)).toContain("I4-one-active-per-device");
    rec(s, "dev-a").rotation = "allow-multiple";
    expect(checksOf(s)).not.toContain("I4-one-active-per-device");
  });

  it("a device meant to be provisioned whose certificate is not ACTIVE (lost), or one meant to be denied that is", () => {
    const lost = healthy();
    cert(lost, "cert-a").status = "INACTIVE";
    expect(checksOf(lost)).toContain("provisioned-exactly-once");

    const unregistered = healthy();
    unregistered.fleet.push({ deviceId: "dev-b", certificateId: "cert-b", expect: "provisioned" });
    expect(checksOf(unregistered)).toEqual(["provisioned-exactly-once"]);
  });

  it("a certificate still PENDING_ACTIVATION (stuck)", () => {
    const s = healthy();
    cert(s, "cert-u").status = "PENDING_ACTIVATION";
    s.ledger = s.ledger.filter((e) => e.certificateId !== "cert-u");
    expect(checksOf(s)).toEqual(["stuck-pending"]);
  });

  it("a thing left by an undone run, or a thing with another device's certificate", () => {
    const left = healthy();
    left.things.push({ thingName: "dev-u", principals: [] });
    expect(checksOf(left)).toEqual(["leftover-thing"]);

    const foreign = healthy();
    foreign.things[0]?.principals.push("cert-u");
    expect(checksOf(foreign)).toEqual(["leftover-thing"]);
  });

  it("a per-device policy left by an undone run, or attached to another certificate", () => {
    const left = healthy();
    left.perDevicePolicies.push({ policyName: "jitr-p--dev-u", deviceId: "dev-u", targets: [] });
    expect(checksOf(left)).toEqual(["leftover-policy"]);

    const shared = healthy();
    shared.perDevicePolicies[0]?.targets.push("cert-c");
    expect(checksOf(shared)).toEqual(["leftover-policy"]);
  });

  it("a lot count that differs from the records marked as counted in it", () => {
    const low = healthy();
    (low.lots[0] as { provisionedCount: number }).provisionedCount = 0;
    expect(checksOf(low)).toEqual(["lot-count"]);

    const high = healthy();
    (high.lots[0] as { provisionedCount: number }).provisionedCount = 2;
    expect(checksOf(high)).toEqual(["lot-count"]);
  });

  it("reports every check by name, failing ones with their count and each violation", () => {
    const s = healthy();
    cert(s, "cert-u").status = "PENDING_ACTIVATION";
    const report = formatViolations(checkSoak(s));
    for (const name of CHECKS) expect(report).toContain(name);
    expect(report).toContain("FAIL stuck-pending: 1");
    expect(report).toContain("cert-u");
  });
});
