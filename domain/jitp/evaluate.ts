import {
  ATTRIBUTE_NAME_PATTERN,
  ATTRIBUTE_VALUE_PATTERN,
  ATTRIBUTE_VALUE_RULE,
  POLICY_NAME_PATTERN,
  THING_NAME_PATTERN,
  THING_NAME_RULE,
} from "../naming.ts";
import {
  type ParameterInputs,
  type ParameterSource,
  type ResolvedParameter,
  resolveParameters,
} from "./parameters.ts";
import {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_TYPE,
  indexPath,
  intrinsicOf,
  isObject,
  keyPath,
  NO_VALUE,
  own,
  type ParsedResource,
  type ParsedTemplate,
  POLICY_TYPE,
  type ResourceType,
  SUB_VARIABLE,
  THING_TYPE,
} from "./template.ts";
import { checkTemplateBody } from "./validate.ts";

/** A mapping's `provisioningTemplate` field. */
export interface ProvisioningTemplateField {
  templateBody: string | Record<string, unknown>;
  parameters?: Record<string, string>;
}

/** What a template is evaluated against for one device. */
export interface TemplateContext extends Omit<ParameterInputs, "mappingParameters"> {
  region: string;
  accountId: string;
}

/** The thing a template describes; a property the template does not declare is left undefined. */
export interface TemplateThing {
  thingName?: string;
  thingTypeName?: string;
  attributes?: Record<string, string>;
  thingGroups?: string[];
}

/** The policy a template names: an existing one, or a document the service creates. */
export type TemplatePolicy =
  | { logicalName: string; policyName: string }
  | { logicalName: string; document: string | Record<string, unknown>; perDevice: boolean };

/** A template evaluated for one device: what the decision carries, and explain shows. */
export interface EvaluatedTemplate {
  parameters: Record<string, string>;
  parameterSources: Record<string, ParameterSource>;
  conditions: Record<string, boolean>;
  /** The resources that apply (their Condition holds), with every function evaluated. */
  resources: Record<string, { type: ResourceType; properties: Record<string, unknown> }>;
  /** Undefined when no AWS::IoT::Thing resource applies. */
  thing: TemplateThing | undefined;
  /** The Status of the certificate resource; ACTIVE when the template declares none. */
  certificateStatus: "ACTIVE" | "INACTIVE";
  /** Undefined when no AWS::IoT::Policy resource applies. */
  policy: TemplatePolicy | undefined;
}

export type TemplateEvaluation =
  | { ok: true; template: EvaluatedTemplate }
  | { ok: false; error: string; parameter: string | undefined };

/**
 * Evaluates a mapping's provisioning template for one device: parameters filled and checked (see
 * `resolveParameters` for which source wins), conditions, functions and resources evaluated, and the
 * results held to AWS's rules for thing, thing type, group, attribute and policy names.
 *
 * In this flow the certificate resource is always the certificate being registered, whether the template
 * names it by CertificateId, CSR or PEM; only its Status is read. OverrideSettings are accepted and
 * ignored: an existing thing is always brought to the template's configuration (REPLACE), which is what
 * re-provisioning a device needs.
 */
export function evaluateProvisioningTemplate(
  field: ProvisioningTemplateField,
  context: TemplateContext,
): TemplateEvaluation {
  const checked = checkTemplateBody(field.templateBody, "templateBody");
  if (checked.template === undefined) {
    const problems = checked.errors.map((e) => `${e.path}: ${e.message}`).join("; ");
    return { ok: false, error: `the template is invalid: ${problems}`, parameter: undefined };
  }
  const resolution = resolveParameters(checked.template, {
    ...context,
    mappingParameters: field.parameters ?? {},
  });
  if (!resolution.ok) return { ok: false, error: resolution.message, parameter: resolution.parameter };
  try {
    return { ok: true, template: new Evaluator(checked.template, resolution.parameters, context).run() };
  } catch (error) {
    if (!(error instanceof TemplateEvaluationError)) throw error;
    const from = error.parameter === undefined ? "" : ` (from parameter ${error.parameter})`;
    return { ok: false, error: `${error.path}: ${error.message}${from}`, parameter: error.parameter };
  }
}

class TemplateEvaluationError extends Error {
  constructor(
    readonly path: string,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
    this.name = "TemplateEvaluationError";
  }
}

/** `{"Ref": "AWS::NoValue"}`: the property or list item is left out. */
const NOTHING: unique symbol = Symbol(NO_VALUE);
type Evaluated = unknown;

/** A per-device parameter value read while evaluating something. */
interface Read {
  name: string;
  value: string;
}
interface Tracked<T> {
  value: T;
  perDevice: boolean;
  reads: Read[];
}

/** A value substituted into a policy document may not widen it: no wildcards, variables, levels or quotes. */
const POLICY_SAFE_VALUE = /^[A-Za-z0-9:_.@=,-]{0,128}$/;

class Evaluator {
  /** Set when a value that can differ between devices is read. */
  private perDevice = false;
  private reads: Read[] = [];
  private readonly conditionCache = new Map<string, Tracked<boolean>>();
  private readonly refCache = new Map<string, Tracked<Evaluated>>();
  private readonly resolving = new Set<string>();
  private readonly active: Map<string, ParsedResource>;

  constructor(
    private readonly template: ParsedTemplate,
    private readonly parameters: Map<string, ResolvedParameter>,
    private readonly context: TemplateContext,
  ) {
    this.active = new Map(template.resources.map((r) => [r.logicalName, r]));
  }

  run(): EvaluatedTemplate {
    const conditions: Record<string, boolean> = {};
    for (const name of this.template.conditions.keys()) conditions[name] = this.condition(name, "Conditions");
    const applying = this.template.resources.filter(
      (r) => r.condition === undefined || conditions[r.condition],
    );
    this.active.clear();
    for (const r of applying) this.active.set(r.logicalName, r);

    const resources: EvaluatedTemplate["resources"] = {};
    for (const r of applying) {
      resources[r.logicalName] = { type: r.type, properties: this.properties(r) };
    }
    const thing = applying.find((r) => r.type === THING_TYPE);
    const certificate = applying.find((r) => r.type === CERTIFICATE_TYPE);
    const policies = applying.filter((r) => r.type === POLICY_TYPE);
    if (policies.length > 1) {
      throw new TemplateEvaluationError(
        "Resources",
        `more than one AWS::IoT::Policy applies (${policies.map((p) => p.logicalName).join(", ")}); at most one may`,
      );
    }
    const [policy] = policies;
    return {
      parameters: Object.fromEntries([...this.parameters].map(([name, p]) => [name, p.value])),
      parameterSources: Object.fromEntries([...this.parameters].map(([name, p]) => [name, p.source])),
      conditions,
      resources,
      thing: thing === undefined ? undefined : this.thing(thing),
      certificateStatus: certificate === undefined ? "ACTIVE" : this.certificateStatus(certificate),
      policy: policy === undefined ? undefined : this.policy(policy),
    };
  }

  private properties(resource: ParsedResource): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, node] of Object.entries(resource.properties)) {
      const value = this.value(node, this.propertyPath(resource, key));
      if (value !== NOTHING) out[key] = value;
    }
    return out;
  }

  private propertyPath(resource: ParsedResource, key: string): string {
    return keyPath(keyPath(keyPath("Resources", resource.logicalName), "Properties"), key);
  }

  /** Evaluates one property, remembering which per-device parameters it read (to name them in an error). */
  private property(resource: ParsedResource, key: string): Tracked<Evaluated> | undefined {
    const node = resource.properties[key];
    if (node === undefined) return undefined;
    const tracked = this.track(() => this.value(node, this.propertyPath(resource, key)));
    return tracked.value === NOTHING ? undefined : tracked;
  }

  private thing(resource: ParsedResource): TemplateThing {
    const thing: TemplateThing = {};
    const name = this.property(resource, "ThingName");
    if (name !== undefined) thing.thingName = this.registryName(resource, "ThingName", name, "a thing name");
    const type = this.property(resource, "ThingTypeName");
    if (type !== undefined)
      thing.thingTypeName = this.registryName(resource, "ThingTypeName", type, "a thing type name");
    const groups = this.property(resource, "ThingGroups");
    if (groups !== undefined) {
      const path = this.propertyPath(resource, "ThingGroups");
      if (!Array.isArray(groups.value)) this.reject(path, "must be a list of thing group names", groups);
      thing.thingGroups = groups.value.map((group, i) => {
        if (typeof group !== "string" || !THING_NAME_PATTERN.test(group))
          this.reject(
            indexPath(path, i),
            `${describe(group)} is not a thing group name (${THING_NAME_RULE})`,
            groups,
          );
        return group;
      });
    }
    const payload = this.property(resource, "AttributePayload");
    if (payload !== undefined) {
      const path = this.propertyPath(resource, "AttributePayload");
      if (!isObject(payload.value))
        this.reject(path, "must be an object of attribute names to values", payload);
      const attributes: Record<string, string> = {};
      for (const [attribute, value] of Object.entries(payload.value)) {
        const at = keyPath(path, attribute);
        if (!ATTRIBUTE_NAME_PATTERN.test(attribute)) this.reject(at, "is not an attribute name", payload);
        if (typeof value !== "string" || !ATTRIBUTE_VALUE_PATTERN.test(value))
          this.reject(at, `${describe(value)} is not an attribute value (${ATTRIBUTE_VALUE_RULE})`, payload);
        attributes[attribute] = value;
      }
      thing.attributes = attributes;
    }
    return thing;
  }

  private registryName(
    resource: ParsedResource,
    key: string,
    tracked: Tracked<Evaluated>,
    what: string,
  ): string {
    const { value } = tracked;
    if (typeof value !== "string" || !THING_NAME_PATTERN.test(value))
      this.reject(
        this.propertyPath(resource, key),
        `${describe(value)} is not ${what} (${THING_NAME_RULE})`,
        tracked,
      );
    return value;
  }

  private certificateStatus(resource: ParsedResource): "ACTIVE" | "INACTIVE" {
    const status = this.property(resource, "Status");
    if (status === undefined) return "ACTIVE";
    const value = typeof status.value === "string" ? status.value.toUpperCase() : undefined;
    if (value !== "ACTIVE" && value !== "INACTIVE")
      this.reject(
        this.propertyPath(resource, "Status"),
        `${describe(status.value)} is not ACTIVE or INACTIVE`,
        status,
      );
    return value;
  }

  private policy(resource: ParsedResource): TemplatePolicy {
    const logicalName = resource.logicalName;
    const name = this.property(resource, "PolicyName");
    if (name !== undefined) {
      if (typeof name.value !== "string" || !POLICY_NAME_PATTERN.test(name.value))
        this.reject(
          this.propertyPath(resource, "PolicyName"),
          `${describe(name.value)} is not a policy name`,
          name,
        );
      return { logicalName, policyName: name.value };
    }
    const path = this.propertyPath(resource, "PolicyDocument");
    const document = this.property(resource, "PolicyDocument");
    if (document === undefined || (typeof document.value !== "string" && !isObject(document.value)))
      throw new TemplateEvaluationError(path, "must evaluate to a policy document");
    for (const read of document.reads) {
      if (!POLICY_SAFE_VALUE.test(read.value)) {
        throw new TemplateEvaluationError(
          path,
          `the value of parameter ${read.name} has characters not allowed in a policy (${POLICY_SAFE_VALUE.source})`,
          read.name,
        );
      }
    }
    return { logicalName, document: document.value, perDevice: document.perDevice };
  }

  /** Throws for a property whose value AWS would refuse, naming the parameter it came from when there is one. */
  private reject(path: string, message: string, tracked: Tracked<Evaluated>): never {
    throw new TemplateEvaluationError(path, message, tracked.reads[0]?.name);
  }

  /** Runs `fn`, noting whether it read per-device values and which, and folds that into the outer run. */
  private track<T>(fn: () => T): Tracked<T> {
    const outer = { perDevice: this.perDevice, reads: this.reads };
    this.perDevice = false;
    this.reads = [];
    try {
      const value = fn();
      return { value, perDevice: this.perDevice, reads: this.reads };
    } finally {
      const inner = { perDevice: this.perDevice, reads: this.reads };
      this.perDevice = outer.perDevice || inner.perDevice;
      this.reads = [...outer.reads, ...inner.reads];
    }
  }

  private replay<T>(tracked: Tracked<T>): T {
    this.perDevice ||= tracked.perDevice;
    this.reads.push(...tracked.reads);
    return tracked.value;
  }

  private value(node: unknown, at: string, locals?: Map<string, Evaluated>): Evaluated | typeof NOTHING {
    if (Array.isArray(node)) {
      return node
        .map((item, i) => this.value(item, indexPath(at, i), locals))
        .filter((item) => item !== NOTHING);
    }
    if (!isObject(node)) return node;
    const call = intrinsicOf(node);
    if (call === undefined) {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(node)) {
        const value = this.value(child, keyPath(at, key), locals);
        if (value !== NOTHING) out[key] = value;
      }
      return out;
    }
    return this.call(call.name, call.args, keyPath(at, call.name), locals);
  }

  /** A value that must be present (not AWS::NoValue). */
  private present(node: unknown, at: string, locals?: Map<string, Evaluated>): Evaluated {
    const value = this.value(node, at, locals);
    if (value === NOTHING) throw new TemplateEvaluationError(at, "AWS::NoValue cannot be used here");
    return value;
  }

  private text(node: unknown, at: string, locals?: Map<string, Evaluated>): string {
    const value = this.present(node, at, locals);
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    throw new TemplateEvaluationError(at, `${describe(value)} is not a string`, this.reads.at(-1)?.name);
  }

  private list(node: unknown, at: string, locals?: Map<string, Evaluated>): Evaluated[] {
    const value = this.present(node, at, locals);
    if (!Array.isArray(value)) throw new TemplateEvaluationError(at, `${describe(value)} is not a list`);
    return value;
  }

  private call(
    name: string,
    args: unknown,
    at: string,
    locals?: Map<string, Evaluated>,
  ): Evaluated | typeof NOTHING {
    const arg = (i: number) => (Array.isArray(args) ? args[i] : undefined);
    switch (name) {
      case "Ref":
        return typeof args === "string" && args === NO_VALUE ? NOTHING : this.reference(String(args), at);
      case "Fn::Join": {
        const items = this.list(arg(1), indexPath(at, 1), locals);
        return items.map((item, i) => this.text(item, indexPath(indexPath(at, 1), i))).join(String(arg(0)));
      }
      case "Fn::Select": {
        const index = Number(this.text(arg(0), indexPath(at, 0), locals));
        const items = this.list(arg(1), indexPath(at, 1), locals);
        const item = Number.isInteger(index) && index >= 0 ? items[index] : undefined;
        if (item === undefined || item === null)
          throw new TemplateEvaluationError(
            at,
            `index ${index} is outside the list of ${items.length}`,
            this.reads.at(-1)?.name,
          );
        return item;
      }
      case "Fn::Split":
        return this.text(arg(1), indexPath(at, 1), locals).split(String(arg(0)));
      case "Fn::Sub":
        return this.sub(args, at, locals);
      case "Fn::FindInMap": {
        const [mapName, top, second] = [0, 1, 2].map((i) => this.text(arg(i), indexPath(at, i), locals));
        const value = own(own(own(this.template.mappings, mapName ?? ""), top ?? ""), second ?? "");
        if (value === undefined)
          throw new TemplateEvaluationError(
            at,
            `mapping ${mapName} has no value for ${top}.${second}`,
            this.reads.at(-1)?.name,
          );
        return value;
      }
      case "Fn::If": {
        const condition = this.condition(String(arg(0)), at);
        return condition
          ? this.value(arg(1), indexPath(at, 1), locals)
          : this.value(arg(2), indexPath(at, 2), locals);
      }
      case "Fn::Base64":
        return Buffer.from(this.text(args, at, locals), "utf8").toString("base64");
      default:
        // Validation refuses every other function before evaluation starts.
        throw new TemplateEvaluationError(at, `unsupported intrinsic function ${name}`);
    }
  }

  private sub(args: unknown, at: string, inherited?: Map<string, Evaluated>): string {
    const locals = new Map(inherited);
    let text = args;
    if (Array.isArray(args)) {
      const [template, variables] = args;
      text = template;
      if (isObject(variables)) {
        for (const [name, node] of Object.entries(variables))
          locals.set(name, this.text(node, keyPath(indexPath(at, 1), name), inherited));
      }
    }
    return String(text).replace(SUB_VARIABLE, (_whole, inner: string) => {
      if (inner.startsWith("!")) return `\${${inner.slice(1)}}`;
      const name = inner.trim();
      const local = locals.get(name);
      const value = local !== undefined ? local : this.reference(name, at);
      if (typeof value !== "string" && typeof value !== "number")
        throw new TemplateEvaluationError(at, `\${${name}} is ${describe(value)}, not a string`);
      return String(value);
    });
  }

  /** The value of a Ref: a parameter, a pseudo parameter, or a resource's name (thing, certificate, policy). */
  private reference(name: string, at: string): Evaluated {
    const parameter = this.parameters.get(name);
    if (parameter !== undefined) {
      if (parameter.perDevice) {
        this.perDevice = true;
        this.reads.push({ name, value: parameter.value });
      }
      const type = this.template.parameters.get(name)?.type;
      return type === "CommaDelimitedList" ? parameter.value.split(",") : parameter.value;
    }
    if (name === CERTIFICATE_ID_PARAMETER) {
      this.perDevice = true;
      return this.context.certificateId;
    }
    if (name === "AWS::Region") return this.context.region;
    if (name === "AWS::AccountId") return this.context.accountId;
    const cached = this.refCache.get(name);
    if (cached !== undefined) return this.replay(cached);
    const resource = this.active.get(name);
    if (resource === undefined)
      throw new TemplateEvaluationError(at, `Ref to resource ${name}, which its Condition leaves out`);
    if (this.resolving.has(name)) throw new TemplateEvaluationError(at, `resource ${name} refers to itself`);
    this.resolving.add(name);
    try {
      const tracked = this.track(() => this.resourceName(resource));
      this.refCache.set(name, tracked);
      return tracked.value;
    } finally {
      this.resolving.delete(name);
    }
  }

  private resourceName(resource: ParsedResource): Evaluated {
    switch (resource.type) {
      case THING_TYPE: {
        const name = this.property(resource, "ThingName");
        if (name !== undefined) return name.value;
        this.perDevice = true;
        return this.context.deviceId;
      }
      case CERTIFICATE_TYPE:
        this.perDevice = true;
        return this.context.certificateId;
      case POLICY_TYPE:
        return this.property(resource, "PolicyName")?.value;
    }
  }

  private condition(name: string, at: string): boolean {
    const cached = this.conditionCache.get(name);
    if (cached !== undefined) return this.replay(cached);
    const node = this.template.conditions.get(name);
    if (node === undefined) throw new TemplateEvaluationError(at, `unknown condition ${name}`);
    const tracked = this.track(() => this.conditionValue(node, keyPath("Conditions", name)));
    this.conditionCache.set(name, tracked);
    return tracked.value;
  }

  private conditionValue(node: unknown, at: string): boolean {
    const [entry] = isObject(node) ? Object.entries(node) : [];
    if (entry === undefined) throw new TemplateEvaluationError(at, "is not a condition");
    const [name, args] = entry;
    const operands = Array.isArray(args) ? args : [];
    const callAt = keyPath(at, name);
    switch (name) {
      case "Condition":
        return this.condition(String(args), callAt);
      case "Fn::Equals": {
        const [a, b] = operands.map((operand, i) => comparable(this.present(operand, indexPath(callAt, i))));
        return a === b;
      }
      case "Fn::And":
        return operands.map((c, i) => this.conditionValue(c, indexPath(callAt, i))).every(Boolean);
      case "Fn::Or":
        return operands.map((c, i) => this.conditionValue(c, indexPath(callAt, i))).some(Boolean);
      case "Fn::Not":
        return !this.conditionValue(operands[0], indexPath(callAt, 0));
      default:
        throw new TemplateEvaluationError(callAt, "is not a condition function");
    }
  }
}

/** Fn::Equals compares as CloudFormation does: scalars by their string form, lists item by item. */
const comparable = (value: unknown): string =>
  Array.isArray(value) ? JSON.stringify(value.map(String)) : String(value);

const describe = (value: unknown): string => {
  if (typeof value === "string")
    return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
  if (Array.isArray(value)) return "a list";
  if (isObject(value)) return "an object";
  return String(value);
};
