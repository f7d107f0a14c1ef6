import { samePolicyDocument } from "../../policies/index.ts";
import { readCertificate } from "../certificate.ts";
import { policyNameFor } from "../decide.ts";
import { describeError, ValidationError } from "../errors.ts";
import { ensurePolicy } from "../execute.ts";
import type { PolicyDescription } from "../ports.ts";
import { groupPolicyEntries } from "../provision.ts";
import { groupPoliciesOf } from "../references.ts";
import type { AllowlistRecord, CertificateFacts, LedgerEntry, PolicyMapping } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { caOf, everything, isReconcileEntry } from "./ledger.ts";
import { sameAttributes, sameList } from "./mapping-impact.ts";
import { type Selection, selectionFor } from "./selection.ts";

/*
 * Reconcile: bring each provisioned device's live state in the registry to what its records select now,
 * one slice of the allowlist at a time (resumable from the cursor a slice answers). For each device bound
 * to an ACTIVE or INACTIVE certificate it reads the certificate's attached policies and things, the
 * thing, its groups and the selected policy, then, in this order: creates or updates the thing (type,
 * attributes), adds it to the selected groups, ensures the policy document, attaches the selected policy
 * and the thing, detaches every other policy, takes the thing out of the groups not selected, deletes the
 * device's own per-device policies it detached (those its ledger names, and any named after it under the
 * current rule), records the policy on the binding, and writes one ledger entry (before and after).
 * New rights are granted before old ones are taken away. A device whose records select no policy, or
 * whose selected thing type or policy does not exist, is reported and left as it is.
 */

/** How many devices one slice reads at most, and by default. */
export const RECONCILE_LIMITS = { max: 100, default: 20 } as const;

/** One slice of a reconcile: where to start (the previous slice's cursor), how many, and whether to change anything. */
export interface ReconcileOptions {
  cursor?: string;
  limit?: number;
  dryRun?: boolean;
}

/** What reconcile found for one device: `changed` (or `would-change` in a dry run), or why it was left. */
export type ReconcileOutcome = "changed" | "would-change" | "skipped" | "unresolved" | "failed";

/** A device's rights and thing, as found or as selected. */
export interface ReconciledState {
  /** Policies attached to the bound certificate. */
  policies: string[];
  thingTypeName?: string;
  attributes: Record<string, string>;
  thingGroups: string[];
  /** Policies in effect through the thing groups the records name for rights, as `<policy> on <group>`. */
  groupPolicies?: string[];
}

/** One device reconcile changed, would change, or could not bring to its records. */
export interface DeviceReconciliation {
  deviceId: string;
  certificateId: string;
  outcome: ReconcileOutcome;
  /** The live state found; absent when the device was left before it was read. */
  before?: ReconciledState;
  /** The state the records select. */
  after?: ReconciledState;
  /** What was done (or would be), in order. */
  actions: string[];
  detail?: string;
}

/** One slice: the devices that changed or were left (unchanged ones only counted), and where to go on. */
export interface ReconcileSlice {
  dryRun: boolean;
  /** Provisioned devices read in this slice. */
  examined: number;
  devices: DeviceReconciliation[];
  /** Pass to the next slice; absent when this was the last. */
  cursor?: string;
  done: boolean;
}

/** The steps one device needs, found from its live state. */
interface DevicePlan {
  before: ReconciledState;
  after: ReconciledState;
  steps: { action: string; run: () => Promise<void>; optional?: boolean }[];
}

/** The reconcile use case: one slice at a time over the provisioned devices. */
export class ReconcileAdmin {
  constructor(private readonly context: AdminContext) {}

  /** Reconciles (or, dry run, examines) the next `limit` provisioned devices after `cursor`. */
  async slice(actor: string, options: ReconcileOptions = {}): Promise<ReconcileSlice> {
    const limit = options.limit ?? RECONCILE_LIMITS.default;
    if (!Number.isInteger(limit) || limit < 1 || limit > RECONCILE_LIMITS.max) {
      throw new ValidationError(`limit must be an integer from 1 to ${RECONCILE_LIMITS.max}`, [
        { path: "limit", message: `must be an integer from 1 to ${RECONCILE_LIMITS.max}` },
      ]);
    }
    const dryRun = options.dryRun === true;
    const { retried } = this.context;
    const mappings = new Map<string, PolicyMapping>();
    for await (const mapping of everything((page) => retried.mappings.list(page))) {
      mappings.set(mapping.selector, mapping);
    }
    const page = await retried.allowlist.list(
      { bound: true },
      options.cursor === undefined ? { limit } : { limit, cursor: options.cursor },
    );
    const policies = new Map<string, Promise<PolicyDescription | undefined>>();
    const devices: DeviceReconciliation[] = [];
    for (const record of page.items) {
      const certificateId = record.certificateId;
      if (certificateId === undefined) continue;
      let result: DeviceReconciliation | undefined;
      try {
        result = await this.#device(actor, record, certificateId, mappings, policies, dryRun);
      } catch (error) {
        result = {
          deviceId: record.deviceId,
          certificateId,
          outcome: "failed",
          actions: [],
          detail: describeError(error),
        };
      }
      if (result !== undefined) devices.push(result);
    }
    return {
      dryRun,
      examined: page.items.length,
      devices,
      ...(page.cursor !== undefined ? { cursor: page.cursor } : {}),
      done: page.cursor === undefined,
    };
  }

  /** One device: undefined when it is as its records select. */
  async #device(
    actor: string,
    record: AllowlistRecord,
    certificateId: string,
    mappings: ReadonlyMap<string, PolicyMapping>,
    policies: Map<string, Promise<PolicyDescription | undefined>>,
    dryRun: boolean,
  ): Promise<DeviceReconciliation | undefined> {
    const { deps, retried } = this.context;
    const { iot } = retried;
    const { deviceId } = record;
    const left = (outcome: ReconcileOutcome, detail: string): DeviceReconciliation => ({
      deviceId,
      certificateId,
      outcome,
      actions: [],
      detail,
    });
    if (record.status !== "allowed") return left("skipped", `the record is ${record.status}`);
    const description = await iot.describeCertificate(certificateId);
    if (description === undefined) return left("skipped", "the bound certificate is not in the registry");
    if (description.status !== "ACTIVE" && description.status !== "INACTIVE") {
      return left("skipped", `the bound certificate is ${description.status}`);
    }
    const ca = description.caCertificateId ?? (await caOf(retried.ledger, record)) ?? "unknown";
    const selection = selectionFor(deps.settings, deps.clock.now(), record, ca, mappings, {
      certificateId,
      facts: factsOf(description.certificatePem),
    });
    if (!selection.ok) return left("unresolved", `${selection.reason}: ${selection.detail}`);

    const policyOf = (name: string) => {
      let found = policies.get(name);
      if (found === undefined) {
        found = iot.getPolicy(name);
        policies.set(name, found);
      }
      return found;
    };
    const { policyName, document } = selection;
    const livePolicy = policyName === undefined ? undefined : await policyOf(policyName);
    if (policyName !== undefined && document === undefined && livePolicy === undefined) {
      return left("unresolved", `policy ${policyName} does not exist`);
    }
    const groupIssue = await this.#groupPolicyIssue(selection, policyOf);
    if (groupIssue !== undefined) return left("unresolved", groupIssue);
    const want = selection.thing;
    if (want.thingTypeName !== undefined) {
      const type = await iot.describeThingType(want.thingTypeName);
      if (type === undefined || type.deprecated) {
        return left(
          "unresolved",
          `thing type ${want.thingTypeName} ${type === undefined ? "does not exist" : "is deprecated"}`,
        );
      }
    }

    const plan = await this.#plan(
      record,
      certificateId,
      description.certificateArn,
      selection,
      livePolicy,
      policies,
    );
    if (plan.steps.length === 0) return undefined;
    const result: DeviceReconciliation = {
      deviceId,
      certificateId,
      outcome: dryRun ? "would-change" : "changed",
      before: plan.before,
      after: plan.after,
      actions: plan.steps.map((s) => s.action),
    };
    if (dryRun) return result;
    const done: string[] = [];
    const warnings: string[] = [];
    try {
      for (const step of plan.steps) {
        try {
          await step.run();
          done.push(step.action);
        } catch (error) {
          if (!step.optional) throw error;
          warnings.push(`${step.action} failed: ${describeError(error)}`);
        }
      }
    } catch (error) {
      result.outcome = "failed";
      result.actions = done;
      result.detail = describeError(error);
    }
    if (warnings.length > 0 && result.outcome === "changed") result.detail = warnings.join("; ");
    if (done.length > 0 || result.outcome === "failed") {
      const entry: LedgerEntry = {
        deviceId,
        at: deps.clock.now().toISOString(),
        certificateId,
        kind: "admin",
        actor,
        thingName: want.thingName,
        mappingSelector: selection.selector,
        mappingVersion: selection.mappingVersion,
        change: {
          action: "reconcile",
          before: plan.before,
          after: plan.after,
          actions: done,
          ...(result.detail !== undefined
            ? { [result.outcome === "failed" ? "error" : "warnings"]: result.detail }
            : {}),
        },
      };
      // A completed reconcile names the policy the certificate holds now (deprovision reads it from here).
      if (result.outcome === "changed") {
        if (policyName !== undefined) entry.policyName = policyName;
        if (selection.perDevice) entry.perDevicePolicy = true;
        if (selection.groupPolicies.length > 0) entry.groupPolicies = groupPolicyEntries(selection);
      }
      await retried.ledger.append(entry);
    }
    return result;
  }

  /** The steps that bring one device from its live state to its selection. */
  async #plan(
    record: AllowlistRecord,
    certificateId: string,
    arn: string,
    selection: Extract<Selection, { ok: true }>,
    livePolicy: PolicyDescription | undefined,
    policies: Map<string, Promise<PolicyDescription | undefined>>,
  ): Promise<DevicePlan> {
    const { deps, retried } = this.context;
    const { iot } = retried;
    const { deviceId } = record;
    const want = selection.thing;
    const { thingName } = want;
    const { policyName, document, perDevice } = selection;
    const thing = await iot.describeThing(thingName);
    const groups = thing === undefined ? [] : await iot.listThingGroupsForThing(thingName);
    const attached = await iot.listAttachedPolicies(arn);
    const attachedThings = await iot.listPrincipalThings(arn);
    const before: ReconciledState = {
      policies: [...attached].sort(),
      ...(thing?.thingTypeName !== undefined ? { thingTypeName: thing.thingTypeName } : {}),
      attributes: { ...(thing?.attributes ?? {}) },
      thingGroups: [...groups].sort(),
    };
    const groupPolicies = await this.#groupPolicySteps(selection, policies);
    const after: ReconciledState = {
      policies: policyName === undefined ? [] : [policyName],
      ...(want.thingTypeName !== undefined ? { thingTypeName: want.thingTypeName } : {}),
      attributes: { ...want.attributes },
      thingGroups: [...want.thingGroups],
      ...(groupPolicies.after.length > 0 ? { groupPolicies: groupPolicies.after } : {}),
    };
    const steps: DevicePlan["steps"] = [];
    const wantedThing = {
      thingName,
      ...(want.thingTypeName !== undefined ? { thingTypeName: want.thingTypeName } : {}),
      attributes: want.attributes,
    };
    if (thing === undefined) {
      steps.push({ action: `create thing ${thingName}`, run: () => iot.createThing(wantedThing) });
    } else if (
      thing.thingTypeName !== want.thingTypeName ||
      !sameAttributes(thing.attributes, want.attributes)
    ) {
      steps.push({
        action: `update thing ${thingName} (type ${want.thingTypeName ?? "none"}, ${Object.keys(want.attributes).length} attribute(s))`,
        run: () => iot.updateThing(wantedThing),
      });
    }
    for (const group of want.thingGroups.filter((g) => !groups.includes(g))) {
      steps.push({
        action: `add thing to group ${group}`,
        run: () => iot.addThingToThingGroup(thingName, group),
      });
    }
    // Rights through groups are in place before the certificate's old policies are taken away.
    steps.push(...groupPolicies.steps);
    if (
      policyName !== undefined &&
      document !== undefined &&
      (livePolicy === undefined || !samePolicyDocument(livePolicy.document, document))
    ) {
      steps.push({
        action:
          livePolicy === undefined ? `create policy ${policyName}` : `update policy ${policyName} document`,
        run: async () => {
          await ensurePolicy({ kind: "ensurePolicy", policyName, document, perDevice }, iot, []);
          policies.set(policyName, Promise.resolve({ policyName, document, defaultVersionId: "" }));
        },
      });
    }
    if (policyName !== undefined && !attached.includes(policyName)) {
      steps.push({ action: `attach policy ${policyName}`, run: () => iot.attachPolicy(policyName, arn) });
    }
    if (!attachedThings.includes(thingName)) {
      steps.push({
        action: `attach thing ${thingName}`,
        run: () => iot.attachThingPrincipal(thingName, arn),
      });
    }
    const detached = attached.filter((p) => p !== policyName);
    for (const name of detached) {
      steps.push({ action: `detach policy ${name}`, run: () => iot.detachPolicy(name, arn) });
    }
    if (!sameList(groups, want.thingGroups)) {
      for (const group of groups.filter((g) => !want.thingGroups.includes(g))) {
        steps.push({
          action: `remove thing from group ${group}`,
          run: () => iot.removeThingFromThingGroup(thingName, group),
        });
      }
    }
    if (detached.length > 0) {
      const own = await this.#ownPolicies(deviceId);
      for (const name of detached.filter((p) => own(p))) {
        steps.push({ action: `delete policy ${name}`, run: () => this.#deletePolicy(name), optional: true });
      }
    }
    if (record.policyName !== policyName || record.thingName !== thingName) {
      steps.push({
        action:
          policyName === undefined
            ? "record on the binding that no policy is attached to the certificate"
            : `record policy ${policyName} on the binding`,
        run: () =>
          retried.allowlist.completeBinding({
            deviceId,
            certificateId,
            thingName,
            ...(policyName !== undefined ? { policyName } : {}),
            provisionedAt: record.provisionedAt ?? deps.clock.now().toISOString(),
          }),
      });
    }
    return { before, after, steps };
  }

  /**
   * Why the rights a selection grants through thing groups cannot be put in place, if they cannot: a named
   * policy that does not exist, or a group whose own policies are the rights that holds none.
   */
  async #groupPolicyIssue(
    selection: Extract<Selection, { ok: true }>,
    policyOf: (name: string) => Promise<PolicyDescription | undefined>,
  ): Promise<string | undefined> {
    const { iot } = this.context.retried;
    for (const { group, policy } of selection.groupPolicies) {
      if (policy === undefined) {
        if (((await groupPoliciesOf(iot, group))?.length ?? 0) === 0)
          return `thing group ${group} does not exist or has no policy attached (to it or a parent group)`;
      } else if (policy.document === undefined && (await policyOf(policy.policyName)) === undefined) {
        return `policy ${policy.policyName} (for thing group ${group}) does not exist`;
      }
    }
    return undefined;
  }

  /**
   * The steps that keep the selected group policies current and attached to their groups, and the group
   * policies found and wanted, as `<policy> on <group>`.
   */
  async #groupPolicySteps(
    selection: Extract<Selection, { ok: true }>,
    policies: Map<string, Promise<PolicyDescription | undefined>>,
  ): Promise<{ before: string[]; after: string[]; steps: DevicePlan["steps"] }> {
    const { iot } = this.context.retried;
    const before: string[] = [];
    const after: string[] = [];
    const steps: DevicePlan["steps"] = [];
    const ensured = new Set<string>();
    for (const { group, policy } of selection.groupPolicies) {
      const live = (await groupPoliciesOf(iot, group)) ?? [];
      for (const fact of live) {
        const text = `${fact.policyName} on ${fact.attachedTo}`;
        if (!before.includes(text)) before.push(text);
      }
      if (policy === undefined) {
        for (const fact of live) after.push(`${fact.policyName} on ${fact.attachedTo}`);
        continue;
      }
      const { policyName, document } = policy;
      after.push(`${policyName} on ${group}`);
      if (document !== undefined && !ensured.has(policyName)) {
        ensured.add(policyName);
        let current = policies.get(policyName);
        if (current === undefined) {
          current = iot.getPolicy(policyName);
          policies.set(policyName, current);
        }
        const found = await current;
        if (found === undefined || !samePolicyDocument(found.document, document)) {
          steps.push({
            action:
              found === undefined ? `create policy ${policyName}` : `update policy ${policyName} document`,
            run: async () => {
              await ensurePolicy({ kind: "ensurePolicy", policyName, document, perDevice: false }, iot, []);
              policies.set(policyName, Promise.resolve({ policyName, document, defaultVersionId: "" }));
            },
          });
        }
      }
      if (!live.some((f) => f.policyName === policyName && f.attachedTo === group)) {
        steps.push({
          action: `attach policy ${policyName} to thing group ${group}`,
          run: async () => {
            const description = await iot.describeThingGroup(group);
            if (description === undefined)
              throw new ValidationError(`thing group ${group} does not exist`, []);
            await iot.attachPolicy(policyName, description.thingGroupArn);
          },
        });
      }
    }
    return { before: before.sort(), after: [...new Set(after)].sort(), steps };
  }

  /**
   * Which policies are the device's own per-device policies: those its ledger names as made for it
   * (under the current naming rule or a former one), and those the current rule names after it. Only
   * policies under the service's prefix qualify.
   */
  async #ownPolicies(deviceId: string): Promise<(policyName: string) => boolean> {
    const { deps, retried } = this.context;
    const prefix = deps.settings.policyPrefix;
    const named = new Set<string>();
    for await (const entry of everything((page) => retried.ledger.history(deviceId, page), 50)) {
      if ((entry.kind === "provisioned" || isReconcileEntry(entry)) && entry.perDevicePolicy === true) {
        if (entry.policyName !== undefined) named.add(entry.policyName);
      }
    }
    // `<prefix><base>@<device>`: the part after the one `@` names the device (see policyNameFor).
    const suffix = policyNameFor("", "", deviceId);
    return (name) =>
      name.startsWith(prefix) && (named.has(name) || (name.includes("@") && name.endsWith(suffix)));
  }

  /** Deletes a policy: its non-default versions first, as AWS IoT requires. */
  async #deletePolicy(policyName: string): Promise<void> {
    const { iot } = this.context.retried;
    for (const version of await iot.listPolicyVersions(policyName)) {
      if (!version.isDefault) await iot.deletePolicyVersion(policyName, version.versionId);
    }
    await iot.deletePolicy(policyName);
  }
}

/** What a certificate PEM says, or undefined when it cannot be read. */
function factsOf(pem: string): CertificateFacts | undefined {
  try {
    return readCertificate(pem);
  } catch {
    return undefined;
  }
}
