import type { Allow, PolicyChoice } from "./decide.ts";

/** One idempotent provisioning step; the order of a plan is the order of execution. */
export type Step =
  | { kind: "checkThingType"; thingTypeName: string }
  | { kind: "createThing"; thingName: string; thingTypeName?: string; attributes: Record<string, string> }
  | { kind: "addThingToGroup"; thingName: string; thingGroupName: string }
  | { kind: "ensurePolicy"; policyName: string; document: string; perDevice: boolean }
  | { kind: "checkPolicy"; policyName: string }
  | { kind: "attachPolicy"; policyName: string }
  /** Keeps a policy attached to a thing group (shared by its members; never undone). */
  | { kind: "attachGroupPolicy"; policyName: string; thingGroupName: string }
  /** Attaches the certificate to the thing exclusively: never to a second thing. */
  | { kind: "attachThing"; thingName: string }
  | { kind: "activateCertificate" };

export interface Plan {
  deviceId: string;
  certificateId: string;
  certificateArn: string;
  steps: Step[];
}

/**
 * The ordered steps that provision an allowed certificate; activation is always last. The certificate's
 * policy is optional: rights may come through thing groups alone (each group policy ensured and attached
 * to its group, which the thing joins).
 */
export function plan(decision: Allow, certificate: { certificateId: string; certificateArn: string }): Plan {
  const { thing, policy, groupPolicies } = decision;
  const steps: Step[] = [];
  if (thing.thingTypeName !== undefined)
    steps.push({ kind: "checkThingType", thingTypeName: thing.thingTypeName });
  steps.push({
    kind: "createThing",
    thingName: thing.thingName,
    ...(thing.thingTypeName !== undefined ? { thingTypeName: thing.thingTypeName } : {}),
    attributes: thing.attributes,
  });
  for (const thingGroupName of thing.thingGroups) {
    steps.push({ kind: "addThingToGroup", thingName: thing.thingName, thingGroupName });
  }
  const policyStep = (choice: PolicyChoice): Step =>
    choice.document === undefined
      ? { kind: "checkPolicy", policyName: choice.policyName }
      : {
          kind: "ensurePolicy",
          policyName: choice.policyName,
          document: choice.document,
          perDevice: choice.perDevice,
        };
  // Group policies before the membership is of use: they are in place before the certificate is active.
  const ensured = new Set<string>();
  for (const { group, policy: groupPolicy } of groupPolicies) {
    if (groupPolicy === undefined) continue;
    if (!ensured.has(groupPolicy.policyName)) steps.push(policyStep(groupPolicy));
    ensured.add(groupPolicy.policyName);
    steps.push({ kind: "attachGroupPolicy", policyName: groupPolicy.policyName, thingGroupName: group });
  }
  if (policy !== undefined) {
    if (!ensured.has(policy.policyName)) steps.push(policyStep(policy));
    steps.push({ kind: "attachPolicy", policyName: policy.policyName });
  }
  steps.push({ kind: "attachThing", thingName: thing.thingName });
  steps.push({ kind: "activateCertificate" });
  return { deviceId: decision.deviceId, ...certificate, steps };
}
