/**
 * The soak's checker: given what the registry and the tables hold after a run, device by device, it lists
 * every violation of the invariants (DESIGN section 2) and of the fleet's expectations. Pure: the state is
 * collected elsewhere (collect.ts), so each check can be shown to fail on a state that breaks it.
 */
import type { AllowlistRecord, LedgerEntry, Lot } from "../../domain/types.ts";

/** One device certificate the run presented, and whether its device was meant to be provisioned. */
export interface FleetCertificate {
  deviceId: string;
  certificateId: string;
  expect: "provisioned" | "quarantined" | "revoked";
}

/** A certificate as the registry holds it, with what is attached to it. */
export interface RegistryCertificate {
  certificateId: string;
  status: string;
  things: string[];
  policies: string[];
}

/** A per-device policy found in the registry, with the certificates it is attached to. */
export interface RegistryPolicy {
  policyName: string;
  deviceId: string;
  targets: string[];
}

export interface SoakState {
  fleet: FleetCertificate[];
  certificates: RegistryCertificate[];
  /** Every thing in the registry, with its attached principals (certificate ids). */
  things: { thingName: string; principals: string[] }[];
  perDevicePolicies: RegistryPolicy[];
  records: AllowlistRecord[];
  lots: Lot[];
  ledger: LedgerEntry[];
}

export type CheckName =
  | "I1-active-complete"
  | "I2-denied-not-active"
  | "I3-one-terminal-outcome"
  | "I4-one-active-per-device"
  | "provisioned-exactly-once"
  | "stuck-pending"
  | "leftover-thing"
  | "leftover-policy"
  | "lot-count";

export interface Violation {
  check: CheckName;
  subject: string;
  message: string;
}

export const CHECKS: readonly CheckName[] = [
  "I1-active-complete",
  "I2-denied-not-active",
  "I3-one-terminal-outcome",
  "I4-one-active-per-device",
  "provisioned-exactly-once",
  "stuck-pending",
  "leftover-thing",
  "leftover-policy",
  "lot-count",
];

const TERMINAL = new Set(["provisioned", "denied"]);

/** Every violation in the state; an empty list means the run held. */
export function checkSoak(state: SoakState): Violation[] {
  const violations: Violation[] = [];
  const add = (check: CheckName, subject: string, message: string) =>
    violations.push({ check, subject, message });
  const certs = new Map(state.certificates.map((c) => [c.certificateId, c]));
  const records = new Map(state.records.map((r) => [r.deviceId, r]));
  const things = new Map(state.things.map((t) => [t.thingName, t]));
  const deviceOf = new Map(state.fleet.map((f) => [f.certificateId, f.deviceId]));
  const active = (id: string | undefined) => id !== undefined && certs.get(id)?.status === "ACTIVE";
  const outcomes = new Map<string, LedgerEntry[]>();
  for (const e of state.ledger)
    if (e.certificateId && TERMINAL.has(e.kind))
      outcomes.set(e.certificateId, [...(outcomes.get(e.certificateId) ?? []), e]);

  // I1: an ACTIVE certificate's device is allowlisted and allowed, bound to it, its thing attached, its policy attached.
  for (const cert of state.certificates) {
    if (cert.status !== "ACTIVE") continue;
    const deviceId = deviceOf.get(cert.certificateId);
    const record = deviceId === undefined ? undefined : records.get(deviceId);
    const fail = (why: string) => add("I1-active-complete", cert.certificateId, why);
    if (deviceId === undefined) fail("ACTIVE, but no device of the fleet presented it");
    else if (record === undefined) fail(`ACTIVE, but ${deviceId} has no allowlist record`);
    else if (record.status !== "allowed") fail(`ACTIVE, but ${deviceId} is ${record.status}`);
    else {
      if (record.certificateId !== cert.certificateId)
        fail(`ACTIVE, but ${deviceId}'s record is bound to ${record.certificateId ?? "nothing"}`);
      if (!cert.things.includes(deviceId) || !things.has(deviceId))
        fail(`ACTIVE without its thing ${deviceId} attached`);
      if (record.policyName === undefined || !cert.policies.includes(record.policyName))
        fail(`ACTIVE without its policy ${record.policyName ?? "(none recorded)"} attached`);
    }
  }

  // I2: a denied certificate never becomes ACTIVE.
  for (const [id, entries] of outcomes)
    if (entries.some((e) => e.kind === "denied") && active(id))
      add("I2-denied-not-active", id, "denied in the ledger, yet ACTIVE");

  // I3: every decided certificate has exactly one terminal outcome (provisioned or denied) in the ledger.
  for (const f of state.fleet) {
    const cert = certs.get(f.certificateId);
    const n = outcomes.get(f.certificateId)?.length ?? 0;
    if (cert && cert.status !== "PENDING_ACTIVATION" && n !== 1)
      add(
        "I3-one-terminal-outcome",
        f.certificateId,
        `${cert.status} with ${n} terminal outcomes in the ledger`,
      );
  }

  // I4: at most one ACTIVE certificate per device (unless its rotation allows several).
  const activeByDevice = new Map<string, string[]>();
  for (const cert of state.certificates) {
    const deviceId = deviceOf.get(cert.certificateId);
    if (cert.status === "ACTIVE" && deviceId !== undefined)
      activeByDevice.set(deviceId, [...(activeByDevice.get(deviceId) ?? []), cert.certificateId]);
  }
  for (const [deviceId, ids] of activeByDevice)
    if (ids.length > 1 && records.get(deviceId)?.rotation !== "allow-multiple")
      add("I4-one-active-per-device", deviceId, `${ids.length} ACTIVE certificates: ${ids.join(", ")}`);

  // Each device meant to be provisioned has exactly one ACTIVE certificate, the one it presented; others none.
  for (const f of state.fleet) {
    const status = certs.get(f.certificateId)?.status;
    if (f.expect === "provisioned" && status !== "ACTIVE")
      add(
        "provisioned-exactly-once",
        f.deviceId,
        `meant to be provisioned; its certificate is ${status ?? "not registered"}`,
      );
    if (f.expect !== "provisioned" && status === "ACTIVE")
      add(
        "provisioned-exactly-once",
        f.deviceId,
        `meant to be ${f.expect}; its certificate ${f.certificateId} is ACTIVE`,
      );
  }

  // No certificate the fleet presented is left waiting for a decision.
  for (const f of state.fleet)
    if (certs.get(f.certificateId)?.status === "PENDING_ACTIVATION")
      add("stuck-pending", f.certificateId, `${f.deviceId}'s certificate is still PENDING_ACTIVATION`);

  // A thing belongs to a provisioned device: its record is bound to an ACTIVE certificate attached to it.
  for (const thing of state.things) {
    const bound = records.get(thing.thingName)?.certificateId;
    if (!active(bound) || !thing.principals.includes(bound as string))
      add(
        "leftover-thing",
        thing.thingName,
        "a thing without its device's ACTIVE certificate (left by an undone run?)",
      );
    for (const p of thing.principals)
      if (deviceOf.has(p) && deviceOf.get(p) !== thing.thingName)
        add("leftover-thing", thing.thingName, `certificate ${p} of ${deviceOf.get(p)} attached`);
  }

  // A per-device policy belongs to a provisioned device and is attached to its ACTIVE certificate only.
  for (const policy of state.perDevicePolicies) {
    const bound = records.get(policy.deviceId)?.certificateId;
    if (!active(bound) || !policy.targets.includes(bound as string))
      add(
        "leftover-policy",
        policy.policyName,
        `not attached to ${policy.deviceId}'s ACTIVE certificate (left by an undone run?)`,
      );
    for (const t of policy.targets)
      if (t !== bound) add("leftover-policy", policy.policyName, `also attached to ${t}`);
  }

  // A lot's count equals the records marked as counted in it.
  for (const lot of state.lots) {
    const marked = state.records.filter((r) => r.lotCounted === lot.lot).length;
    if (lot.provisionedCount !== marked)
      add(
        "lot-count",
        lot.lot,
        `provisionedCount ${lot.provisionedCount}, ${marked} records marked lotCounted`,
      );
  }
  return violations;
}

/** A readable report: a line per check with its count, then each violation. */
export function formatViolations(violations: Violation[]): string {
  const lines = CHECKS.map((check) => {
    const n = violations.filter((v) => v.check === check).length;
    return `${n === 0 ? "ok  " : "FAIL"} ${check}${n === 0 ? "" : `: ${n}`}`;
  });
  for (const v of violations.slice(0, 200)) lines.push(`  ${v.check} ${v.subject}: ${v.message}`);
  if (violations.length > 200) lines.push(`  ... and ${violations.length - 200} more`);
  return lines.join("\n");
}
