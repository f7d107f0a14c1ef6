import { samePolicyDocument } from "../policies/index.ts";
import { AlreadyExistsError, describeError, ProvisioningError } from "./errors.ts";
import type { KnownPolicies } from "./known-policies.ts";
import type { Plan, Step } from "./plan.ts";
import type { ClockPort, IotPort } from "./ports.ts";
import type { KnownReferences } from "./references.ts";
import { type RetryPolicy, retrying } from "./retry.ts";

/** AWS IoT keeps at most five versions of a policy. */
export const POLICY_VERSION_LIMIT = 5;

export interface ExecuteDeps {
  iot: IotPort;
  clock: ClockPort;
  retry: RetryPolicy;
  /** Shared policies recently seen in place, to skip re-checking them (optional). */
  knownPolicies?: KnownPolicies;
  /** Thing types and existing policies recently seen in place (the decision just checked them; optional). */
  knownReferences?: KnownReferences;
}

export interface ExecutionReport {
  /** Milliseconds each step took, by step kind (summed when a kind repeats). */
  timings: Record<string, number>;
}

/** Takes back what a step created; `run` calls the retrying port. */
type Undo = { label: string; run: () => Promise<void> };

/**
 * Runs a plan through the IoT port. Transient errors are retried with backoff; on a permanent one
 * everything this run created is undone in reverse order, and a ProvisioningError is thrown. The
 * certificate is activated only by the last step, so a failed run never leaves it ACTIVE.
 */
export async function execute(plan: Plan, deps: ExecuteDeps): Promise<ExecutionReport> {
  const undo: Undo[] = [];
  const timings: Record<string, number> = {};
  const iot = retrying(deps.iot, deps.retry, deps.clock);
  for (const step of plan.steps) {
    const started = deps.clock.now().getTime();
    try {
      await runStep(step, plan, iot, deps.knownPolicies, undo, deps.knownReferences);
    } catch (error) {
      const undoFailures = await rollback(undo);
      const suffix = undoFailures.length > 0 ? `; undo incomplete: ${undoFailures.join("; ")}` : "";
      throw new ProvisioningError(`step ${step.kind} failed: ${describeError(error)}${suffix}`, step.kind, {
        cause: error,
      });
    }
    timings[step.kind] = (timings[step.kind] ?? 0) + (deps.clock.now().getTime() - started);
  }
  return { timings };
}

/** Runs one step; `iot` retries its calls, and what the step created is pushed onto `undo`. */
async function runStep(
  step: Step,
  plan: Plan,
  iot: IotPort,
  known: KnownPolicies | undefined,
  undo: Undo[],
  references?: KnownReferences,
): Promise<void> {
  const arn = plan.certificateArn;
  switch (step.kind) {
    case "checkThingType": {
      if (references?.has({ kind: "thingType", name: step.thingTypeName })) return;
      const type = await iot.describeThingType(step.thingTypeName);
      if (type === undefined)
        throw new ProvisioningError(`thing type ${step.thingTypeName} does not exist`, step.kind);
      if (type.deprecated)
        throw new ProvisioningError(`thing type ${step.thingTypeName} is deprecated`, step.kind);
      return;
    }
    case "createThing": {
      const thing = {
        thingName: step.thingName,
        ...(step.thingTypeName !== undefined ? { thingTypeName: step.thingTypeName } : {}),
        attributes: step.attributes,
      };
      try {
        await iot.createThing(thing);
        undo.push({ label: `delete thing ${step.thingName}`, run: () => iot.deleteThing(step.thingName) });
      } catch (error) {
        // The thing exists with another configuration (a rotation, or an earlier device): bring it to the
        // wanted one, and leave it in place if this run fails.
        if (!(error instanceof AlreadyExistsError)) throw error;
        await iot.updateThing(thing);
      }
      return;
    }
    case "addThingToGroup":
      await iot.addThingToThingGroup(step.thingName, step.thingGroupName);
      return;
    case "checkPolicy": {
      if (references?.has({ kind: "policy", name: step.policyName })) return;
      const policy = await iot.getPolicy(step.policyName);
      if (policy === undefined)
        throw new ProvisioningError(`policy ${step.policyName} does not exist`, step.kind);
      return;
    }
    case "ensurePolicy": {
      if (!step.perDevice && known?.has(step.policyName, step.document)) return;
      await ensurePolicy(step, iot, undo);
      if (!step.perDevice) known?.remember(step.policyName, step.document);
      return;
    }
    case "attachPolicy":
      await iot.attachPolicy(step.policyName, arn);
      undo.push({
        label: `detach policy ${step.policyName}`,
        run: () => iot.detachPolicy(step.policyName, arn),
      });
      return;
    case "attachGroupPolicy": {
      if (known?.attachedToGroup(step.policyName, step.thingGroupName)) return;
      const group = await iot.describeThingGroup(step.thingGroupName);
      if (group === undefined)
        throw new ProvisioningError(`thing group ${step.thingGroupName} does not exist`, step.kind);
      // Shared by every member of the group, so a failed run leaves it attached (as a shared policy stays).
      await iot.attachPolicy(step.policyName, group.thingGroupArn);
      known?.rememberAttachedToGroup(step.policyName, step.thingGroupName);
      return;
    }
    case "attachThing":
      await iot.attachThingPrincipal(step.thingName, arn);
      undo.push({
        label: `detach thing ${step.thingName}`,
        run: () => iot.detachThingPrincipal(step.thingName, arn),
      });
      return;
    case "activateCertificate":
      await iot.updateCertificateStatus(plan.certificateId, "ACTIVE");
      return;
  }
}

/** Creates the policy, or makes the wanted document its default version (pruning to the version limit). */
export async function ensurePolicy(
  step: Extract<Step, { kind: "ensurePolicy" }>,
  iot: IotPort,
  undo: Undo[],
): Promise<void> {
  const existing = await iot.getPolicy(step.policyName);
  if (existing === undefined) {
    try {
      await iot.createPolicy(step.policyName, step.document);
      // A shared policy may be attached by a concurrent run as soon as it exists, so only a per-device
      // policy is removed on undo.
      if (step.perDevice) {
        undo.push({
          label: `delete policy ${step.policyName}`,
          run: () => iot.deletePolicy(step.policyName),
        });
      }
      return;
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      // Another run created it first: fall through and compare documents.
    }
  }
  const current = existing ?? (await iot.getPolicy(step.policyName));
  if (current !== undefined && samePolicyDocument(current.document, step.document)) return;
  const versions = await iot.listPolicyVersions(step.policyName);
  if (versions.length >= POLICY_VERSION_LIMIT) {
    const oldest = versions
      .filter((v) => !v.isDefault)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())[0];
    if (oldest !== undefined) await iot.deletePolicyVersion(step.policyName, oldest.versionId);
  }
  await iot.createPolicyVersion(step.policyName, step.document);
}

/** Undoes in reverse order; every undo is tried, and the ones that failed are described. */
async function rollback(undo: Undo[]): Promise<string[]> {
  const failures: string[] = [];
  for (const action of [...undo].reverse()) {
    try {
      await action.run();
    } catch (error) {
      failures.push(`${action.label}: ${describeError(error)}`);
    }
  }
  return failures;
}
