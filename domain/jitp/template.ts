/*
 * The shape of a provisioning template in AWS IoT's JITP format (the `templateBody` AWS attaches to a CA),
 * and the vocabulary this service understands of it. `validate.ts` checks a template against this
 * vocabulary and produces a ParsedTemplate; `evaluate.ts` evaluates a ParsedTemplate for one device.
 */

import { isObject } from "../json.ts";

export const THING_TYPE = "AWS::IoT::Thing";
export const CERTIFICATE_TYPE = "AWS::IoT::Certificate";
export const POLICY_TYPE = "AWS::IoT::Policy";
export type ResourceType = typeof THING_TYPE | typeof CERTIFICATE_TYPE | typeof POLICY_TYPE;
export const RESOURCE_TYPES: readonly ResourceType[] = [THING_TYPE, CERTIFICATE_TYPE, POLICY_TYPE];

/** The properties each resource type may declare. */
export const RESOURCE_PROPERTIES: Record<ResourceType, readonly string[]> = {
  [THING_TYPE]: ["ThingName", "AttributePayload", "ThingTypeName", "ThingGroups"],
  [CERTIFICATE_TYPE]: [
    "CertificateId",
    "CertificateSigningRequest",
    "CertificatePem",
    "CACertificatePem",
    "Status",
  ],
  [POLICY_TYPE]: ["PolicyName", "PolicyDocument"],
};

/** Properties AWS defines that this service refuses, with the reason given to the admin. */
export const REFUSED_PROPERTIES: Record<string, string> = {
  BillingGroup:
    "BillingGroup is not supported: the service does not manage billing groups; add the thing to one separately",
  PackageVersions: "PackageVersions is not supported: the service does not manage software package versions",
};

/** The OverrideSettings each resource type may carry (accepted and ignored; see evaluate.ts). */
export const OVERRIDE_PROPERTIES: Record<ResourceType, readonly string[]> = {
  [THING_TYPE]: ["AttributePayload", "ThingTypeName", "ThingGroups"],
  [CERTIFICATE_TYPE]: ["Status"],
  [POLICY_TYPE]: [],
};
export const OVERRIDE_ACTIONS = ["DO_NOTHING", "REPLACE", "FAIL", "MERGE"];

export const TOP_LEVEL_SECTIONS = [
  "AWSTemplateFormatVersion",
  "Description",
  "Parameters",
  "Mappings",
  "Conditions",
  "Resources",
];

export const PARAMETER_TYPES = ["String", "Number", "CommaDelimitedList"] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];
export const PARAMETER_KEYS = [
  "Type",
  "Default",
  "AllowedPattern",
  "AllowedValues",
  "MaxLength",
  "MinLength",
  "MaxValue",
  "MinValue",
  "Description",
  "ConstraintDescription",
  "NoEcho",
];

/** Parameter names JITP fills from the certificate being registered, by the subject attribute they read. */
export const CERTIFICATE_PARAMETERS: Record<string, string> = {
  "AWS::IoT::Certificate::CommonName": "CN",
  "AWS::IoT::Certificate::SerialNumber": "serialNumber",
  "AWS::IoT::Certificate::Country": "C",
  "AWS::IoT::Certificate::Organization": "O",
  "AWS::IoT::Certificate::OrganizationalUnit": "OU",
  "AWS::IoT::Certificate::DistinguishedNameQualifier": "dnQualifier",
  "AWS::IoT::Certificate::StateName": "ST",
  "AWS::IoT::Certificate::Locality": "L",
  "AWS::IoT::Certificate::Title": "title",
};
/** The certificate id parameter: always the id of the certificate being registered. */
export const CERTIFICATE_ID_PARAMETER = "AWS::IoT::Certificate::Id";

/** Pseudo parameters a template may Ref without declaring them. */
export const PSEUDO_PARAMETERS = ["AWS::Region", "AWS::AccountId"];
/** `{"Ref": "AWS::NoValue"}` removes the property or list item it stands for. */
export const NO_VALUE = "AWS::NoValue";

export const VALUE_FUNCTIONS = [
  "Ref",
  "Fn::Join",
  "Fn::Select",
  "Fn::Split",
  "Fn::Sub",
  "Fn::FindInMap",
  "Fn::If",
  "Fn::Base64",
];
export const CONDITION_FUNCTIONS = ["Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"];

/** A declared parameter, normalized by validation. */
export interface ParameterDeclaration {
  type: ParameterType;
  default?: string;
  allowedPattern?: string;
  allowedValues?: string[];
  maxLength?: number;
  minLength?: number;
  maxValue?: number;
  minValue?: number;
}

export interface ParsedResource {
  logicalName: string;
  type: ResourceType;
  condition: string | undefined;
  properties: Record<string, unknown>;
}

/** The certificate resource's properties that identify a certificate (in this flow, the registered one). */
export const CERTIFICATE_IDENTITY_PROPERTIES = [
  "CertificateId",
  "CertificateSigningRequest",
  "CertificatePem",
  "CACertificatePem",
];

/** A template that passed validation: what evaluation works on. */
export interface ParsedTemplate {
  parameters: Map<string, ParameterDeclaration>;
  /**
   * Parameters used only as `{"Ref": ...}` of the certificate resource's identity properties, by the
   * property: in this flow they name the certificate being registered, so the service fills them.
   */
  certificateParameters: Map<string, string>;
  /** Mapping name -> top-level key -> second-level key -> string or list of strings. */
  mappings: Record<string, Record<string, Record<string, string | string[]>>>;
  conditions: Map<string, unknown>;
  resources: ParsedResource[];
}

const isFunctionKey = (key: string) => key === "Ref" || key.startsWith("Fn::");

/** The intrinsic function a node is (`{"Ref": ...}`, `{"Fn::X": ...}`), or undefined for a plain value. */
export function intrinsicOf(node: unknown): { name: string; args: unknown } | undefined {
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  const [key] = keys;
  if (keys.length !== 1 || key === undefined || !isFunctionKey(key)) return undefined;
  return { name: key, args: node[key] };
}

/** True when an object mixes an intrinsic function key with other keys (a malformed function call). */
export const mixesFunctionKeys = (node: Record<string, unknown>): boolean => {
  const keys = Object.keys(node);
  return keys.length > 1 && keys.some(isFunctionKey);
};

/** A `${name}` (or `${!literal}`) in an Fn::Sub string. */
export const SUB_VARIABLE = /\$\{([^}]*)\}/g;

/**
 * A table's own entry for a key a template chose: a plain object lookup would also find `__proto__`,
 * `constructor` or `toString` on Object.prototype.
 */
export const own = <T>(table: Readonly<Record<string, T>> | undefined, key: string): T | undefined =>
  table !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;

/** A path segment for an object key, in the `a.b[0]` form validation errors use. */
export const keyPath = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`);
/** A path segment for a list index. */
export const indexPath = (path: string, index: number): string => `${path}[${index}]`;

/** One reason a template is refused: where (a dotted path) and what. */
export interface TemplateProblem {
  path: string;
  message: string;
}

export { isObject };
