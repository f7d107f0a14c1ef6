import { randomUUID } from "node:crypto";
import { ATTRIBUTE_NAME_PATTERN } from "../../../domain/naming.ts";
import { checkThingName, copy, nowSeconds } from "./common.ts";
import { alreadyExists, invalid, notFound } from "./errors.ts";
import type { IotState, ThingTypeRecord } from "./state.ts";

/** Thing types of the IoT emulator: CreateThingType and DescribeThingType. */

export interface CreateThingTypeInput {
  thingTypeName: string;
  thingTypeProperties?: { thingTypeDescription?: string; searchableAttributes?: string[] };
}

/** The thing type a thing may be given: it exists and is not deprecated. */
export function requireThingType(state: IotState, thingTypeName: string): ThingTypeRecord {
  const type = state.thingTypes.get(thingTypeName);
  if (!type) throw notFound(`Thing type ${thingTypeName} cannot be found.`);
  if (type.thingTypeMetadata.deprecated) throw invalid(`Thing type ${thingTypeName} is deprecated`);
  return type;
}

/** CreateThingType: an existing name fails even with identical properties (stricter reading). */
export function createThingType(
  state: IotState,
  input: CreateThingTypeInput,
): { thingTypeName: string; thingTypeArn: string; thingTypeId: string } {
  checkThingName(input.thingTypeName, "thing type name");
  const props = input.thingTypeProperties ?? {};
  if (props.searchableAttributes && props.searchableAttributes.length > 3)
    throw invalid("A thing type can have at most 3 searchable attributes");
  for (const name of props.searchableAttributes ?? [])
    if (!ATTRIBUTE_NAME_PATTERN.test(name)) throw invalid(`Invalid searchable attribute name: ${name}`);
  const existing = state.thingTypes.get(input.thingTypeName);
  if (existing)
    throw alreadyExists(
      `Thing type ${input.thingTypeName} already exists`,
      existing.thingTypeId,
      existing.thingTypeArn,
    );
  const type: ThingTypeRecord = {
    thingTypeName: input.thingTypeName,
    thingTypeId: randomUUID(),
    thingTypeArn: state.arn("thingtype", input.thingTypeName),
    thingTypeProperties: {
      ...(props.thingTypeDescription !== undefined
        ? { thingTypeDescription: props.thingTypeDescription }
        : {}),
      ...(props.searchableAttributes !== undefined
        ? { searchableAttributes: [...props.searchableAttributes] }
        : {}),
    },
    thingTypeMetadata: { deprecated: false, creationDate: nowSeconds() },
  };
  state.thingTypes.set(type.thingTypeName, type);
  state.save();
  return {
    thingTypeName: type.thingTypeName,
    thingTypeArn: type.thingTypeArn,
    thingTypeId: type.thingTypeId,
  };
}

/** DescribeThingType. */
export function describeThingType(state: IotState, thingTypeName: string): ThingTypeRecord {
  checkThingName(thingTypeName, "thing type name");
  const type = state.thingTypes.get(thingTypeName);
  if (!type) throw notFound(`Thing type ${thingTypeName} cannot be found.`);
  return copy(type);
}
