import { invalidFields, StateConflictError } from "../errors.ts";
import type { MappingWarning } from "../jitp/index.ts";
import { isObject, parseJsonOrUndefined } from "../json.ts";
import type { MappingFields } from "../records.ts";
import { type Reference, readReferences, unusableReferences, unusableText } from "../references.ts";
import { broadGrants } from "./broad-policy.ts";
import type { AdminContext } from "./deps.ts";

/*
 * What saving a mapping checks beyond its form: that the thing type, thing groups and existing policy it
 * names exist (else 409 naming each, unless `force`: saved with a warning), and that an inline policy
 * grants nothing broad (else 400 naming each grant, unless `allowBroadPolicy`: saved with a warning).
 */

/** How an admin overrides the checks of a mapping save. */
export interface MappingSaveOptions {
  /** Save although a thing type, thing group or existing policy it names does not exist. */
  force?: boolean;
  /** Save an inline policy that grants more than one device's own resources (see ./broad-policy.ts). */
  allowBroadPolicy?: boolean;
}

/** A mapping save refused because resources it names do not exist; `issues` name each by its path. */
export class MissingReferenceError extends StateConflictError {
  constructor(readonly issues: { path: string; message: string }[]) {
    const [first] = issues;
    super(
      issues.length === 1 && first
        ? `${first.path}: ${first.message}; create it first, or save with force=true`
        : `${issues.length} resources the mapping names do not exist; create them first, or save with force=true`,
    );
    this.name = "MissingReferenceError";
  }
}

/** A reference a mapping names literally, with where. */
interface Named {
  reference: Reference;
  path: string;
}

/**
 * Checks a mapping about to be saved (or dry-run: `refuse` false, everything becomes a warning) and answers
 * the warnings to give with it; throws when a check fails that the options do not override.
 */
export async function checkMapping(
  context: AdminContext,
  fields: MappingFields,
  options: MappingSaveOptions,
  refuse: boolean,
): Promise<MappingWarning[]> {
  const broad = broadGrantsOf(fields);
  if (refuse && broad.length > 0 && options.allowBroadPolicy !== true) {
    throw invalidFields(
      broad.map((b) => ({
        path: b.path,
        message: `${b.message}; a device policy should grant only the device's own resources (allowBroadPolicy=true to save it anyway)`,
      })),
    );
  }
  const named = namedReferences(fields);
  const facts = await readReferences(
    named.map((n) => n.reference),
    context.retried.iot,
  );
  const missing = named.flatMap((n) => {
    const [unusable] = unusableReferences([n.reference], facts);
    return unusable === undefined ? [] : [{ path: n.path, message: unusableText([unusable]) }];
  });
  if (refuse && missing.length > 0 && options.force !== true) throw new MissingReferenceError(missing);
  return [
    ...broad.map((b) => ({ code: "broad-policy" as const, ...b })),
    ...missing.map((m) => ({
      code: "missing-reference" as const,
      path: m.path,
      message: `${m.message}: devices it maps are quarantined missing-reference until it does`,
    })),
  ];
}

/** The broad grants of the mapping's inline policy and of its template's literal policy documents. */
export function broadGrantsOf(fields: MappingFields) {
  const source = fields.policy;
  const fromPolicy =
    source !== undefined && "document" in source ? broadGrants(source.document, "policy.document") : [];
  const fromGroups = (fields.groupPolicies ?? []).flatMap((entry, i) =>
    entry.policy !== undefined && "document" in entry.policy
      ? broadGrants(entry.policy.document, `groupPolicies[${i}].policy.document`)
      : [],
  );
  return [
    ...fromPolicy,
    ...fromGroups,
    ...templateResources(fields).flatMap(({ name, type, properties }) =>
      type === "AWS::IoT::Policy"
        ? broadGrants(
            properties.PolicyDocument,
            `provisioningTemplate.templateBody.Resources.${name}.Properties.PolicyDocument`,
          )
        : [],
    ),
  ];
}

/** The thing type, thing groups, existing policies and group policies a mapping names as literal values, each with its path. */
export function namedReferences(fields: MappingFields): Named[] {
  const named: Named[] = [];
  if (fields.thingType !== undefined)
    named.push({ reference: { kind: "thingType", name: fields.thingType }, path: "thingType" });
  fields.thingGroups?.forEach((name, i) => {
    named.push({ reference: { kind: "thingGroup", name }, path: `thingGroups[${i}]` });
  });
  if (fields.policy !== undefined && "policyName" in fields.policy)
    named.push({ reference: { kind: "policy", name: fields.policy.policyName }, path: "policy.policyName" });
  // Rights through thing groups: the group must exist; a named policy must exist; without a policy the
  // group's own policies are the rights, so it (or a parent) must hold one.
  fields.groupPolicies?.forEach(({ group, policy }, i) => {
    named.push({ reference: { kind: "thingGroup", name: group }, path: `groupPolicies[${i}].group` });
    if (policy === undefined)
      named.push({ reference: { kind: "groupPolicies", name: group }, path: `groupPolicies[${i}]` });
    else if ("policyName" in policy)
      named.push({
        reference: { kind: "policy", name: policy.policyName },
        path: `groupPolicies[${i}].policy.policyName`,
      });
  });
  for (const { name, type, properties } of templateResources(fields)) {
    const at = `provisioningTemplate.templateBody.Resources.${name}.Properties`;
    if (type === "AWS::IoT::Thing") {
      if (typeof properties.ThingTypeName === "string")
        named.push({
          reference: { kind: "thingType", name: properties.ThingTypeName },
          path: `${at}.ThingTypeName`,
        });
      if (Array.isArray(properties.ThingGroups))
        properties.ThingGroups.forEach((group, i) => {
          if (typeof group === "string")
            named.push({ reference: { kind: "thingGroup", name: group }, path: `${at}.ThingGroups[${i}]` });
        });
    }
    if (type === "AWS::IoT::Policy" && typeof properties.PolicyName === "string")
      named.push({ reference: { kind: "policy", name: properties.PolicyName }, path: `${at}.PolicyName` });
  }
  return named;
}

/** The resources of the mapping's provisioning template (its body parsed when written as a string). */
function templateResources(
  fields: MappingFields,
): { name: string; type: unknown; properties: Record<string, unknown> }[] {
  const body = fields.provisioningTemplate?.templateBody;
  const parsed = typeof body === "string" ? parseJsonOrUndefined(body) : body;
  const resources = isObject(parsed) ? parsed.Resources : undefined;
  if (!isObject(resources)) return [];
  return Object.entries(resources).flatMap(([name, resource]) =>
    isObject(resource) && isObject(resource.Properties)
      ? [{ name, type: resource.Type, properties: resource.Properties }]
      : [],
  );
}
