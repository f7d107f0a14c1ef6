import { renderPolicy } from "../../policies/index.ts";
import {
  ATTRIBUTE_NAME_PATTERN,
  ATTRIBUTE_VALUE_PATTERN,
  POLICY_NAME_PATTERN,
  THING_NAME_PATTERN,
} from "../naming.ts";
import { anchored, parameterProblem } from "./parameters.ts";
import {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_IDENTITY_PROPERTIES,
  CERTIFICATE_PARAMETERS,
  CERTIFICATE_TYPE,
  CONDITION_FUNCTIONS,
  indexPath,
  intrinsicOf,
  isObject,
  keyPath,
  mixesFunctionKeys,
  NO_VALUE,
  OVERRIDE_ACTIONS,
  OVERRIDE_PROPERTIES,
  PARAMETER_KEYS,
  PARAMETER_TYPES,
  type ParameterDeclaration,
  type ParsedResource,
  type ParsedTemplate,
  POLICY_TYPE,
  PSEUDO_PARAMETERS,
  REFUSED_PROPERTIES,
  RESOURCE_PROPERTIES,
  RESOURCE_TYPES,
  type ResourceType,
  SUB_VARIABLE,
  THING_TYPE,
  TOP_LEVEL_SECTIONS,
  VALUE_FUNCTIONS,
} from "./template.ts";

/** One reason a template is refused: where (a dotted path) and what. */
export interface TemplateProblem {
  path: string;
  message: string;
}

export type TemplateValidation = { ok: true } | { ok: false; errors: TemplateProblem[] };

export type CheckedTemplate =
  | { ok: true; template: ParsedTemplate }
  | { ok: false; errors: TemplateProblem[] };

const PARAMETER_NAME = /^[^\s${}!.]+$/;
const NUMERIC = /^-?\d+(\.\d+)?$/;
const MAX_CONDITION_OPERANDS = 10;

/**
 * Validates a mapping's provisioning template when the mapping is saved: either the mapping field
 * (`{ templateBody, parameters? }`, paths relative to it) or a bare template body. Every unsupported
 * function, resource type or property, every Ref to an unknown name, every malformed section and every
 * mapping parameter its declaration refuses is reported with its path.
 */
export function validateProvisioningTemplate(template: unknown): TemplateValidation {
  const errors =
    isObject(template) && Object.hasOwn(template, "templateBody")
      ? validateMappingField(template)
      : checkTemplateBody(template, "").errors;
  return errors.length === 0 ? { ok: true } : { ok: false, errors };
}

function validateMappingField(field: Record<string, unknown>): TemplateProblem[] {
  const checked = checkTemplateBody(field.templateBody, "templateBody");
  const errors = [...checked.errors];
  for (const key of Object.keys(field)) {
    if (key !== "templateBody" && key !== "parameters") {
      errors.push({
        path: key,
        message:
          key === "roleArn"
            ? "is not needed: the service provisions with its own role"
            : "is not a known field (templateBody, parameters)",
      });
    }
  }
  const { parameters } = field;
  if (parameters === undefined) return errors;
  if (!isObject(parameters)) {
    errors.push({ path: "parameters", message: "must be an object of parameter names to string values" });
    return errors;
  }
  for (const [name, value] of Object.entries(parameters)) {
    const path = keyPath("parameters", name);
    if (typeof value !== "string") {
      errors.push({ path, message: "must be a string" });
      continue;
    }
    if (name === CERTIFICATE_ID_PARAMETER) {
      errors.push({ path, message: "is always the id of the certificate being registered" });
      continue;
    }
    if (checked.template === undefined) continue;
    const declaration = checked.template.parameters.get(name);
    if (declaration === undefined) {
      errors.push({ path, message: `the template declares no parameter ${name}` });
      continue;
    }
    const problem = parameterProblem(declaration, value);
    if (problem !== undefined) errors.push({ path, message: problem });
  }
  return errors;
}

/** Parses (when it is JSON text) and checks a template body; the parsed template when it is valid. */
export function checkTemplateBody(
  body: unknown,
  basePath: string,
): { template: ParsedTemplate; errors: [] } | { template: undefined; errors: TemplateProblem[] } {
  let parsed = body;
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { template: undefined, errors: [{ path: basePath, message: `is not valid JSON: ${reason}` }] };
    }
  }
  const checker = new Checker(basePath);
  const template = checker.check(parsed);
  if (template === undefined || checker.errors.length > 0)
    return { template: undefined, errors: checker.errors };
  return { template, errors: [] };
}

/** Checks a template body, section by section; errors accumulate so an admin sees them all at once. */
class Checker {
  readonly errors: TemplateProblem[] = [];
  private readonly parameters = new Map<string, ParameterDeclaration>();
  private readonly parameterNames = new Set<string>();
  private readonly mappings: ParsedTemplate["mappings"] = {};
  private readonly conditions = new Map<string, unknown>();
  private readonly resourceTypes = new Map<string, ResourceType | undefined>();
  private readonly policiesWithName = new Set<string>();
  /** Where the node being checked stands: in a condition only parameters may be referred to. */
  private inConditions = false;
  /** The names the resource or condition being checked refers to, for finding cycles. */
  private dependencies = new Set<string>();
  /** How often each parameter is referred to, in all and as a certificate identity property. */
  private readonly parameterUses = new Map<string, number>();
  private readonly identityUses = new Map<string, { count: number; property: string }>();

  constructor(private readonly base: string) {}

  /** Records a problem; returns undefined so a check can `return this.fail(...)`. */
  private fail(path: string, message: string): undefined {
    this.errors.push({ path, message });
    return undefined;
  }

  private path(...segments: string[]): string {
    return segments.reduce(keyPath, this.base);
  }

  check(body: unknown): ParsedTemplate | undefined {
    if (!isObject(body)) {
      this.fail(this.base, "must be a JSON object with Parameters and Resources");
      return undefined;
    }
    for (const key of Object.keys(body)) {
      if (key === "DeviceConfiguration") {
        this.fail(
          this.path(key),
          "is for fleet provisioning (returned to the device by RegisterThing); just-in-time provisioning has no device to send it to",
        );
      } else if (!TOP_LEVEL_SECTIONS.includes(key)) {
        this.fail(this.path(key), `is not a template section (known: ${TOP_LEVEL_SECTIONS.join(", ")})`);
      }
    }
    this.collectNames(body);
    this.checkParameters(body.Parameters);
    this.checkMappings(body.Mappings);
    this.checkConditions(body.Conditions);
    const resources = this.checkResources(body.Resources);
    const certificateParameters = new Map<string, string>();
    for (const [name, use] of this.identityUses) {
      if (use.count === this.parameterUses.get(name)) certificateParameters.set(name, use.property);
    }
    return {
      parameters: this.parameters,
      certificateParameters,
      mappings: this.mappings,
      conditions: this.conditions,
      resources,
    };
  }

  /** Names first, so a Ref may point at anything declared anywhere in the template. */
  private collectNames(body: Record<string, unknown>): undefined {
    if (isObject(body.Parameters))
      for (const name of Object.keys(body.Parameters)) this.parameterNames.add(name);
    if (isObject(body.Conditions))
      for (const [name, condition] of Object.entries(body.Conditions)) this.conditions.set(name, condition);
    if (isObject(body.Resources)) {
      for (const [name, resource] of Object.entries(body.Resources)) {
        const type = isObject(resource) ? resource.Type : undefined;
        this.resourceTypes.set(
          name,
          RESOURCE_TYPES.find((known) => known === type),
        );
        const properties = isObject(resource) ? resource.Properties : undefined;
        if (type === POLICY_TYPE && isObject(properties) && properties.PolicyName !== undefined)
          this.policiesWithName.add(name);
      }
    }
  }

  private checkParameters(section: unknown): undefined {
    if (section === undefined) return;
    const path = this.path("Parameters");
    if (!isObject(section)) return this.fail(path, "must be an object of parameter declarations");
    for (const [name, declaration] of Object.entries(section)) {
      const at = keyPath(path, name);
      if (PSEUDO_PARAMETERS.includes(name) || name === NO_VALUE) {
        this.fail(at, "is a pseudo parameter the service fills; it cannot be declared");
        continue;
      }
      if (
        name.startsWith("AWS::") &&
        !(name in CERTIFICATE_PARAMETERS) &&
        name !== CERTIFICATE_ID_PARAMETER
      ) {
        this.fail(
          at,
          `is not a parameter AWS IoT fills from the certificate (known: ${[...Object.keys(CERTIFICATE_PARAMETERS), CERTIFICATE_ID_PARAMETER].join(", ")})`,
        );
        continue;
      }
      if (!name.startsWith("AWS::") && !PARAMETER_NAME.test(name)) {
        this.fail(at, "a parameter name may not be empty or contain whitespace, $, {, }, ! or .");
        continue;
      }
      const parsed = this.parameterDeclaration(declaration, at);
      if (parsed !== undefined) this.parameters.set(name, parsed);
    }
  }

  private parameterDeclaration(declaration: unknown, at: string): ParameterDeclaration | undefined {
    if (!isObject(declaration)) {
      this.fail(at, 'must be a parameter declaration such as {"Type": "String"}');
      return undefined;
    }
    const before = this.errors.length;
    for (const key of Object.keys(declaration)) {
      if (!PARAMETER_KEYS.includes(key))
        this.fail(keyPath(at, key), `is not a parameter property (known: ${PARAMETER_KEYS.join(", ")})`);
    }
    const type = PARAMETER_TYPES.find((known) => known === declaration.Type);
    if (type === undefined) {
      this.fail(
        keyPath(at, "Type"),
        declaration.Type === undefined
          ? `is required: ${PARAMETER_TYPES.join(", ")}`
          : `must be one of ${PARAMETER_TYPES.join(", ")}`,
      );
    }
    const result: ParameterDeclaration = { type: type ?? "String" };
    const text = (key: string) => {
      const value = declaration[key];
      if (value === undefined) return undefined;
      if (typeof value === "string") return value;
      if (typeof value === "number") return String(value);
      this.fail(keyPath(at, key), "must be a string");
      return undefined;
    };
    const number = (key: string, integer: boolean) => {
      const value = declaration[key];
      if (value === undefined) return undefined;
      const n =
        typeof value === "number"
          ? value
          : typeof value === "string" && NUMERIC.test(value)
            ? Number(value)
            : Number.NaN;
      if (Number.isNaN(n) || (integer && (!Number.isInteger(n) || n < 0))) {
        this.fail(keyPath(at, key), integer ? "must be a non-negative integer" : "must be a number");
        return undefined;
      }
      return n;
    };
    const defaultValue = text("Default");
    if (defaultValue !== undefined) result.default = defaultValue;
    const pattern = text("AllowedPattern");
    if (pattern !== undefined) {
      try {
        anchored(pattern);
        result.allowedPattern = pattern;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        this.fail(keyPath(at, "AllowedPattern"), `is not a valid regular expression: ${reason}`);
      }
    }
    const allowed = declaration.AllowedValues;
    if (allowed !== undefined) {
      if (
        !Array.isArray(allowed) ||
        allowed.length === 0 ||
        !allowed.every((v) => typeof v === "string" || typeof v === "number")
      ) {
        this.fail(keyPath(at, "AllowedValues"), "must be a non-empty list of strings");
      } else {
        result.allowedValues = allowed.map(String);
      }
    }
    const maxLength = number("MaxLength", true);
    if (maxLength !== undefined) result.maxLength = maxLength;
    const minLength = number("MinLength", true);
    if (minLength !== undefined) result.minLength = minLength;
    const maxValue = number("MaxValue", false);
    if (maxValue !== undefined) result.maxValue = maxValue;
    const minValue = number("MinValue", false);
    if (minValue !== undefined) result.minValue = minValue;
    for (const key of ["Description", "ConstraintDescription"]) {
      if (declaration[key] !== undefined && typeof declaration[key] !== "string")
        this.fail(keyPath(at, key), "must be a string");
    }
    if (this.errors.length > before) return undefined;
    if (result.default !== undefined) {
      const problem = parameterProblem(result, result.default);
      if (problem !== undefined) this.fail(keyPath(at, "Default"), problem);
    }
    return result;
  }

  private checkMappings(section: unknown): undefined {
    if (section === undefined) return;
    const path = this.path("Mappings");
    if (!isObject(section)) return this.fail(path, "must be an object of mappings");
    for (const [name, mapping] of Object.entries(section)) {
      const at = keyPath(path, name);
      if (!isObject(mapping)) {
        this.fail(at, "must be an object of top-level keys to objects of second-level keys");
        continue;
      }
      const parsed: Record<string, Record<string, string | string[]>> = {};
      for (const [top, entries] of Object.entries(mapping)) {
        const topAt = keyPath(at, top);
        if (!isObject(entries)) {
          this.fail(topAt, "must be an object of second-level keys to values");
          continue;
        }
        const values: Record<string, string | string[]> = {};
        for (const [second, value] of Object.entries(entries)) {
          if (typeof value === "string" || typeof value === "number") values[second] = String(value);
          else if (Array.isArray(value) && value.every((v) => typeof v === "string")) values[second] = value;
          else
            this.fail(
              keyPath(topAt, second),
              "must be a string or a list of strings (Mappings cannot use parameters or intrinsic functions)",
            );
        }
        parsed[top] = values;
      }
      this.mappings[name] = parsed;
    }
  }

  private checkConditions(section: unknown): undefined {
    if (section === undefined) return;
    const path = this.path("Conditions");
    if (!isObject(section)) return this.fail(path, "must be an object of named conditions");
    const graph = new Map<string, Set<string>>();
    this.inConditions = true;
    for (const [name, condition] of Object.entries(section)) {
      this.dependencies = new Set();
      this.condition(condition, keyPath(path, name));
      graph.set(name, this.dependencies);
    }
    this.inConditions = false;
    this.reportCycles(graph, path, "condition");
  }

  private checkResources(section: unknown): ParsedResource[] {
    const path = this.path("Resources");
    if (!isObject(section) || Object.keys(section).length === 0) {
      this.fail(
        path,
        "is required: an object of resources (AWS::IoT::Thing, AWS::IoT::Certificate, AWS::IoT::Policy)",
      );
      return [];
    }
    const parsed: ParsedResource[] = [];
    const graph = new Map<string, Set<string>>();
    for (const [logicalName, resource] of Object.entries(section)) {
      this.dependencies = new Set();
      const checked = this.resource(logicalName, resource, keyPath(path, logicalName));
      graph.set(logicalName, this.dependencies);
      if (checked !== undefined) parsed.push(checked);
    }
    this.reportCycles(graph, path, "resource");
    const count = (type: ResourceType, unconditional = false) =>
      parsed.filter((r) => r.type === type && (!unconditional || r.condition === undefined)).length;
    if (count(THING_TYPE) > 1) this.fail(path, "may declare at most one AWS::IoT::Thing: the device's thing");
    if (count(CERTIFICATE_TYPE) > 1)
      this.fail(path, "may declare at most one AWS::IoT::Certificate: the certificate being registered");
    if (count(POLICY_TYPE, true) > 1)
      this.fail(
        path,
        "at most one AWS::IoT::Policy may apply to a device: give all but one of them a Condition",
      );
    return parsed;
  }

  private resource(logicalName: string, resource: unknown, at: string): ParsedResource | undefined {
    if (!isObject(resource)) {
      this.fail(at, "must be an object with Type and Properties");
      return undefined;
    }
    const before = this.errors.length;
    const type = this.resourceTypes.get(logicalName);
    if (type === undefined) {
      this.fail(
        keyPath(at, "Type"),
        resource.Type === undefined
          ? `is required: one of ${RESOURCE_TYPES.join(", ")}`
          : `unsupported resource type ${JSON.stringify(resource.Type)} (supported: ${RESOURCE_TYPES.join(", ")})`,
      );
    }
    for (const key of Object.keys(resource)) {
      if (!["Type", "Properties", "Condition", "OverrideSettings"].includes(key))
        this.fail(keyPath(at, key), "is not supported on a provisioning template resource");
    }
    const { Condition: condition, Properties: properties = {} } = resource;
    if (condition !== undefined && (typeof condition !== "string" || !this.conditions.has(condition)))
      this.fail(keyPath(at, "Condition"), `names no condition in Conditions: ${JSON.stringify(condition)}`);
    if (!isObject(properties)) {
      this.fail(keyPath(at, "Properties"), "must be an object");
      return undefined;
    }
    if (type === undefined) return undefined;
    const propertiesAt = keyPath(at, "Properties");
    for (const [key, value] of Object.entries(properties)) {
      const propertyAt = keyPath(propertiesAt, key);
      const refused = REFUSED_PROPERTIES[key];
      if (refused !== undefined) this.fail(propertyAt, refused);
      else if (!RESOURCE_PROPERTIES[type].includes(key))
        this.fail(
          propertyAt,
          `is not a property of ${type} (known: ${RESOURCE_PROPERTIES[type].join(", ")})`,
        );
      else this.property(type, key, value, propertyAt);
      const ref = intrinsicOf(value);
      if (type === CERTIFICATE_TYPE && CERTIFICATE_IDENTITY_PROPERTIES.includes(key) && ref?.name === "Ref") {
        const name = String(ref.args);
        const use = this.identityUses.get(name) ?? { count: 0, property: key };
        this.identityUses.set(name, { ...use, count: use.count + 1 });
      }
    }
    if (type === POLICY_TYPE) {
      const hasName = properties.PolicyName !== undefined;
      const hasDocument = properties.PolicyDocument !== undefined;
      if (hasName === hasDocument)
        this.fail(
          propertiesAt,
          hasName
            ? "declare PolicyName (an existing policy) or PolicyDocument (a policy the service creates), not both"
            : "needs PolicyName (an existing policy) or PolicyDocument (a policy the service creates)",
        );
    }
    this.overrideSettings(type, resource.OverrideSettings, keyPath(at, "OverrideSettings"));
    if (this.errors.length > before) return undefined;
    return {
      logicalName,
      type,
      condition: typeof condition === "string" ? condition : undefined,
      properties,
    };
  }

  /** Checks a property's expressions, and its literal values against AWS's rules for that property. */
  private property(type: ResourceType, key: string, node: unknown, at: string): undefined {
    this.value(node, at);
    const literal = typeof node === "string" ? node : undefined;
    const mustMatch = (value: string | undefined, pattern: RegExp, what: string, path = at): undefined => {
      if (value !== undefined && !pattern.test(value)) this.fail(path, `must be ${what}`);
    };
    switch (`${type}.${key}`) {
      case `${THING_TYPE}.ThingName`:
        return mustMatch(literal, THING_NAME_PATTERN, "a thing name ([a-zA-Z0-9:_-]{1,128})");
      case `${THING_TYPE}.ThingTypeName`:
        return mustMatch(literal, THING_NAME_PATTERN, "a thing type name ([a-zA-Z0-9:_-]{1,128})");
      case `${THING_TYPE}.ThingGroups`:
        if (Array.isArray(node)) {
          node.forEach((group, i) => {
            mustMatch(
              typeof group === "string" ? group : undefined,
              THING_NAME_PATTERN,
              "a thing group name ([a-zA-Z0-9:_-]{1,128})",
              indexPath(at, i),
            );
          });
        } else if (intrinsicOf(node) === undefined) this.fail(at, "must be a list of thing group names");
        return;
      case `${THING_TYPE}.AttributePayload`:
        if (isObject(node) && intrinsicOf(node) === undefined) {
          for (const [name, value] of Object.entries(node)) {
            const attributeAt = keyPath(at, name);
            mustMatch(
              name,
              ATTRIBUTE_NAME_PATTERN,
              "an attribute name ([a-zA-Z0-9_.,@/:#-]{1,128})",
              attributeAt,
            );
            if (typeof value === "string")
              mustMatch(
                value,
                ATTRIBUTE_VALUE_PATTERN,
                "an attribute value ([a-zA-Z0-9_.,@/:#=[]-]{0,800})",
                attributeAt,
              );
            else if (intrinsicOf(value) === undefined) this.fail(attributeAt, "must be a string");
          }
        } else if (intrinsicOf(node) === undefined)
          this.fail(at, "must be an object of attribute names to values");
        return;
      case `${CERTIFICATE_TYPE}.Status`:
        if (literal !== undefined && !["ACTIVE", "INACTIVE"].includes(literal.toUpperCase()))
          this.fail(at, "must be ACTIVE or INACTIVE");
        return;
      case `${POLICY_TYPE}.PolicyName`:
        return mustMatch(literal, POLICY_NAME_PATTERN, "a policy name ([\\w+=,.@-]{1,128})");
      case `${POLICY_TYPE}.PolicyDocument`:
        return this.literalPolicyDocument(node, at);
    }
  }

  /** A policy document written out in full is checked now: JSON, Version and Statement, AWS's size limit. */
  private literalPolicyDocument(node: unknown, at: string): undefined {
    if (typeof node !== "string" && !isObject(node)) {
      this.fail(at, "must be a policy document: a JSON object, or one written as an escaped string");
      return;
    }
    if (isObject(node) && containsIntrinsic(node)) return;
    const text = typeof node === "string" ? node : JSON.stringify(node);
    if (text.includes("{{")) return; // service placeholders are filled per device
    const rendered = renderPolicy(text, {
      deviceId: "sample-device",
      region: "us-east-1",
      accountId: "123456789012",
      attributes: {},
    });
    if (!rendered.ok) this.fail(at, rendered.error);
  }

  private overrideSettings(type: ResourceType, settings: unknown, at: string): undefined {
    if (settings === undefined) return;
    const allowed = OVERRIDE_PROPERTIES[type];
    if (allowed.length === 0) return this.fail(at, `is not available for ${type}`);
    if (!isObject(settings)) return this.fail(at, "must be an object of property names to actions");
    for (const [key, action] of Object.entries(settings)) {
      if (!allowed.includes(key))
        this.fail(keyPath(at, key), `is not an override of ${type} (known: ${allowed.join(", ")})`);
      else if (typeof action !== "string" || !OVERRIDE_ACTIONS.includes(action))
        this.fail(keyPath(at, key), `must be one of ${OVERRIDE_ACTIONS.join(", ")}`);
    }
  }

  /** A value expression: a literal, a list, an object, or one of the supported intrinsic functions. */
  private value(node: unknown, at: string, locals?: Set<string>): undefined {
    if (node === null) return this.fail(at, "null is not a template value");
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        this.value(item, indexPath(at, i), locals);
      });
      return;
    }
    if (!isObject(node)) return;
    if (mixesFunctionKeys(node))
      return this.fail(at, "an intrinsic function (Ref, Fn::...) must be the only key of its object");
    const call = intrinsicOf(node);
    if (call === undefined) {
      for (const [key, value] of Object.entries(node)) this.value(value, keyPath(at, key), locals);
      return;
    }
    this.call(call.name, call.args, keyPath(at, call.name), locals);
  }

  private call(name: string, args: unknown, at: string, locals?: Set<string>): undefined {
    const list = (length: number | [number, number]) => {
      const [min, max] = typeof length === "number" ? [length, length] : length;
      if (!Array.isArray(args) || args.length < min || args.length > max) {
        this.fail(at, `takes a list of ${min === max ? min : `${min} to ${max}`} arguments`);
        return undefined;
      }
      return args;
    };
    switch (name) {
      case "Ref":
        if (typeof args !== "string") return this.fail(at, "takes the name of a parameter or resource");
        return this.reference(args, at);
      case "Fn::Join": {
        const [delimiter, values] = list(2) ?? [];
        if (delimiter === undefined) return;
        if (typeof delimiter !== "string") this.fail(indexPath(at, 0), "the delimiter must be a string");
        return this.listValue(values, indexPath(at, 1), locals);
      }
      case "Fn::Select": {
        const [index, values] = list(2) ?? [];
        if (index === undefined) return;
        if (typeof index === "number" || typeof index === "string") {
          const n = Number(index);
          if (!Number.isInteger(n) || n < 0)
            this.fail(indexPath(at, 0), "the index must be a non-negative integer");
          else if (Array.isArray(values) && n >= values.length)
            this.fail(indexPath(at, 0), `index ${n} is outside the list of ${values.length}`);
        } else this.value(index, indexPath(at, 0), locals);
        return this.listValue(values, indexPath(at, 1), locals);
      }
      case "Fn::Split": {
        const [delimiter, source] = list(2) ?? [];
        if (delimiter === undefined) return;
        if (typeof delimiter !== "string" || delimiter === "")
          this.fail(indexPath(at, 0), "the delimiter must be a non-empty string");
        return this.value(source, indexPath(at, 1), locals);
      }
      case "Fn::Sub":
        return this.sub(args, at, locals);
      case "Fn::FindInMap": {
        const keys = list(3);
        if (keys === undefined) return;
        keys.forEach((key, i) => {
          this.value(key, indexPath(at, i), locals);
        });
        const [mapName, top, second] = keys;
        if (typeof mapName !== "string") return;
        const mapping = this.mappings[mapName];
        if (mapping === undefined)
          return this.fail(indexPath(at, 0), `names no mapping in Mappings: ${mapName}`);
        if (typeof top !== "string") return;
        const entries = mapping[top];
        if (entries === undefined) return this.fail(indexPath(at, 1), `mapping ${mapName} has no key ${top}`);
        if (typeof second === "string" && entries[second] === undefined)
          this.fail(indexPath(at, 2), `mapping ${mapName}.${top} has no key ${second}`);
        return;
      }
      case "Fn::If": {
        const [condition, whenTrue, whenFalse] = list(3) ?? [];
        if (condition === undefined) return;
        if (this.inConditions) return this.fail(at, "cannot be used inside a condition");
        if (typeof condition !== "string" || !this.conditions.has(condition))
          this.fail(indexPath(at, 0), `names no condition in Conditions: ${JSON.stringify(condition)}`);
        this.value(whenTrue, indexPath(at, 1), locals);
        return this.value(whenFalse, indexPath(at, 2), locals);
      }
      case "Fn::Base64":
        return this.value(args, at, locals);
      default:
        if (CONDITION_FUNCTIONS.includes(name))
          return this.fail(
            at,
            `${name} is a condition function: use it in the Conditions section, and Fn::If here`,
          );
        return this.fail(
          at,
          `unsupported intrinsic function ${name} (supported: ${VALUE_FUNCTIONS.join(", ")}, and ${CONDITION_FUNCTIONS.join(", ")} in Conditions)`,
        );
    }
  }

  /** A list argument: a literal list, or a function that yields one. */
  private listValue(node: unknown, at: string, locals?: Set<string>): undefined {
    if (!Array.isArray(node) && intrinsicOf(node) === undefined)
      return this.fail(at, "must be a list, or a function that returns one");
    this.value(node, at, locals);
  }

  private sub(args: unknown, at: string, inherited?: Set<string>): undefined {
    let text: unknown = args;
    const locals = new Set(inherited);
    if (Array.isArray(args)) {
      const [template, variables] = args;
      if (args.length !== 2 || !isObject(variables))
        return this.fail(at, "takes a string, or a list of a string and an object of variables");
      text = template;
      for (const [name, value] of Object.entries(variables)) {
        this.value(value, keyPath(indexPath(at, 1), name), inherited);
        locals.add(name);
      }
    }
    if (typeof text !== "string") return this.fail(at, "the text to substitute into must be a string");
    for (const match of text.matchAll(SUB_VARIABLE)) {
      const inner = match[1] ?? "";
      if (inner.startsWith("!")) continue;
      const name = inner.trim();
      if (locals.has(name)) continue;
      if (name.includes(".") && !this.known(name)) {
        this.fail(at, `\${${name}} reads a resource attribute (Fn::GetAtt), which is not supported`);
        continue;
      }
      if (!this.known(name)) {
        const hint = /^(iot|aws):/i.test(name) ? ` (write \${!${name}} to keep the policy variable)` : "";
        this.fail(at, `\${${name}} names no parameter or resource${hint}`);
        continue;
      }
      this.reference(name, at);
    }
  }

  private known(name: string): boolean {
    return (
      this.parameterNames.has(name) ||
      PSEUDO_PARAMETERS.includes(name) ||
      name === CERTIFICATE_ID_PARAMETER ||
      this.resourceTypes.has(name)
    );
  }

  private reference(name: string, at: string): undefined {
    if (name === NO_VALUE) {
      if (this.inConditions) this.fail(at, "AWS::NoValue cannot be used in a condition");
      return;
    }
    if (this.parameterNames.has(name)) {
      this.parameterUses.set(name, (this.parameterUses.get(name) ?? 0) + 1);
      return;
    }
    // The certificate id is always known, so it may be referred to undeclared (as AWS's own examples do).
    if (PSEUDO_PARAMETERS.includes(name) || name === CERTIFICATE_ID_PARAMETER) return;
    if (this.resourceTypes.has(name)) {
      if (this.inConditions)
        return this.fail(at, `a condition may refer to parameters only, not resource ${name}`);
      if (this.resourceTypes.get(name) === POLICY_TYPE && !this.policiesWithName.has(name))
        return this.fail(
          at,
          `Ref to policy ${name} needs its PolicyName (the service names a PolicyDocument policy)`,
        );
      this.dependencies.add(name);
      return;
    }
    this.fail(at, `Ref to unknown parameter or resource ${JSON.stringify(name)}`);
  }

  private condition(node: unknown, at: string): undefined {
    const call = isObject(node) && Object.keys(node).length === 1 ? Object.entries(node)[0] : undefined;
    if (call === undefined)
      return this.fail(at, 'must be one of Fn::Equals, Fn::And, Fn::Or, Fn::Not or {"Condition": name}');
    const [name, args] = call;
    const callAt = keyPath(at, name);
    switch (name) {
      case "Condition":
        if (typeof args !== "string" || !this.conditions.has(args))
          return this.fail(callAt, `names no condition in Conditions: ${JSON.stringify(args)}`);
        this.dependencies.add(args);
        return;
      case "Fn::Equals":
        if (!Array.isArray(args) || args.length !== 2) return this.fail(callAt, "takes a list of 2 values");
        args.forEach((value, i) => {
          this.value(value, indexPath(callAt, i));
        });
        return;
      case "Fn::And":
      case "Fn::Or":
        if (!Array.isArray(args) || args.length < 2 || args.length > MAX_CONDITION_OPERANDS)
          return this.fail(callAt, `takes a list of 2 to ${MAX_CONDITION_OPERANDS} conditions`);
        args.forEach((operand, i) => {
          this.condition(operand, indexPath(callAt, i));
        });
        return;
      case "Fn::Not":
        if (!Array.isArray(args) || args.length !== 1)
          return this.fail(callAt, "takes a list of 1 condition");
        return this.condition(args[0], indexPath(callAt, 0));
      default:
        return this.fail(
          callAt,
          `is not a condition function (supported: ${CONDITION_FUNCTIONS.join(", ")}, and {"Condition": name})`,
        );
    }
  }

  private reportCycles(graph: Map<string, Set<string>>, path: string, what: string): undefined {
    const done = new Set<string>();
    const visit = (name: string, trail: string[]): void => {
      if (done.has(name)) return;
      const at = trail.indexOf(name);
      if (at >= 0) {
        const cycle = [...trail.slice(at), name];
        this.fail(keyPath(path, name), `${what} ${name} depends on itself: ${cycle.join(" -> ")}`);
        for (const member of cycle) done.add(member);
        return;
      }
      for (const next of graph.get(name) ?? []) visit(next, [...trail, name]);
      done.add(name);
    };
    for (const name of graph.keys()) visit(name, []);
  }
}

/** True when a node holds an intrinsic function anywhere inside it. */
export function containsIntrinsic(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(containsIntrinsic);
  if (!isObject(node)) return false;
  if (intrinsicOf(node) !== undefined || mixesFunctionKeys(node)) return true;
  return Object.values(node).some(containsIntrinsic);
}
