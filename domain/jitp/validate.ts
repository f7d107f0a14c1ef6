import { renderPolicy } from "../../policies/index.ts";
import {
  ATTRIBUTE_NAME_PATTERN,
  ATTRIBUTE_NAME_RULE,
  ATTRIBUTE_VALUE_PATTERN,
  ATTRIBUTE_VALUE_RULE,
  POLICY_NAME_PATTERN,
  POLICY_NAME_RULE,
  THING_NAME_PATTERN,
  THING_NAME_RULE,
} from "../naming.ts";
import { ExpressionChecker } from "./expressions.ts";
import { compilePattern, parameterProblem } from "./parameters.ts";
import {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_IDENTITY_PROPERTIES,
  CERTIFICATE_PARAMETERS,
  CERTIFICATE_TYPE,
  indexPath,
  intrinsicOf,
  isObject,
  keyPath,
  mixesFunctionKeys,
  NO_VALUE,
  OVERRIDE_ACTIONS,
  OVERRIDE_PROPERTIES,
  own,
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
  type TemplateProblem,
  THING_TYPE,
  TOP_LEVEL_SECTIONS,
} from "./template.ts";

export type { TemplateProblem };

export type TemplateValidation = { ok: true } | { ok: false; errors: TemplateProblem[] };

const PARAMETER_NAME = /^[^\s${}!.]+$/;
const NUMERIC = /^-?\d+(\.\d+)?$/;

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

/** The longest provisioning template body, as compact JSON (AWS IoT's limit on a template body). */
export const TEMPLATE_BODY_MAX = 10_240;

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
  // AWS's own bound on a provisioning template body; it also bounds the work of checking one.
  const size = JSON.stringify(parsed)?.length ?? 0;
  if (size > TEMPLATE_BODY_MAX) {
    const message = `is ${size} characters as compact JSON; a provisioning template may have at most ${TEMPLATE_BODY_MAX}`;
    return { template: undefined, errors: [{ path: basePath, message }] };
  }
  const checker = new Checker(basePath);
  const template = checker.check(parsed);
  if (template === undefined || checker.errors.length > 0)
    return { template: undefined, errors: checker.errors };
  return { template, errors: [] };
}

/** Checks a template body, section by section; errors accumulate so an admin sees them all at once. */
class Checker extends ExpressionChecker {
  private readonly parameters = new Map<string, ParameterDeclaration>();
  /** How often each parameter is referred to as a certificate identity property. */
  private readonly identityUses = new Map<string, { count: number; property: string }>();

  constructor(private readonly base: string) {
    super();
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
      const compiled = compilePattern(pattern);
      if (compiled.ok) result.allowedPattern = pattern;
      else this.fail(keyPath(at, "AllowedPattern"), compiled.problem);
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
      const refused = own(REFUSED_PROPERTIES, key);
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
        return mustMatch(literal, THING_NAME_PATTERN, `a thing name (${THING_NAME_RULE})`);
      case `${THING_TYPE}.ThingTypeName`:
        return mustMatch(literal, THING_NAME_PATTERN, `a thing type name (${THING_NAME_RULE})`);
      case `${THING_TYPE}.ThingGroups`:
        if (Array.isArray(node)) {
          node.forEach((group, i) => {
            mustMatch(
              typeof group === "string" ? group : undefined,
              THING_NAME_PATTERN,
              `a thing group name (${THING_NAME_RULE})`,
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
              `an attribute name (${ATTRIBUTE_NAME_RULE})`,
              attributeAt,
            );
            if (typeof value === "string")
              mustMatch(
                value,
                ATTRIBUTE_VALUE_PATTERN,
                `an attribute value (${ATTRIBUTE_VALUE_RULE})`,
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
        return mustMatch(literal, POLICY_NAME_PATTERN, `a policy name (${POLICY_NAME_RULE})`);
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
}

/** True when a node holds an intrinsic function anywhere inside it. */
export function containsIntrinsic(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(containsIntrinsic);
  if (!isObject(node)) return false;
  if (intrinsicOf(node) !== undefined || mixesFunctionKeys(node)) return true;
  return Object.values(node).some(containsIntrinsic);
}
