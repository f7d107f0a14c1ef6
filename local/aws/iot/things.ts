import { randomUUID } from "node:crypto";
import { checkAttributes, checkThingName, copy, pageLimit, paginate, sameJson } from "./common.ts";
import { alreadyExists, IotError, invalid, notFound } from "./errors.ts";
import type { IotState, ThingRecord } from "./state.ts";
import { requireThingType } from "./thing-types.ts";

/** Things of the IoT emulator: CreateThing, DescribeThing, UpdateThing, DeleteThing, ListThings. */

export interface CreateThingInput {
  thingName: string;
  thingTypeName?: string;
  attributePayload?: { attributes?: Record<string, string> };
  billingGroupName?: string;
}

export interface UpdateThingInput {
  thingName: string;
  thingTypeName?: string;
  attributePayload?: { attributes?: Record<string, string>; merge?: boolean };
  expectedVersion?: number;
  removeThingType?: boolean;
}

export interface ListThingsInput {
  nextToken?: string;
  maxResults?: number;
  attributeName?: string;
  attributeValue?: string;
  thingTypeName?: string;
  usePrefixAttributeValue?: boolean;
}

type ThingIdentity = { thingName: string; thingArn: string; thingId: string };

/** The thing record for a name; InvalidRequest or ResourceNotFound otherwise. */
export function requireThing(state: IotState, thingName: string): ThingRecord {
  checkThingName(thingName);
  const thing = state.things.get(thingName);
  if (!thing) throw notFound(`Thing ${thingName} cannot be found.`);
  return thing;
}

/** The thing record for a name, or undefined. */
export function describeThingByName(state: IotState, thingName: string): ThingRecord | undefined {
  const record = state.things.get(thingName);
  return record ? copy(record) : undefined;
}

const versionConflict = (thingName: string): IotError =>
  new IotError(
    "VersionConflictException",
    `The version for thing ${thingName} does not match the expected version.`,
  );

/** CreateThing: an existing thing with the same configuration is answered as is. */
export function createThing(state: IotState, input: CreateThingInput): ThingIdentity {
  checkThingName(input.thingName);
  const attributes = Object.fromEntries(
    Object.entries(input.attributePayload?.attributes ?? {}).filter(([, v]) => v !== ""),
  );
  if (input.thingTypeName !== undefined) requireThingType(state, input.thingTypeName);
  checkAttributes(attributes, input.thingTypeName !== undefined);
  // Billing groups are not emulated, so no billing group can exist (stricter reading).
  if (input.billingGroupName !== undefined)
    throw notFound(`Billing group ${input.billingGroupName} cannot be found.`);
  const existing = state.things.get(input.thingName);
  if (existing) {
    const same =
      existing.thingTypeName === input.thingTypeName &&
      existing.billingGroupName === input.billingGroupName &&
      sameJson(existing.attributes, attributes);
    if (!same)
      throw alreadyExists(
        `Thing ${input.thingName} already exists in account with different attributes`,
        existing.thingId,
        existing.thingArn,
      );
    return { thingName: existing.thingName, thingArn: existing.thingArn, thingId: existing.thingId };
  }
  const thing: ThingRecord = {
    thingName: input.thingName,
    thingId: randomUUID(),
    thingArn: state.arn("thing", input.thingName),
    ...(input.thingTypeName !== undefined ? { thingTypeName: input.thingTypeName } : {}),
    attributes,
    version: 1,
  };
  state.things.set(thing.thingName, thing);
  state.save();
  return { thingName: thing.thingName, thingArn: thing.thingArn, thingId: thing.thingId };
}

/** DescribeThing. */
export function describeThing(state: IotState, thingName: string): ThingRecord & { defaultClientId: string } {
  const thing = requireThing(state, thingName);
  return { defaultClientId: thing.thingName, ...copy(thing) };
}

/** UpdateThing: thing type and attributes (an empty value removes an attribute). */
export function updateThing(state: IotState, input: UpdateThingInput): void {
  const thing = requireThing(state, input.thingName);
  if (input.expectedVersion !== undefined && input.expectedVersion !== thing.version)
    throw versionConflict(thing.thingName);
  if (input.removeThingType && input.thingTypeName !== undefined)
    throw invalid("Cannot set thingTypeName and removeThingType together");
  if (input.thingTypeName !== undefined) requireThingType(state, input.thingTypeName);
  const typeName = input.removeThingType ? undefined : (input.thingTypeName ?? thing.thingTypeName);
  let attributes = thing.attributes;
  const payload = input.attributePayload?.attributes;
  if (payload !== undefined) {
    // An empty value removes the attribute; without merge the payload replaces all attributes.
    attributes = input.attributePayload?.merge ? { ...thing.attributes, ...payload } : { ...payload };
    attributes = Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== ""));
  }
  checkAttributes(attributes, typeName !== undefined);
  thing.attributes = attributes;
  if (typeName === undefined) delete thing.thingTypeName;
  else thing.thingTypeName = typeName;
  thing.version += 1;
  state.save();
}

/** DeleteThing: deleting a thing that does not exist succeeds, as in AWS. */
export function deleteThing(state: IotState, thingName: string, expectedVersion: number | undefined): void {
  checkThingName(thingName);
  const thing = state.things.get(thingName);
  if (!thing) return;
  if (expectedVersion !== undefined && expectedVersion !== thing.version) throw versionConflict(thingName);
  if (state.thingPrincipals.some((tp) => tp.thingName === thingName))
    throw invalid(`Cannot delete. Thing ${thingName} is still attached to one or more principals`);
  state.things.delete(thingName);
  for (const members of state.groupMembers.values()) members.delete(thingName);
  state.save();
}

/** ListThings, by name, filtered by thing type and attribute. */
export function listThings(state: IotState, input: ListThingsInput) {
  if (input.attributeValue !== undefined && input.attributeName === undefined)
    throw invalid("attributeValue requires attributeName");
  const list = [...state.things.values()]
    .filter((t) => input.thingTypeName === undefined || t.thingTypeName === input.thingTypeName)
    .filter((t) => {
      if (input.attributeName === undefined) return true;
      const value = t.attributes[input.attributeName];
      if (value === undefined) return false;
      if (input.attributeValue === undefined) return true;
      return input.usePrefixAttributeValue
        ? value.startsWith(input.attributeValue)
        : value === input.attributeValue;
    })
    .sort((a, b) => (a.thingName < b.thingName ? -1 : 1));
  const page = paginate(list, input.nextToken, pageLimit(input.maxResults, 50, 250));
  return {
    things: page.items.map((t) => ({
      thingName: t.thingName,
      ...(t.thingTypeName !== undefined ? { thingTypeName: t.thingTypeName } : {}),
      thingArn: t.thingArn,
      attributes: { ...t.attributes },
      version: t.version,
    })),
    nextToken: page.next,
  };
}
