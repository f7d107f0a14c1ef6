import { randomUUID } from "node:crypto";
import {
  checkAttributes,
  checkThingName,
  copy,
  nowSeconds,
  pageLimit,
  paginate,
  sameJson,
} from "./common.ts";
import { alreadyExists, IotError, invalid, notFound } from "./errors.ts";
import type { IotState, ThingGroupRecord } from "./state.ts";
import { requireThing } from "./things.ts";

/**
 * Static thing groups of the IoT emulator: CreateThingGroup, DescribeThingGroup, group
 * membership of things, and the groups (with their parents) a thing belongs to.
 */

const MAX_GROUPS_PER_THING = 10;

export interface CreateThingGroupInput {
  thingGroupName: string;
  parentGroupName?: string;
  thingGroupProperties?: ThingGroupRecord["thingGroupProperties"];
}

/** A thing and a thing group, each by name or by ARN. */
export interface MembershipInput {
  thingGroupName?: string;
  thingGroupArn?: string;
  thingName?: string;
  thingArn?: string;
}

type GroupIdentity = { thingGroupName: string; thingGroupArn: string; thingGroupId: string };

const identity = (group: ThingGroupRecord): GroupIdentity => ({
  thingGroupName: group.thingGroupName,
  thingGroupArn: group.thingGroupArn,
  thingGroupId: group.thingGroupId,
});

/** CreateThingGroup: identical configuration (properties and parent) answers with the existing group, as AWS documents. */
export function createThingGroup(state: IotState, input: CreateThingGroupInput): GroupIdentity {
  checkThingName(input.thingGroupName, "thing group name");
  const props = copy(input.thingGroupProperties ?? {});
  const attributes = props.attributePayload?.attributes;
  if (attributes) checkAttributes(attributes, true);
  if (input.parentGroupName !== undefined && !state.thingGroups.has(input.parentGroupName))
    throw notFound(`Thing group ${input.parentGroupName} cannot be found.`);
  const existing = state.thingGroups.get(input.thingGroupName);
  if (existing) {
    if (existing.parentGroupName !== input.parentGroupName || !sameJson(existing.thingGroupProperties, props))
      throw alreadyExists(
        `Thing group ${input.thingGroupName} already exists with different properties`,
        existing.thingGroupId,
        existing.thingGroupArn,
      );
    return identity(existing);
  }
  const group: ThingGroupRecord = {
    thingGroupName: input.thingGroupName,
    thingGroupId: randomUUID(),
    thingGroupArn: state.arn("thinggroup", input.thingGroupName),
    version: 1,
    ...(input.parentGroupName !== undefined ? { parentGroupName: input.parentGroupName } : {}),
    thingGroupProperties: props,
    creationDate: nowSeconds(),
  };
  state.thingGroups.set(group.thingGroupName, group);
  state.groupMembers.set(group.thingGroupName, new Set());
  state.save();
  return identity(group);
}

/** DescribeThingGroup, with the chain of parents from the root. */
export function describeThingGroup(state: IotState, thingGroupName: string) {
  const group = state.thingGroups.get(thingGroupName);
  if (!group) throw notFound(`Thing group ${thingGroupName} cannot be found.`);
  const rootToParent: { groupName: string; groupArn: string }[] = [];
  for (let parent = group.parentGroupName; parent !== undefined; ) {
    const p = state.thingGroups.get(parent);
    if (!p) break;
    rootToParent.unshift({ groupName: p.thingGroupName, groupArn: p.thingGroupArn });
    parent = p.parentGroupName;
  }
  return {
    thingGroupName: group.thingGroupName,
    thingGroupId: group.thingGroupId,
    thingGroupArn: group.thingGroupArn,
    version: group.version,
    thingGroupProperties: copy(group.thingGroupProperties),
    thingGroupMetadata: {
      ...(group.parentGroupName !== undefined ? { parentGroupName: group.parentGroupName } : {}),
      rootToParentThingGroups: rootToParent,
      creationDate: group.creationDate,
    },
  };
}

function resolveByNameOrArn<T>(
  state: IotState,
  kind: "thing" | "thinggroup",
  name: string | undefined,
  arn: string | undefined,
  map: Map<string, T>,
): T {
  let key = name;
  if (key === undefined && arn !== undefined) {
    const prefix = state.arn(kind, "");
    if (!arn.startsWith(prefix)) throw notFound(`${arn} cannot be found.`);
    key = arn.slice(prefix.length);
  }
  if (key === undefined) throw invalid(`Either the ${kind} name or its ARN is required`);
  const found = map.get(key);
  if (!found) throw notFound(`${kind === "thing" ? "Thing" : "Thing group"} ${key} cannot be found.`);
  return found;
}

function resolveMembership(state: IotState, input: MembershipInput) {
  const group = resolveByNameOrArn(
    state,
    "thinggroup",
    input.thingGroupName,
    input.thingGroupArn,
    state.thingGroups,
  );
  const thing = resolveByNameOrArn(state, "thing", input.thingName, input.thingArn, state.things);
  return { groupName: group.thingGroupName, thingName: thing.thingName };
}

/** AddThingToThingGroup: a thing belongs to at most 10 groups. */
export function addThingToThingGroup(state: IotState, input: MembershipInput): void {
  const { groupName, thingName } = resolveMembership(state, input);
  const members = state.groupMembers.get(groupName) ?? new Set<string>();
  state.groupMembers.set(groupName, members);
  if (members.has(thingName)) return;
  const count = [...state.groupMembers.values()].filter((m) => m.has(thingName)).length;
  if (count >= MAX_GROUPS_PER_THING)
    throw new IotError("LimitExceededException", `Thing ${thingName} is already in ${count} thing groups`);
  members.add(thingName);
  state.save();
}

/** RemoveThingFromThingGroup: removing a thing that is not a member succeeds without change (detach-style calls are idempotent). */
export function removeThingFromThingGroup(state: IotState, input: MembershipInput): void {
  const { groupName, thingName } = resolveMembership(state, input);
  if (state.groupMembers.get(groupName)?.delete(thingName)) state.save();
}

/** ListThingGroupsForThing, by group name. */
export function listThingGroupsForThing(
  state: IotState,
  input: { thingName: string; nextToken?: string; maxResults?: number },
) {
  const thing = requireThing(state, input.thingName);
  const groups = [...state.groupMembers.entries()]
    .filter(([, members]) => members.has(thing.thingName))
    .map(([name]) => name)
    .sort()
    .map((name) => ({ groupName: name, groupArn: state.arn("thinggroup", name) }));
  const page = paginate(groups, input.nextToken, pageLimit(input.maxResults, 25, 250));
  return { thingGroups: page.items, nextToken: page.next };
}

/** Names of the groups a thing belongs to and of all their parent groups, each once. */
export function groupsWithParentsOf(state: IotState, thingName: string): string[] {
  const groups = new Set<string>();
  for (const [groupName, members] of state.groupMembers) {
    if (!members.has(thingName)) continue;
    for (let name: string | undefined = groupName; name !== undefined && !groups.has(name); ) {
      groups.add(name);
      name = state.thingGroups.get(name)?.parentGroupName;
    }
  }
  return [...groups];
}
