import type { ClockPort, IotPort } from "./ports.ts";

/*
 * The IoT resources a provisioning names and does not create: a thing type, thing groups, an existing
 * policy (a mapping's `policy: {policyName}` or a JITP template's PolicyName). One that does not exist
 * would make every attempt fail the same way, so the decision quarantines the device on the first one
 * (row 11b, `missing-reference`); an admin saving a mapping is told at once. The facts are read here,
 * through the IoT port; the decision itself stays pure.
 */

/** `groupPolicies`: a thing group whose own policies (attached to it or a parent group) are the rights. */
export type ReferenceKind = "thingType" | "thingGroup" | "policy" | "groupPolicies";

/** One resource a mapping or a provisioning names. */
export interface Reference {
  kind: ReferenceKind;
  name: string;
}

/** What the registry says of a reference: a thing type may exist but be deprecated (no new thing may use it). */
export type ReferenceState = "exists" | "missing" | "deprecated";

/** The states read for references, by {@link referenceKey}; a reference not in it was not checked. */
export type ReferenceFacts = ReadonlyMap<string, ReferenceState>;

/** The key of a reference in {@link ReferenceFacts}. */
export const referenceKey = (reference: Reference): string => `${reference.kind}\n${reference.name}`;

/** How a message names a reference ("thing type sensors"). */
export const describeReference = (reference: Reference): string =>
  `${KIND_WORDS[reference.kind]} ${reference.name}`;

const KIND_WORDS: Record<ReferenceKind, string> = {
  thingType: "thing type",
  thingGroup: "thing group",
  policy: "policy",
  groupPolicies: "thing group",
};

/** The references among `references` that the facts say cannot be used, with why. */
export function unusableReferences(
  references: readonly Reference[],
  facts: ReferenceFacts | undefined,
): { reference: Reference; state: "missing" | "deprecated" }[] {
  if (facts === undefined) return [];
  const out: { reference: Reference; state: "missing" | "deprecated" }[] = [];
  for (const reference of references) {
    const state = facts.get(referenceKey(reference));
    if (state === "missing" || state === "deprecated") out.push({ reference, state });
  }
  return out;
}

/** A sentence naming the unusable references ("thing type t does not exist; ..."). */
export function unusableText(unusable: { reference: Reference; state: "missing" | "deprecated" }[]): string {
  return unusable
    .map(({ reference, state }) =>
      reference.kind === "groupPolicies" && state === "missing"
        ? `${describeReference(reference)} does not exist or has no policy attached (to it or a parent group)`
        : `${describeReference(reference)} ${state === "missing" ? "does not exist" : "is deprecated"}`,
    )
    .join("; ");
}

/**
 * References seen in place recently by this process (built once per cold start). A check costs a Describe
 * or GetPolicy call against IoT quotas (GetPolicy: 10 per second per account), so a warm instance skips it
 * for a short while. Only existence is remembered: a missing reference is read again every time, so a device
 * approved once the resource is created is not held back by a stale answer.
 */
export class KnownReferences {
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly clock: ClockPort,
    private readonly ttlMs = 60_000,
  ) {}

  /** True when the reference was seen in place within the time to live. */
  has(reference: Reference): boolean {
    const until = this.#seen.get(referenceKey(reference));
    return until !== undefined && until > this.clock.now().getTime();
  }

  /** Remembers that the reference exists (and, for a thing type, is not deprecated). */
  remember(reference: Reference): void {
    if (this.#seen.size > 1_000) this.#seen.clear();
    this.#seen.set(referenceKey(reference), this.clock.now().getTime() + this.ttlMs);
  }
}

/** The registry reads a reference check makes. */
export type ReferenceReader = Pick<
  IotPort,
  "describeThingType" | "describeThingGroup" | "getPolicy" | "listAttachedPolicies"
>;

/** A policy in effect for a thing group's members, and the group it is attached to (the group or a parent). */
export interface GroupPolicyFact {
  policyName: string;
  attachedTo: string;
}

/**
 * The policies a thing group's members get: those attached to the group, then to each parent (nearest
 * first), each once; undefined when the group does not exist.
 */
export async function groupPoliciesOf(
  iot: Pick<IotPort, "describeThingGroup" | "listAttachedPolicies">,
  thingGroupName: string,
): Promise<GroupPolicyFact[] | undefined> {
  const group = await iot.describeThingGroup(thingGroupName);
  if (group === undefined) return undefined;
  const chain = [{ name: group.thingGroupName, arn: group.thingGroupArn }];
  for (const parent of group.parentGroupNames) {
    const description = await iot.describeThingGroup(parent);
    if (description !== undefined) chain.push({ name: parent, arn: description.thingGroupArn });
  }
  const out: GroupPolicyFact[] = [];
  for (const { name, arn } of chain) {
    for (const policyName of await iot.listAttachedPolicies(arn)) {
      if (!out.some((f) => f.policyName === policyName)) out.push({ policyName, attachedTo: name });
    }
  }
  return out;
}

/** Reads the state of each reference (distinct ones once), skipping those `known` has seen in place. */
export async function readReferences(
  references: readonly Reference[],
  iot: ReferenceReader,
  known?: KnownReferences,
): Promise<Map<string, ReferenceState>> {
  const facts = new Map<string, ReferenceState>();
  const distinct = new Map(references.map((reference) => [referenceKey(reference), reference]));
  await Promise.all(
    [...distinct].map(async ([key, reference]) => {
      if (known?.has(reference)) {
        facts.set(key, "exists");
        return;
      }
      const state = await stateOf(reference, iot);
      if (state === "exists") known?.remember(reference);
      facts.set(key, state);
    }),
  );
  return facts;
}

async function stateOf(reference: Reference, iot: ReferenceReader): Promise<ReferenceState> {
  switch (reference.kind) {
    case "thingType": {
      const type = await iot.describeThingType(reference.name);
      if (type === undefined) return "missing";
      return type.deprecated ? "deprecated" : "exists";
    }
    case "thingGroup":
      return (await iot.describeThingGroup(reference.name)) === undefined ? "missing" : "exists";
    case "policy":
      return (await iot.getPolicy(reference.name)) === undefined ? "missing" : "exists";
    case "groupPolicies":
      return ((await groupPoliciesOf(iot, reference.name))?.length ?? 0) > 0 ? "exists" : "missing";
  }
}
