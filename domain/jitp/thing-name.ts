import type { DeviceIdStrategy } from "../types.ts";
import {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_PARAMETERS,
  CERTIFICATE_TYPE,
  intrinsicOf,
  keyPath,
  own,
  type ParsedTemplate,
  SUB_VARIABLE,
  THING_TYPE,
} from "./template.ts";
import { checkTemplateBody } from "./validate.ts";

/*
 * Row 11a of the decision table denies a device whose template names a thing other than its device id.
 * When a mapping is saved, this module tells the admin in advance about a template that cannot follow the
 * device id, by looking at the ThingName expression alone (no device is at hand):
 * - one value for every device (a literal, `AWS::Region`, `AWS::AccountId`): on `device:<id>` it must be
 *   `<id>`; on any other selector, which serves every device it matches, it can fit one device at most;
 * - the certificate id (`AWS::IoT::Certificate::Id`, or a Ref to the certificate resource): a hash of the
 *   certificate, never the id the certificate names;
 * - a certificate field other than the one the device-id strategy reads (say the serialNumber, when the
 *   device id is the CN): it is the device id only on certificates whose two fields agree.
 * Anything else (the certificate field the strategy reads, a `ThingName` or other parameter that a record
 * attribute may fill, an expression of several values) can be the device id, and is checked per device.
 */

/** A note about a mapping that is saved as it is, but will not work as it reads. */
export interface MappingWarning {
  /** `missing-reference` and `broad-policy`: see domain/admin/mapping-checks.ts. */
  code: "thing-name-mismatch" | "missing-reference" | "broad-policy";
  /** Where in the mapping, in the dotted form validation errors use. */
  path: string;
  message: string;
}

/** What a ThingName expression can be, as far as it can be known without a device. */
type ThingNameSource =
  | { kind: "constant"; value: string }
  | { kind: "certificate-id" }
  | { kind: "certificate-field"; parameter: string; field: string }
  | { kind: "varies" };

/** The subject field each device-id strategy reads; a URI SAN is read by no template parameter. */
const STRATEGY_FIELD: Record<DeviceIdStrategy, string | undefined> = {
  cn: "CN",
  serialNumber: "serialNumber",
  "san-uri": undefined,
};

const STRATEGY_WORDS: Record<DeviceIdStrategy, string> = {
  cn: "its CN",
  serialNumber: "its subject serialNumber",
  "san-uri": "a URI SAN, which no template parameter reads",
};

/** Warnings for a mapping whose provisioning template cannot give the devices it serves their device id as thing name. */
export function thingNameWarnings(
  mapping: { selector: string; provisioningTemplate?: { templateBody: unknown } },
  context: { deviceIdStrategy: DeviceIdStrategy; region: string; accountId: string },
): MappingWarning[] {
  if (mapping.provisioningTemplate === undefined) return [];
  const base = "provisioningTemplate.templateBody";
  const { template } = checkTemplateBody(mapping.provisioningTemplate.templateBody, base);
  const thing = template?.resources.find((r) => r.type === THING_TYPE);
  const node = thing?.properties.ThingName;
  if (template === undefined || thing === undefined || node === undefined) return [];
  const path = keyPath(
    keyPath(keyPath(keyPath(base, "Resources"), thing.logicalName), "Properties"),
    "ThingName",
  );
  const source = sourceOf(node, template, context);
  const deviceSelector = mapping.selector.startsWith("device:") ? mapping.selector.slice(7) : undefined;
  const when = thing.condition === undefined ? "" : ` (when its Condition ${thing.condition} holds)`;
  const denied = "and is denied thing-name-mismatch: the thing name is always the device id";
  const message = (what: string) => ({
    code: "thing-name-mismatch" as const,
    path,
    message: `${what}${when}`,
  });
  switch (source.kind) {
    case "constant":
      if (deviceSelector === source.value) return [];
      return [
        message(
          deviceSelector !== undefined
            ? `names the thing ${JSON.stringify(source.value)}, not ${deviceSelector}: the device ${denied}`
            : `names the thing ${JSON.stringify(source.value)} for every device this mapping serves: each other device ${denied}`,
        ),
      ];
    case "certificate-id":
      return [message(`names the thing after the certificate id, never a device id: every device ${denied}`)];
    case "certificate-field": {
      const { deviceIdStrategy } = context;
      if (STRATEGY_FIELD[deviceIdStrategy] === source.field) return [];
      return [
        message(
          `names the thing after the certificate's ${source.field} (${source.parameter}), while the device id is ${STRATEGY_WORDS[deviceIdStrategy]}: a device whose certificate does not carry its device id there ${denied}`,
        ),
      ];
    }
    case "varies":
      return [];
  }
}

/** Classifies a ThingName expression; whatever else can differ between devices `varies`. */
function sourceOf(
  node: unknown,
  template: ParsedTemplate,
  context: { region: string; accountId: string },
): ThingNameSource {
  if (typeof node === "string") return { kind: "constant", value: node };
  const call = intrinsicOf(node);
  if (call === undefined) return { kind: "varies" };
  let name: string | undefined;
  if (call.name === "Ref" && typeof call.args === "string") name = call.args;
  // `{"Fn::Sub": "${X}"}` is `{"Ref": "X"}`; a Sub without variables is its text
  if (call.name === "Fn::Sub" && typeof call.args === "string") {
    const variables = [...call.args.matchAll(SUB_VARIABLE)];
    if (variables.length === 0) return { kind: "constant", value: call.args };
    const [only] = variables;
    if (variables.length === 1 && only !== undefined && only[0] === call.args && !only[1]?.startsWith("!"))
      name = only[1]?.trim();
  }
  if (name === undefined) return { kind: "varies" };
  if (name === "AWS::Region") return { kind: "constant", value: context.region };
  if (name === "AWS::AccountId") return { kind: "constant", value: context.accountId };
  if (name === CERTIFICATE_ID_PARAMETER) return { kind: "certificate-id" };
  if (template.resources.some((r) => r.logicalName === name && r.type === CERTIFICATE_TYPE))
    return { kind: "certificate-id" };
  const field = own(CERTIFICATE_PARAMETERS, name);
  if (field !== undefined && template.parameters.has(name))
    return { kind: "certificate-field", parameter: name, field };
  return { kind: "varies" };
}
