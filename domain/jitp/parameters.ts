import { RE2JS } from "re2js";
import type { CertificateFacts } from "../types.ts";
import {
  CERTIFICATE_ID_PARAMETER,
  CERTIFICATE_PARAMETERS,
  type ParameterDeclaration,
  type ParsedTemplate,
} from "./template.ts";

/** Where a parameter's value came from, for the explanation of a decision. */
export type ParameterSource = "certificate" | "record" | "device" | "mapping" | "default";

export interface ResolvedParameter {
  value: string;
  source: ParameterSource;
  /** True when the value can differ between devices of one mapping (certificate, record or device id). */
  perDevice: boolean;
}

/** What a template's parameters are filled from for one device. */
export interface ParameterInputs {
  deviceId: string;
  certificateId: string;
  certificate: CertificateFacts;
  /** The mapping's `provisioningTemplate.parameters`. */
  mappingParameters: Record<string, string>;
  /** The allowlist record's `attributes`. */
  recordAttributes: Record<string, string>;
}

export type ParameterResolution =
  | { ok: true; parameters: Map<string, ResolvedParameter> }
  | { ok: false; parameter: string; message: string };

/** A number as CloudFormation reads one; unambiguous, so a long near miss is refused in linear time. */
const NUMBER = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
const quote = (value: string) => JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);

/** Why a value does not satisfy a parameter's declaration, or undefined when it does. */
export function parameterProblem(declaration: ParameterDeclaration, value: string): string | undefined {
  if (declaration.type === "Number") {
    if (!NUMBER.test(value)) return `${quote(value)} is not a number`;
    const n = Number(value);
    if (declaration.minValue !== undefined && n < declaration.minValue)
      return `${value} is below MinValue ${declaration.minValue}`;
    if (declaration.maxValue !== undefined && n > declaration.maxValue)
      return `${value} is above MaxValue ${declaration.maxValue}`;
  }
  if (declaration.maxLength !== undefined && value.length > declaration.maxLength)
    return `${quote(value)} is longer than MaxLength ${declaration.maxLength}`;
  if (declaration.minLength !== undefined && value.length < declaration.minLength)
    return `${quote(value)} is shorter than MinLength ${declaration.minLength}`;
  if (declaration.allowedValues !== undefined && !declaration.allowedValues.includes(value))
    return `${quote(value)} is not one of AllowedValues ${declaration.allowedValues.join(", ")}`;
  if (declaration.allowedPattern !== undefined) return patternProblem(declaration.allowedPattern, value);
  return undefined;
}

/** The longest AllowedPattern accepted, in characters. */
export const PATTERN_MAX_LENGTH = 1024;
/**
 * The most instructions a compiled AllowedPattern may have: with {@link PATTERN_VALUE_MAX} this bounds
 * the work of one check (the engine's time is linear in the value's length times the program's size).
 */
export const PATTERN_PROGRAM_MAX = 2000;
/** The longest value checked against an AllowedPattern (far above any certificate field's X.520 bound). */
export const PATTERN_VALUE_MAX = 1024;

/** An AllowedPattern compiled for the linear-time engine, or why it cannot be used. */
export type CompiledPattern = { ok: true; regex: RE2JS } | { ok: false; problem: string };

const compiledPatterns = new Map<string, CompiledPattern>();
const COMPILED_PATTERNS_KEPT = 256;

/**
 * Compiles an AllowedPattern with RE2 (re2js: linear time, no backtracking); a pattern RE2 cannot take
 * (backreferences, lookaround, possessive quantifiers) or one too long or too large is a problem.
 */
export function compilePattern(pattern: string): CompiledPattern {
  const cached = compiledPatterns.get(pattern);
  if (cached !== undefined) return cached;
  const compiled = compileUncached(pattern);
  if (compiledPatterns.size >= COMPILED_PATTERNS_KEPT) compiledPatterns.clear();
  compiledPatterns.set(pattern, compiled);
  return compiled;
}

function compileUncached(pattern: string): CompiledPattern {
  if (pattern.length > PATTERN_MAX_LENGTH)
    return { ok: false, problem: `is longer than ${PATTERN_MAX_LENGTH} characters` };
  let regex: RE2JS;
  try {
    regex = RE2JS.compile(pattern);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      problem: `is not a valid regular expression for the linear-time engine (RE2 syntax: no backreferences or lookaround): ${reason}`,
    };
  }
  if (regex.programSize() > PATTERN_PROGRAM_MAX) {
    return {
      ok: false,
      problem: `is too large to check (${regex.programSize()} instructions compiled, at most ${PATTERN_PROGRAM_MAX}): use fewer or smaller repetition counts`,
    };
  }
  return { ok: true, regex };
}

/** Why a value fails an AllowedPattern (which must match the whole value, as in CloudFormation), or undefined. */
export function patternProblem(pattern: string, value: string): string | undefined {
  const compiled = compilePattern(pattern);
  if (!compiled.ok) return `AllowedPattern ${compiled.problem}`;
  if (value.length > PATTERN_VALUE_MAX)
    return `${quote(value)} is longer than ${PATTERN_VALUE_MAX} characters, the most checked against AllowedPattern`;
  // A full match of the pattern as written: no anchors are spliced around it, so an alternation or an
  // unbalanced parenthesis in the pattern cannot turn the check into a prefix or suffix match.
  if (!compiled.regex.testExact(value)) return `${quote(value)} does not match AllowedPattern ${pattern}`;
  return undefined;
}

/** The value the certificate gives a certificate parameter, or undefined when the certificate lacks it. */
export function certificateValue(
  name: string,
  inputs: Pick<ParameterInputs, "certificate" | "certificateId">,
) {
  if (name === CERTIFICATE_ID_PARAMETER) return inputs.certificateId;
  const attribute = own(CERTIFICATE_PARAMETERS, name);
  return attribute === undefined ? undefined : inputs.certificate.subjectAttributes[attribute];
}

/**
 * Fills every declared parameter for one device and checks it against its declaration.
 *
 * Which value wins:
 * - `AWS::IoT::Certificate::*` parameters state facts of the certificate, so the certificate wins, as in
 *   JITP; only when the certificate lacks the field may the record's attributes, then the mapping's
 *   parameters, then the Default fill it (AWS would fail the device; a fill-in lets an unchanged JITP
 *   template serve a fleet whose certificates lack, say, a Country). `AWS::IoT::Certificate::Id` is
 *   always the registered certificate's id.
 * - Any other parameter: the allowlist record's attributes (the most specific source) win over the
 *   mapping's parameters, which win over the Default. A parameter named `ThingName` takes the device id
 *   when the record's attributes do not name it (the bulk-provisioning convention: the device id is the
 *   thing name), ahead of the mapping and the Default.
 * - A parameter used only to name the certificate resource (`CertificateId`, `CertificateSigningRequest`,
 *   `CertificatePem`, `CACertificatePem`, as in AWS's bulk-registration examples) names the certificate
 *   being registered in this flow: the service fills it (the certificate id, or "" for a CSR or PEM,
 *   which this flow never has) and it is not checked.
 * A parameter left without a value, or whose value fails its constraints, is a problem naming it.
 */
export function resolveParameters(template: ParsedTemplate, inputs: ParameterInputs): ParameterResolution {
  const parameters = new Map<string, ResolvedParameter>();
  for (const [name, declaration] of template.parameters) {
    const identity = template.certificateParameters.get(name);
    if (identity !== undefined) {
      const value = identity === "CertificateId" ? inputs.certificateId : "";
      parameters.set(name, { value, source: "certificate", perDevice: true });
      continue;
    }
    const resolved = resolveOne(name, declaration, inputs);
    if (resolved === undefined) {
      const where =
        name in CERTIFICATE_PARAMETERS
          ? "the certificate has no such subject field, and no record attribute, mapping parameter or Default supplies one"
          : "no record attribute, mapping parameter or Default supplies one";
      return { ok: false, parameter: name, message: `parameter ${name} has no value: ${where}` };
    }
    const problem = parameterProblem(declaration, resolved.value);
    if (problem !== undefined) {
      return {
        ok: false,
        parameter: name,
        message: `parameter ${name} (from the ${resolved.source}): ${problem}`,
      };
    }
    parameters.set(name, resolved);
  }
  return { ok: true, parameters };
}

function resolveOne(
  name: string,
  declaration: ParameterDeclaration,
  inputs: ParameterInputs,
): ResolvedParameter | undefined {
  const fromCertificate = certificateValue(name, inputs);
  if (fromCertificate !== undefined)
    return { value: fromCertificate, source: "certificate", perDevice: true };
  if (name === CERTIFICATE_ID_PARAMETER) return undefined;
  const fromRecord = own(inputs.recordAttributes, name);
  if (fromRecord !== undefined) return { value: fromRecord, source: "record", perDevice: true };
  if (name === "ThingName") return { value: inputs.deviceId, source: "device", perDevice: true };
  const fromMapping = own(inputs.mappingParameters, name);
  if (fromMapping !== undefined) return { value: fromMapping, source: "mapping", perDevice: false };
  if (declaration.default !== undefined)
    return { value: declaration.default, source: "default", perDevice: false };
  return undefined;
}

const own = (values: Record<string, string>, name: string): string | undefined =>
  Object.hasOwn(values, name) && typeof values[name] === "string" ? values[name] : undefined;
