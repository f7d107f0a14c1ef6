import type { ProvisionDeps } from "../../domain/provision.ts";
import type { AllowlistRecord, Lot, PolicyMapping, RegisteredEvent } from "../../domain/types.ts";
import {
  certificateIdOf,
  createCa,
  type IssueOptions,
  issueCertificate,
  type KeyedCertificate,
} from "../../pki/certificates.ts";
import {
  FakeClock,
  FakeIot,
  MemoryAllowlist,
  MemoryLedger,
  MemoryLots,
  MemoryMappings,
  testSettings,
} from "./fakes.ts";

let sharedCa: Promise<KeyedCertificate> | undefined;
/** One CA for a whole test file (key generation is the slow part). */
export const testCa = (): Promise<KeyedCertificate> => {
  sharedCa ??= createCa({ commonName: "Test Fleet CA" });
  return sharedCa;
};

export const CA_ID = "c".repeat(64);

/** A fresh in-memory world: fakes for every port, a clock inside the certificates' validity. */
export function makeWorld(
  seed: { records?: AllowlistRecord[]; mappings?: PolicyMapping[]; lots?: Lot[] } = {},
) {
  const iot = new FakeIot();
  const allowlist = new MemoryAllowlist(seed.records);
  const mappings = new MemoryMappings(seed.mappings);
  const lots = new MemoryLots(seed.lots, allowlist);
  const ledger = new MemoryLedger();
  const clock = new FakeClock(new Date());
  const deps: ProvisionDeps = {
    iot,
    allowlist,
    mappings,
    lots,
    ledger,
    clock,
    settings: testSettings({ attempts: 4, baseDelayMs: 10, maxDelayMs: 100 }),
  };
  /** Registers a device certificate as PENDING_ACTIVATION, as AWS IoT does on first connect; returns its event. */
  const register = async (opts: IssueOptions | string): Promise<{ event: RegisteredEvent; pem: string }> => {
    const ca = await testCa();
    const issued = await issueCertificate(ca, typeof opts === "string" ? { subject: { CN: opts } } : opts);
    return { event: registerPem(issued.certificatePem), pem: issued.certificatePem };
  };
  const registerPem = (pem: string, certificateId = certificateIdOf(pem)): RegisteredEvent => {
    iot.addCertificate(certificateId, pem, CA_ID);
    return eventFor(certificateId);
  };
  return { iot, allowlist, mappings, lots, ledger, clock, deps, register, registerPem };
}

export const eventFor = (certificateId: string): RegisteredEvent => ({
  certificateId,
  caCertificateId: CA_ID,
  timestamp: 1_700_000_000_000,
  certificateStatus: "PENDING_ACTIVATION",
  awsAccountId: "123456789012",
  certificateRegistrationTimestamp: "1700000000000",
});

export const allowed = (deviceId: string, extra: Partial<AllowlistRecord> = {}): AllowlistRecord => ({
  deviceId,
  status: "allowed",
  version: 1,
  ...extra,
});

export const defaultMapping: PolicyMapping = {
  selector: "default",
  policy: { template: "sensor" },
  version: 1,
};
