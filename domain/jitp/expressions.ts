import {
  CERTIFICATE_ID_PARAMETER,
  CONDITION_FUNCTIONS,
  indexPath,
  intrinsicOf,
  isObject,
  keyPath,
  mixesFunctionKeys,
  NO_VALUE,
  type ParsedTemplate,
  POLICY_TYPE,
  PSEUDO_PARAMETERS,
  type ResourceType,
  SUB_VARIABLE,
  type TemplateProblem,
  VALUE_FUNCTIONS,
} from "./template.ts";

const MAX_CONDITION_OPERANDS = 10;

/**
 * The expression half of a provisioning template check: values, intrinsic functions, references and
 * conditions, with the names the template declares. The section-by-section half (`Checker` in
 * validate.ts) fills the name tables and calls in here.
 */
export abstract class ExpressionChecker {
  readonly errors: TemplateProblem[] = [];
  protected readonly parameterNames = new Set<string>();
  protected readonly mappings: ParsedTemplate["mappings"] = {};
  protected readonly conditions = new Map<string, unknown>();
  protected readonly resourceTypes = new Map<string, ResourceType | undefined>();
  protected readonly policiesWithName = new Set<string>();
  /** Where the node being checked stands: in a condition only parameters may be referred to. */
  protected inConditions = false;
  /** The names the resource or condition being checked refers to, for finding cycles. */
  protected dependencies = new Set<string>();
  /** How often each parameter is referred to. */
  protected readonly parameterUses = new Map<string, number>();

  /** Records a problem; returns undefined so a check can `return this.fail(...)`. */
  protected fail(path: string, message: string): undefined {
    this.errors.push({ path, message });
    return undefined;
  }

  /** A value expression: a literal, a list, an object, or one of the supported intrinsic functions. */
  protected value(node: unknown, at: string, locals?: Set<string>): undefined {
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

  protected known(name: string): boolean {
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

  protected condition(node: unknown, at: string): undefined {
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

  protected reportCycles(graph: Map<string, Set<string>>, path: string, what: string): undefined {
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
