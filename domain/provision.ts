import { readCertificate } from "./certificate.ts";
import {
  type Allow,
  type Decision,
  type DecisionInput,
  type DecisionSettings,
  decide,
  referencesOf,
} from "./decide.ts";
import { deriveDeviceId } from "./device-id.ts";
import {
  ConflictError,
  describeError,
  JitrError,
  OutcomeUnknownError,
  ProvisioningError,
  TransientError,
} from "./errors.ts";
import { execute } from "./execute.ts";
import type { KnownPolicies } from "./known-policies.ts";
import { giveBackLotPlace } from "./lot-place.ts";
import { plan } from "./plan.ts";
import type {
  AllowlistPort,
  CertificateDescription,
  ClockPort,
  IotPort,
  LedgerPort,
  LotPort,
  MappingPort,
  TakeOutcome,
} from "./ports.ts";
import { type KnownReferences, type ReferenceReader, readReferences } from "./references.ts";
import { type RetryPolicy, retryingEach } from "./retry.ts";
import { mappingSelectors } from "./select-policy.ts";
import type {
  CertificateFacts,
  DenialReason,
  DeviceIdStrategy,
  LedgerEntry,
  RegisteredEvent,
} from "./types.ts";

/*
 * Provisioning one certificate-registered event:
 *  1. Describe the certificate; finish without side effects unless it is still PENDING_ACTIVATION
 *     (or INACTIVE, when an admin approves a quarantined certificate).
 *  1b. An ACTIVE certificate whose device record is bound to it and whose outcome is not recorded (a run
 *     stopped after step 7's activation, before step 8 ended) is a resumed run: decided again; allowed, the plan runs again
 *     (its steps are idempotent, activation too) and the binding is completed; denied, the certificate
 *     leaves ACTIVE per the decision and the claim is released. Any other ACTIVE certificate is settled.
 *  2. Read the certificate and derive the device id.
 *  3. Gather the allowlist record, the bound certificate's status, the lot and the candidate mappings.
 *  4. Decide (pure).
 *  5. Denied: record the outcome (unless a stopped run of this event recorded it), set the certificate
 *     INACTIVE or REVOKED.
 *  6. Allowed: claim the device binding (conditional write: one certificate wins a race), then the lot
 *     place (./lot-place.ts: marked on the record, then counted, so a device counts once); a lost claim
 *     gathers and decides again.
 *  7. Plan and execute against IoT, activation last; a permanent failure undoes the run, gives back the
 *     lot place and the claim, records `failed` and is rethrown.
 *  8. Complete the binding, retire a replaced certificate (rotation `replace`), record `provisioned`.
 */

export interface ProvisionSettings extends DecisionSettings {
  deviceIdStrategy: DeviceIdStrategy;
  retry: RetryPolicy;
}

export interface ProvisionDeps {
  iot: IotPort;
  allowlist: AllowlistPort;
  mappings: MappingPort;
  lots: LotPort;
  ledger: LedgerPort;
  clock: ClockPort;
  settings: ProvisionSettings;
  /** Shared policies recently seen in place (built once per cold start; optional). */
  knownPolicies?: KnownPolicies;
  /** Thing types, thing groups and existing policies recently seen in place (built once per cold start; optional). */
  knownReferences?: KnownReferences;
}

/** The ports a run calls, each call retried on transient errors (built once per run). */
type RetryingPorts = Pick<ProvisionDeps, "iot" | "allowlist" | "mappings" | "lots" | "ledger">;

/** Retrying views of the deps' ports, with the settings' retry policy. */
function retryingPorts(deps: ProvisionDeps): RetryingPorts {
  const { iot, allowlist, mappings, lots, ledger } = deps;
  return retryingEach({ iot, allowlist, mappings, lots, ledger }, deps.settings.retry, deps.clock);
}

export type ProvisionResult =
  | {
      outcome: "provisioned";
      certificateId: string;
      deviceId: string;
      thingName: string;
      /** Undefined when the rights come through thing groups alone. */
      policyName: string | undefined;
      replaced: string | undefined;
      timings: Record<string, number>;
      warnings: string[];
    }
  | {
      outcome: "denied";
      certificateId: string;
      deviceId: string | undefined;
      reason: DenialReason;
      certificateStatus: "INACTIVE" | "REVOKED";
      detail: string;
    }
  | { outcome: "skipped"; certificateId: string; deviceId: undefined; detail: string };

/** Ledger key for an outcome whose device could not be identified ('#' is outside the thing-name set). */
export const UNIDENTIFIED_DEVICE = "#unidentified";

const MAX_CLAIM_ROUNDS = 3;

export interface ProvisionOptions {
  /**
   * The status the certificate must be in to be decided: `PENDING_ACTIVATION` for a registered event
   * (the default), `INACTIVE` when an admin approves a quarantined certificate.
   */
  from?: "PENDING_ACTIVATION" | "INACTIVE";
  /** Who asked, for the ledger (an admin approving); events are recorded as the service. */
  actor?: string;
}

/** Provisions or denies the certificate named by a registered event, recording exactly one outcome. */
export async function provision(
  event: RegisteredEvent,
  deps: ProvisionDeps,
  options: ProvisionOptions = {},
): Promise<ProvisionResult> {
  const from = options.from ?? "PENDING_ACTIVATION";
  const { clock, settings } = deps;
  const ports = retryingPorts(deps);
  const { iot } = ports;
  const certificateId = event.certificateId;
  /**
   * Records a `failed` outcome (I3: every attempt ends in one) and hands back the error to throw, so the
   * platform retries or dead-letters the event; a ledger write that fails too is not allowed to hide it.
   */
  const recordFailure = async (entry: Omit<LedgerEntry, "kind">, error: Error): Promise<Error> => {
    await ports.ledger
      .append({ ...entry, kind: "failed", error: describeError(error) })
      .catch(() => undefined);
    return error;
  };

  // 1. describe
  const description = await iot.describeCertificate(certificateId);
  if (description === undefined) {
    return {
      outcome: "skipped",
      certificateId,
      deviceId: undefined,
      detail: "the certificate no longer exists",
    };
  }
  // 2. identify
  const facts =
    description.status === from || description.status === "ACTIVE"
      ? readFacts(description.certificatePem)
      : undefined;
  const deviceId = facts === undefined ? undefined : deriveDeviceId(facts, settings.deviceIdStrategy);

  // An ACTIVE certificate is settled, unless a run stopped between its activation and the binding's
  // completion (1b): that run is resumed. Any other status but `from` is settled too.
  const resumed =
    description.status === "ACTIVE" &&
    deviceId !== undefined &&
    (await isUnfinishedRun(deviceId, certificateId, ports));
  if (description.status !== from && !resumed) {
    return {
      outcome: "skipped",
      certificateId,
      deviceId: undefined,
      detail: `the certificate is already ${description.status}`,
    };
  }
  // The registry, not the event, is the authority on which CA issued the certificate.
  const caEvent: RegisteredEvent = {
    ...event,
    caCertificateId: description.caCertificateId ?? event.caCertificateId,
  };

  for (let round = 1; ; round++) {
    // 3-4. gather and decide
    const gathered = await gather(caEvent, facts, deviceId, description, deps, ports);
    const { input, decision } = await decideWithReferences(gathered, ports.iot, deps.knownReferences);
    const base: Omit<LedgerEntry, "kind" | "deviceId"> = {
      at: clock.now().toISOString(),
      certificateId,
      caCertificateId: caEvent.caCertificateId,
      ...(facts ? { fingerprint: facts.fingerprint } : {}),
      ...(input.record ? { recordVersion: input.record.version } : {}),
      ...(input.record?.lot !== undefined ? { lot: input.record.lot } : {}),
      ...(options.actor ? { actor: options.actor } : {}),
    };

    // 5. deny: recorded first, then the status set, so a run stopped between the two leaves the certificate
    // as it was (decided again on redelivery, which finds its outcome recorded and does not record it twice)
    if (decision.outcome === "deny") {
      const recorded =
        from === "PENDING_ACTIVATION" && (await ports.ledger.hasTerminalOutcome(certificateId));
      if (!recorded) {
        await ports.ledger.append({
          ...base,
          deviceId: decision.deviceId ?? UNIDENTIFIED_DEVICE,
          kind: "denied",
          reason: decision.reason,
          certificateStatus: decision.certificateStatus,
          error: decision.detail,
        });
      }
      await iot.updateCertificateStatus(certificateId, decision.certificateStatus);
      if (resumed && deviceId !== undefined) await releaseResumedClaim(deviceId, certificateId, ports, clock);
      return { ...decision, outcome: "denied", certificateId };
    }

    // Rotation `replace` retires an ACTIVE certificate; one still being provisioned is waited for.
    if (decision.replaces !== undefined && input.boundCertificate?.status === "PENDING_ACTIVATION") {
      throw await recordFailure(
        { ...base, deviceId: decision.deviceId },
        new TransientError(
          `device ${decision.deviceId}: another certificate is being provisioned for it; retry later`,
        ),
      );
    }

    // 6. claim
    const claim = {
      deviceId: decision.deviceId,
      certificateId,
      expectedCertificateId: decision.expectedBinding,
    };
    if (!(await ports.allowlist.claimBinding(claim))) {
      if (round >= MAX_CLAIM_ROUNDS) {
        throw await recordFailure(
          { ...base, deviceId: decision.deviceId },
          new TransientError(`device ${decision.deviceId}: the binding kept changing; retry later`),
        );
      }
      continue;
    }
    // 6b. the lot place (I6, see ./lot-place.ts): counted once, by the run whose mark is written
    const lotPlace = lotPlaceOf(decision);
    if (decision.reserveLot !== undefined) {
      const mark = { deviceId: decision.deviceId, certificateId, lot: decision.reserveLot };
      let taken: TakeOutcome;
      try {
        taken = await ports.lots.takePlace(mark);
      } catch (error) {
        // Stop as a crash would: the mark, if written, makes the retry count nothing again.
        throw await recordFailure(
          { ...base, deviceId: decision.deviceId },
          error instanceof OutcomeUnknownError
            ? new TransientError(`device ${decision.deviceId}: ${error.message}; retry later`, {
                cause: error,
              })
            : error instanceof Error
              ? error
              : new Error(String(error)),
        );
      }
      if (taken === "full") {
        await ports.allowlist.releaseBinding(claim);
        continue; // the next round sees the full lot and denies
      }
      if (taken === "lost") {
        if (round >= MAX_CLAIM_ROUNDS) {
          throw await recordFailure(
            { ...base, deviceId: decision.deviceId },
            new TransientError(`device ${decision.deviceId}: the lot place kept changing; retry later`),
          );
        }
        continue; // another run marked the device (the next round relies on its mark), or the binding moved
      }
    } else if (lotPlace !== undefined && decision.record.lotReleaseStartedAt !== undefined) {
      // The place this run would rely on is being given back: wait for that, or finish an interrupted one.
      const given = await giveBackLotPlace(ports, decision.deviceId, certificateId, clock.now());
      if (given.outcome === "busy" || round >= MAX_CLAIM_ROUNDS) {
        throw await recordFailure(
          { ...base, deviceId: decision.deviceId },
          new TransientError(`device ${decision.deviceId}: its lot place is being given back; retry later`),
        );
      }
      continue; // the next round takes a place anew
    }

    // 7. plan and execute
    const ledgerBase = {
      ...base,
      deviceId: decision.deviceId,
      ...(decision.policy !== undefined ? { policyName: decision.policy.policyName } : {}),
      ...(decision.policy?.perDevice ? { perDevicePolicy: true } : {}),
      ...(decision.groupPolicies.length > 0 ? { groupPolicies: groupPolicyEntries(decision) } : {}),
      thingName: decision.thing.thingName,
      mappingSelector: decision.mapping.selector,
      mappingVersion: decision.mapping.version,
    };
    let timings: Record<string, number>;
    try {
      ({ timings } = await execute(
        plan(decision, { certificateId, certificateArn: description.certificateArn }),
        {
          iot: deps.iot,
          clock,
          retry: settings.retry,
          ...(deps.knownPolicies ? { knownPolicies: deps.knownPolicies } : {}),
          ...(deps.knownReferences ? { knownReferences: deps.knownReferences } : {}),
        },
      ));
    } catch (error) {
      await releaseClaim(decision, claim, ports, clock);
      throw await recordFailure(
        ledgerBase,
        error instanceof JitrError
          ? error
          : new ProvisioningError(describeError(error), "execute", { cause: error }),
      );
    }

    // 8. record
    const provisionedAt = clock.now().toISOString();
    try {
      await ports.allowlist.completeBinding({
        deviceId: decision.deviceId,
        certificateId,
        thingName: decision.thing.thingName,
        ...(decision.policy !== undefined ? { policyName: decision.policy.policyName } : {}),
        provisionedAt,
        ...(lotPlace !== undefined ? { lot: lotPlace } : {}),
      });
    } catch (error) {
      // The binding was taken away while this run provisioned (an admin deprovisioned or re-bound the
      // device): fail closed, so an unbound certificate is not left ACTIVE.
      if (!(error instanceof ConflictError)) throw error;
      await iot.updateCertificateStatus(certificateId, "INACTIVE");
      const failure = new ProvisioningError(
        `device ${decision.deviceId}: the binding changed during provisioning; certificate set INACTIVE`,
        "record",
        { cause: error },
      );
      throw await recordFailure(ledgerBase, failure);
    }
    const warnings = decision.replaces ? await retireReplaced(decision, ports) : [];
    await ports.ledger.append({ ...ledgerBase, at: provisionedAt, kind: "provisioned", timings });
    return {
      outcome: "provisioned",
      certificateId,
      deviceId: decision.deviceId,
      thingName: decision.thing.thingName,
      policyName: decision.policy?.policyName,
      replaced: decision.replaces,
      timings,
      warnings,
    };
  }
}

/**
 * Decides with row 11b: when the decision allows, the thing type, thing groups and existing policy it names
 * are read from the registry (skipping those `known` saw in place lately) and the decision is made again with
 * those facts, so a missing one quarantines the device (`missing-reference`) instead of failing every attempt.
 */
export async function decideWithReferences(
  gathered: DecisionInput,
  iot: ReferenceReader,
  known?: KnownReferences,
): Promise<{ input: DecisionInput; decision: Decision }> {
  const first = decide(gathered);
  if (first.outcome === "deny") return { input: gathered, decision: first };
  const references = referencesOf(first);
  if (references.length === 0) return { input: gathered, decision: first };
  const input = { ...gathered, references: await readReferences(references, iot, known) };
  return { input, decision: decide(input) };
}

function readFacts(pem: string): CertificateFacts | undefined {
  try {
    return readCertificate(pem);
  } catch {
    return undefined; // decided as invalid-device-id
  }
}

/** Reads everything the decision needs for a certificate (step 3); the admin's explain shares it. */
export async function gatherDecisionInput(
  event: RegisteredEvent,
  certificate: CertificateFacts | undefined,
  deviceId: string | undefined,
  description: Pick<CertificateDescription, "certificateId">,
  deps: ProvisionDeps,
): Promise<DecisionInput> {
  return gather(event, certificate, deviceId, description, deps, retryingPorts(deps));
}

/** {@link gatherDecisionInput} over ports that already retry. */
async function gather(
  event: RegisteredEvent,
  certificate: CertificateFacts | undefined,
  deviceId: string | undefined,
  description: Pick<CertificateDescription, "certificateId">,
  deps: Pick<ProvisionDeps, "clock" | "settings">,
  ports: RetryingPorts,
): Promise<DecisionInput> {
  const { clock, settings } = deps;
  const common = { event, certificate, deviceId, now: clock.now(), settings };
  if (deviceId === undefined) {
    return { ...common, record: undefined, boundCertificate: undefined, lot: undefined, mappings: [] };
  }
  const record = await ports.allowlist.get(deviceId);
  const boundId = record?.certificateId;
  const [bound, lot, mappings] = await Promise.all([
    boundId !== undefined && boundId !== description.certificateId
      ? ports.iot.describeCertificate(boundId)
      : Promise.resolve(undefined),
    record?.lot !== undefined ? ports.lots.get(record.lot) : Promise.resolve(undefined),
    ports.mappings.getMany(mappingSelectors(deviceId, record, event.caCertificateId)),
  ]);
  return {
    ...common,
    record,
    boundCertificate: bound ? { certificateId: bound.certificateId, status: bound.status } : undefined,
    lot,
    mappings,
  };
}

/**
 * The lot place a first provisioning depends on: the one it takes, or the one the record holds already
 * (marked by an earlier or a concurrent run of the device). Undefined for a device already provisioned.
 */
function lotPlaceOf(decision: Allow): string | undefined {
  if (decision.reserveLot !== undefined) return decision.reserveLot;
  return decision.record.provisionedAt === undefined ? decision.record.lotCounted : undefined;
}

/** Undoes a claim: gives back the lot place of a first provisioning (the reverse order), then the binding. */
async function releaseClaim(
  decision: Allow,
  claim: { deviceId: string; certificateId: string; expectedCertificateId: string | undefined },
  ports: Pick<RetryingPorts, "allowlist" | "lots">,
  clock: ClockPort,
): Promise<void> {
  if (lotPlaceOf(decision) !== undefined) {
    await giveBackLotPlace(ports, claim.deviceId, claim.certificateId, clock.now()).catch(() => undefined);
  }
  await ports.allowlist.releaseBinding(claim).catch(() => undefined);
}

/**
 * True for an ACTIVE certificate's run that stopped after activating it (step 7) and before recording its
 * outcome (step 8): the device record is bound to the certificate and either the binding was not completed
 * (no `provisionedAt`) or the ledger holds no terminal outcome for it (stopped between the two writes, or
 * a rotation's claim over an earlier binding). An ACTIVE certificate bound to nothing or to another
 * certificate, or with its outcome recorded, is settled: a replayed event cannot make it be decided again.
 */
async function isUnfinishedRun(
  deviceId: string,
  certificateId: string,
  ports: Pick<RetryingPorts, "allowlist" | "ledger">,
): Promise<boolean> {
  const record = await ports.allowlist.get(deviceId);
  if (record?.certificateId !== certificateId) return false;
  return record.provisionedAt === undefined || !(await ports.ledger.hasTerminalOutcome(certificateId));
}

/**
 * Undoes the claim of a resumed run that is now denied: gives back its lot place, then the binding (a
 * claim without `provisionedAt` was a first binding, so none is restored). Best effort, as releaseClaim.
 */
async function releaseResumedClaim(
  deviceId: string,
  certificateId: string,
  ports: Pick<RetryingPorts, "allowlist" | "lots">,
  clock: ClockPort,
): Promise<void> {
  await giveBackLotPlace(ports, deviceId, certificateId, clock.now()).catch(() => undefined);
  await ports.allowlist
    .releaseBinding({ deviceId, certificateId, expectedCertificateId: undefined })
    .catch(() => undefined);
}

/** Rotation `replace`: revoke the old certificate, then detach its thing and policy. Best effort. */
async function retireReplaced(decision: Allow, ports: Pick<RetryingPorts, "iot">): Promise<string[]> {
  const oldId = decision.replaces;
  if (oldId === undefined) return [];
  const { iot } = ports;
  const warnings: string[] = [];
  const attempt = async (label: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (error) {
      warnings.push(`${label}: ${describeError(error)}`);
    }
  };
  await attempt(`revoke ${oldId}`, () => iot.updateCertificateStatus(oldId, "REVOKED"));
  const old = await iot.describeCertificate(oldId).catch(() => undefined);
  if (old !== undefined) {
    const { thingName } = decision.thing;
    await attempt(`detach thing from ${oldId}`, () =>
      iot.detachThingPrincipal(thingName, old.certificateArn),
    );
    const oldPolicy = decision.record.policyName;
    if (oldPolicy !== undefined) {
      await attempt(`detach policy from ${oldId}`, () => iot.detachPolicy(oldPolicy, old.certificateArn));
    }
  }
  return warnings;
}

/** What a provisioned ledger entry records of the rights granted through thing groups. */
export function groupPolicyEntries(
  decision: Pick<Allow, "groupPolicies">,
): { group: string; policyName?: string }[] {
  return decision.groupPolicies.map(({ group, policy }) =>
    policy === undefined ? { group } : { group, policyName: policy.policyName },
  );
}
