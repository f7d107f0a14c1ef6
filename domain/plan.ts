import type { Allow } from "./decide.ts";

/** One idempotent provisioning step; the order of a plan is the order of execution. */
export type Step =
  | { kind: "checkThingType"; thingTypeName: string }
  | { kind: "createThing"; thingName: string; thingTypeName?: string; attributes: Record<string, string> }
  | { kind: "addThingToGroup"; thingName: string; thingGroupName: string }
  | { kind: "ensurePolicy"; policyName: string; document: string; perDevice: boolean }
  | { kind: "checkPolicy"; policyName: string }
  | { kind: "attachPolicy"; policyName: string }
  /** Attaches the certificate to the thing exclusively: never to a second thing. */
  | { kind: "attachThing"; thingName: string }
  | { kind: "activateCertificate" };

export interface Plan {
  deviceId: string;
  certificateId: string;
  certificateArn: string;
  steps: Step[];
}

/** The ordered steps that provision an allowed certificate; activation is always last. */
export function plan(decision: Allow, certificate: { certificateId: string; certificateArn: string }): Plan {
  const { thing, policy } = decision;
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
  steps.push(
    policy.document === undefined
      ? { kind: "checkPolicy", policyName: policy.policyName }
      : {
          kind: "ensurePolicy",
          policyName: policy.policyName,
          document: policy.document,
          perDevice: policy.perDevice,
        },
  );
  steps.push({ kind: "attachPolicy", policyName: policy.policyName });
  steps.push({ kind: "attachThing", thingName: thing.thingName });
  steps.push({ kind: "activateCertificate" });
  return { deviceId: decision.deviceId, ...certificate, steps };
}
