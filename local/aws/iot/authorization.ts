import {
  type DetailedEvaluationResult,
  type EvaluationContext,
  type EvaluationRequest,
  type EvaluationResult,
  evaluateDetailed,
} from "../policy-evaluator.ts";
import { invalid } from "./errors.ts";
import { defaultDocument, policyNamesAttachedTo, requirePolicy } from "./policies.ts";
import { exclusiveThingOf, requirePrincipalCertificate, thingsForPrincipal } from "./principals.ts";
import type { IotState, ThingRecord } from "./state.ts";
import { groupsWithParentsOf } from "./thing-groups.ts";
import { requireThing } from "./things.ts";
import { certificateIdOf, commonNameOf, parseCertificate } from "./x509.ts";

/**
 * Authorization of device connections, as AWS IoT Core applies it. The thing a connection speaks
 * for is the thing its certificate is attached to exclusively (EXCLUSIVE_THING), whatever the MQTT
 * client id; otherwise the thing its client id names, when attached to the certificate. The thing
 * policy variables resolve from that thing. The policies in effect are those attached to the
 * certificate plus those of the thing's groups and their parent groups. The device gateway checks
 * each connect, publish, subscribe and receive here, and TestAuthorization (which AWS documents as
 * simulating the device gateway's authorization) evaluates the same policies.
 *
 * Where AWS leaves a case open, the emulator grants only what every reading grants: AWS documents
 * that thing-group policies need the client id to equal the thing name and does not say whether an
 * exclusive attachment lifts that, so when the client id differs, the groups' policies still deny
 * but never allow.
 */

/** What a certificate contributes to the policy variables; fixed for the life of a connection. */
export interface CertificateVariables {
  certificateId: string;
  subjectCommonName?: string;
  subjectSerialNumber?: string;
  certificateSubject: Record<string, string>;
  certificateSerialNumber?: string;
}

/** A device connection as the policies see it: the certificate it authenticated with and its client id. */
export interface Connection {
  certificate: CertificateVariables;
  clientId?: string;
}

export interface TestAuthorizationInput {
  principal?: string;
  clientId?: string;
  authInfos?: { actionType?: string; resources?: string[] }[];
  policyNamesToAdd?: string[];
  policyNamesToSkip?: string[];
}

/** Subject fields a connection's policies may name, by IoT name, with the x509 short names. */
const SUBJECT_FIELDS: Record<string, string> = {
  CommonName: "CN",
  Organization: "O",
  OrganizationalUnit: "OU",
  Country: "C",
  State: "ST",
  Locality: "L",
  SerialNumber: "serialNumber",
};

const ACTIONS: Record<string, string> = {
  PUBLISH: "iot:Publish",
  SUBSCRIBE: "iot:Subscribe",
  RECEIVE: "iot:Receive",
  CONNECT: "iot:Connect",
};

/** The policy variables a certificate (PEM or DER) provides; undefined when it does not parse. */
export function certificateVariables(derOrPem: string | Uint8Array): CertificateVariables | undefined {
  const cert = parseCertificate(derOrPem);
  if (!cert) return undefined;
  const subject: Record<string, string> = {};
  for (const [name, short] of Object.entries(SUBJECT_FIELDS)) {
    const value = cert.subjectName.getField(short)[0];
    if (value !== undefined) subject[name] = value;
  }
  const commonName = commonNameOf(cert);
  return {
    certificateId: certificateIdOf(cert),
    ...(commonName !== undefined ? { subjectCommonName: commonName } : {}),
    ...(subject.SerialNumber !== undefined ? { subjectSerialNumber: subject.SerialNumber } : {}),
    certificateSubject: subject,
    certificateSerialNumber: cert.serialNumber,
  };
}

/** The thing a connection speaks for, and whether its groups' policies may allow (or only deny). */
interface ConnectionThing {
  thing: ThingRecord;
  groupsAllow: boolean;
}

/**
 * The thing a connection speaks for: the thing its certificate is attached to exclusively, whatever
 * the client id; otherwise the thing its client id names, when attached to its certificate.
 */
function connectionThing(state: IotState, connection: Connection): ConnectionThing | undefined {
  const { clientId } = connection;
  const certificateArn = state.arn("cert", connection.certificate.certificateId);
  const exclusive = exclusiveThingOf(state, certificateArn);
  if (exclusive !== undefined) {
    const thing = state.things.get(exclusive);
    return thing ? { thing, groupsAllow: clientId === thing.thingName } : undefined;
  }
  if (clientId === undefined || !thingsForPrincipal(state, certificateArn).includes(clientId))
    return undefined;
  const thing = state.things.get(clientId);
  return thing ? { thing, groupsAllow: true } : undefined;
}

function evaluationContext(connection: Connection, thing: ThingRecord | undefined): EvaluationContext {
  return {
    ...connection.certificate,
    certificateSubject: { ...connection.certificate.certificateSubject },
    ...(connection.clientId !== undefined ? { clientId: connection.clientId } : {}),
    ...(thing
      ? {
          thingName: thing.thingName,
          isAttached: true,
          thingAttributes: { ...thing.attributes },
          ...(thing.thingTypeName !== undefined ? { thingTypeName: thing.thingTypeName } : {}),
        }
      : { isAttached: false }),
  };
}

/** The policies in effect for a connection, by name, and those of them whose Allow statements do not count. */
interface EffectivePolicies {
  names: string[];
  denyOnly: Set<string>;
}

/**
 * The policies in effect for a certificate: those attached to it, then those attached to the groups
 * (parents included) of the thing the connection speaks for, each once; a group's policy only
 * denies when the client id does not name that thing.
 */
function effectivePolicies(
  state: IotState,
  certificateArn: string,
  connected: ConnectionThing | undefined,
): EffectivePolicies {
  const names = policyNamesAttachedTo(state, certificateArn);
  const denyOnly = new Set<string>();
  const groups = connected === undefined ? [] : groupsWithParentsOf(state, connected.thing.thingName);
  for (const group of groups)
    for (const name of policyNamesAttachedTo(state, state.arn("thinggroup", group)))
      if (!names.includes(name)) {
        names.push(name);
        if (!connected?.groupsAllow) denyOnly.add(name);
      }
  return { names, denyOnly };
}

/** Evaluates the documents of `names`; a matching Allow of a deny-only policy does not count. */
function evaluatePolicies(
  state: IotState,
  policies: EffectivePolicies,
  request: EvaluationRequest,
): DetailedEvaluationResult {
  const result = evaluateDetailed(documentsOf(state, policies.names), request);
  const allowedBy = result.allowedBy.filter((i) => !policies.denyOnly.has(policies.names[i] ?? ""));
  const { deniedBy } = result;
  if (deniedBy.length > 0) return { allowed: false, reason: "explicit-deny", allowedBy, deniedBy };
  if (allowedBy.length > 0) return { allowed: true, reason: "allowed", allowedBy, deniedBy };
  return { allowed: false, reason: "implicit-deny", allowedBy, deniedBy };
}

/** The default-version documents of the named policies, in the same order. */
function documentsOf(state: IotState, names: readonly string[]): string[] {
  return names.map((name) => defaultDocument(state, name) ?? "");
}

/** Whether a connection's effective policies allow an action (e.g. `iot:Publish`) on a resource ARN. */
export function authorize(
  state: IotState,
  connection: Connection,
  action: string,
  resource: string,
): EvaluationResult {
  const connected = connectionThing(state, connection);
  const certificateArn = state.arn("cert", connection.certificate.certificateId);
  const policies = effectivePolicies(state, certificateArn, connected);
  const context = evaluationContext(connection, connected?.thing);
  const { allowed, reason } = evaluatePolicies(state, policies, { action, resource, context });
  return { allowed, reason };
}

/**
 * GetEffectivePolicies: the policies attached to the principal (a certificate ARN), then those of the
 * thing's groups and their parent groups, each once with its default document. AWS applies the group
 * policies when the device's client id is the thing name; this answer, like AWS's, names them regardless.
 */
export function getEffectivePolicies(state: IotState, input: { principal?: string; thingName?: string }) {
  if (input.principal === undefined && input.thingName === undefined)
    throw invalid("Either principal or thingName is required");
  const names: string[] = [];
  if (input.principal !== undefined) {
    const certificate = requirePrincipalCertificate(state, input.principal);
    names.push(...policyNamesAttachedTo(state, certificate.certificateArn));
  }
  if (input.thingName !== undefined) {
    requireThing(state, input.thingName);
    for (const group of groupsWithParentsOf(state, input.thingName))
      for (const name of policyNamesAttachedTo(state, state.arn("thinggroup", group)))
        if (!names.includes(name)) names.push(name);
  }
  return {
    effectivePolicies: names.map((name) => ({
      policyName: name,
      policyArn: state.arn("policy", name),
      policyDocument: defaultDocument(state, name) ?? "",
    })),
  };
}

/**
 * TestAuthorization: evaluates each authInfo against the principal's effective policies for the
 * client id (plus policyNamesToAdd, minus policyNamesToSkip). An authInfo is ALLOWED only when
 * every resource is allowed; EXPLICIT_DENY when any resource is explicitly denied.
 */
export function testAuthorization(state: IotState, input: TestAuthorizationInput) {
  const certificate = requirePrincipalCertificate(state, input.principal);
  const authInfos = input.authInfos ?? [];
  if (authInfos.length < 1 || authInfos.length > 10) throw invalid("authInfos must have 1 to 10 entries");
  const variables = certificateVariables(certificate.certificatePem) ?? {
    certificateId: certificate.certificateId,
    certificateSubject: {},
  };
  const connection: Connection = {
    certificate: variables,
    ...(input.clientId !== undefined ? { clientId: input.clientId } : {}),
  };
  const connected = connectionThing(state, connection);
  const skip = new Set(input.policyNamesToSkip ?? []);
  const effective = effectivePolicies(state, certificate.certificateArn, connected);
  const names = effective.names.filter((n) => !skip.has(n));
  const denyOnly = new Set(effective.denyOnly);
  for (const name of input.policyNamesToAdd ?? []) {
    requirePolicy(state, name);
    denyOnly.delete(name);
    if (!names.includes(name)) names.push(name);
  }
  const policies: EffectivePolicies = { names, denyOnly };
  const context = evaluationContext(connection, connected?.thing);
  const policyRef = (index: number) => {
    const name = names[index] ?? "";
    return { policyName: name, policyArn: state.arn("policy", name) };
  };
  return {
    authResults: authInfos.map((authInfo) => {
      const action = ACTIONS[authInfo.actionType ?? ""];
      if (!action) throw invalid(`Invalid actionType: ${authInfo.actionType ?? "(missing)"}`);
      const resources = authInfo.resources ?? [];
      if (resources.length === 0) throw invalid("Each authInfo needs at least one resource");
      const allowedBy = new Set<number>();
      const deniedBy = new Set<number>();
      let allAllowed = true;
      for (const resource of resources) {
        const result = evaluatePolicies(state, policies, { action, resource, context });
        for (const i of result.allowedBy) allowedBy.add(i);
        for (const i of result.deniedBy) deniedBy.add(i);
        if (!result.allowed) allAllowed = false;
      }
      const decision = deniedBy.size > 0 ? "EXPLICIT_DENY" : allAllowed ? "ALLOWED" : "IMPLICIT_DENY";
      const implicit = names.map((_, i) => i).filter((i) => !allowedBy.has(i) && !deniedBy.has(i));
      return {
        authInfo: { actionType: authInfo.actionType, resources: [...resources] },
        allowed: { policies: [...allowedBy].map(policyRef) },
        denied: {
          implicitDeny: { policies: decision === "IMPLICIT_DENY" ? implicit.map(policyRef) : [] },
          explicitDeny: { policies: [...deniedBy].map(policyRef) },
        },
        authDecision: decision,
        missingContextValues: [] as string[],
      };
    }),
  };
}
