import { randomUUID } from "node:crypto";
import { isPolicyName } from "../../../domain/naming.ts";
import { policyDocumentProblem } from "../policy-evaluator.ts";
import { nowSeconds, pageLimit, paginate } from "./common.ts";
import { alreadyExists, deleteConflict, IotError, invalid, malformedPolicy, notFound } from "./errors.ts";
import type { IotState, PolicyRecord, PolicyVersionRecord } from "./state.ts";

/**
 * IoT policies of the emulator: policies and their versions, and their attachment to targets
 * (certificates, thing groups, Cognito identities).
 */

const MAX_POLICY_VERSIONS = 5;
const MAX_POLICIES_PER_TARGET = 10;

export interface CreatePolicyVersionInput {
  policyName: string;
  policyDocument?: string;
  setAsDefault?: boolean;
}

/** A page of a listing by target or by policy. */
export interface PagedByMarker {
  marker?: string;
  pageSize?: number;
}

function checkPolicyName(name: string): void {
  if (!isPolicyName(name))
    throw invalid(`Invalid policy name: must match [\\w+=,.@-]+ with 1 to 128 characters`);
}

/** The policy record for a name; InvalidRequest or ResourceNotFound otherwise. */
export function requirePolicy(state: IotState, policyName: string): PolicyRecord {
  checkPolicyName(policyName);
  const policy = state.policies.get(policyName);
  if (!policy) throw notFound(`Policy ${policyName} cannot be found.`);
  return policy;
}

function checkDocument(document: string | undefined): string {
  if (document === undefined || document === "") throw invalid("policyDocument is required");
  const problem = policyDocumentProblem(document);
  if (problem) throw malformedPolicy(problem);
  return document;
}

/** The document of a policy's default version, or undefined when there is no such policy. */
export function defaultDocument(state: IotState, policyName: string): string | undefined {
  const policy = state.policies.get(policyName);
  return policy?.versions.find((v) => v.versionId === policy.defaultVersionId)?.document;
}

/** Names of the policies attached to a target, in the order the policies were created. */
export function policyNamesAttachedTo(state: IotState, target: string): string[] {
  return [...state.policyTargets.entries()]
    .filter(([, targets]) => targets.has(target))
    .map(([name]) => name);
}

/** Default-version documents of the policies attached directly to a target (e.g. a certificate ARN). */
export function policiesForPrincipal(state: IotState, principal: string): string[] {
  return policyNamesAttachedTo(state, principal).flatMap((name) => defaultDocument(state, name) ?? []);
}

/** CreatePolicy: an existing name always fails, even with the same document. */
export function createPolicy(state: IotState, input: { policyName: string; policyDocument?: string }) {
  checkPolicyName(input.policyName);
  const document = checkDocument(input.policyDocument);
  const existing = state.policies.get(input.policyName);
  if (existing)
    throw alreadyExists(`Policy ${input.policyName} already exists`, existing.policyName, existing.policyArn);
  const now = nowSeconds();
  const policy: PolicyRecord = {
    policyName: input.policyName,
    policyArn: state.arn("policy", input.policyName),
    versions: [{ versionId: "1", document, createDate: now }],
    defaultVersionId: "1",
    nextVersionId: 2,
    creationDate: now,
    lastModifiedDate: now,
    generationId: randomUUID(),
  };
  state.policies.set(policy.policyName, policy);
  state.policyTargets.set(policy.policyName, new Set());
  state.save();
  return {
    policyName: policy.policyName,
    policyArn: policy.policyArn,
    policyDocument: document,
    policyVersionId: "1",
  };
}

/** GetPolicy: the policy with its default version's document. */
export function getPolicy(state: IotState, policyName: string) {
  const policy = requirePolicy(state, policyName);
  return {
    policyName: policy.policyName,
    policyArn: policy.policyArn,
    policyDocument: defaultDocument(state, policyName) ?? "",
    defaultVersionId: policy.defaultVersionId,
    creationDate: policy.creationDate,
    lastModifiedDate: policy.lastModifiedDate,
    generationId: policy.generationId,
  };
}

/** CreatePolicyVersion: at most 5 versions per policy. */
export function createPolicyVersion(state: IotState, input: CreatePolicyVersionInput) {
  const policy = requirePolicy(state, input.policyName);
  const document = checkDocument(input.policyDocument);
  if (policy.versions.length >= MAX_POLICY_VERSIONS)
    throw new IotError(
      "VersionsLimitExceededException",
      `The policy ${policy.policyName} already has the maximum number of versions (${MAX_POLICY_VERSIONS})`,
    );
  const versionId = String(policy.nextVersionId);
  policy.nextVersionId += 1;
  const now = nowSeconds();
  policy.versions.push({ versionId, document, createDate: now });
  if (input.setAsDefault) {
    policy.defaultVersionId = versionId;
    policy.generationId = randomUUID();
  }
  policy.lastModifiedDate = now;
  state.save();
  return {
    policyArn: policy.policyArn,
    policyDocument: document,
    policyVersionId: versionId,
    isDefaultVersion: policy.defaultVersionId === versionId,
  };
}

function requireVersion(policy: PolicyRecord, versionId: string): PolicyVersionRecord {
  const version = policy.versions.find((v) => v.versionId === versionId);
  if (!version) throw notFound(`Policy ${policy.policyName} version ${versionId} cannot be found.`);
  return version;
}

/** DeletePolicyVersion: never the default version. */
export function deletePolicyVersion(state: IotState, policyName: string, versionId: string): void {
  const policy = requirePolicy(state, policyName);
  requireVersion(policy, versionId);
  if (policy.defaultVersionId === versionId)
    throw deleteConflict(`Cannot delete the default version ${versionId} of policy ${policyName}`);
  policy.versions = policy.versions.filter((v) => v.versionId !== versionId);
  state.save();
}

/** ListPolicyVersions, newest first. */
export function listPolicyVersions(state: IotState, policyName: string) {
  const policy = requirePolicy(state, policyName);
  return {
    policyVersions: [...policy.versions]
      .sort((a, b) => Number(b.versionId) - Number(a.versionId))
      .map((v) => ({
        versionId: v.versionId,
        isDefaultVersion: v.versionId === policy.defaultVersionId,
        createDate: v.createDate,
      })),
  };
}

/** SetDefaultPolicyVersion. */
export function setDefaultPolicyVersion(state: IotState, policyName: string, versionId: string): void {
  const policy = requirePolicy(state, policyName);
  requireVersion(policy, versionId);
  if (policy.defaultVersionId === versionId) return;
  policy.defaultVersionId = versionId;
  policy.lastModifiedDate = nowSeconds();
  policy.generationId = randomUUID();
  state.save();
}

/** DeletePolicy: not while attached or while other versions than the default exist. */
export function deletePolicy(state: IotState, policyName: string): void {
  const policy = requirePolicy(state, policyName);
  if ((state.policyTargets.get(policyName)?.size ?? 0) > 0)
    throw deleteConflict(
      `The policy cannot be deleted as the policy is attached to one or more principals (name=${policyName})`,
    );
  if (policy.versions.length > 1)
    throw deleteConflict(
      `The policy cannot be deleted as versions other than the default version exist (name=${policyName})`,
    );
  state.policies.delete(policyName);
  state.policyTargets.delete(policyName);
  state.save();
}

/**
 * Checks a policy target: a certificate ARN or thing group ARN that exists, or a Cognito
 * identity id (accepted as is, identities are not emulated).
 */
function checkTarget(state: IotState, target: string | undefined): string {
  if (!target) throw invalid("target is required");
  if (target.startsWith("arn:")) {
    const certificateId = state.certificateIdFromArn(target);
    if (certificateId !== undefined) {
      if (!state.certificates.has(certificateId))
        throw notFound(`Certificate ${certificateId} does not exist`);
      return target;
    }
    const groupPrefix = state.arn("thinggroup", "");
    if (target.startsWith(groupPrefix)) {
      if (!state.thingGroups.has(target.slice(groupPrefix.length)))
        throw notFound(`${target} cannot be found.`);
      return target;
    }
    throw invalid(`Invalid target: ${target}`);
  }
  if (/^[a-z]{2}(-[a-z]+)+-\d:[0-9a-f-]{36}$/.test(target)) return target;
  throw invalid(`Invalid target: ${target}`);
}

/** AttachPolicy: a target holds at most 10 policies. */
export function attachPolicy(state: IotState, policyName: string, target: string | undefined): void {
  requirePolicy(state, policyName);
  const checked = checkTarget(state, target);
  const targets = state.policyTargets.get(policyName) ?? new Set<string>();
  state.policyTargets.set(policyName, targets);
  if (targets.has(checked)) return;
  const count = [...state.policyTargets.values()].filter((t) => t.has(checked)).length;
  if (count >= MAX_POLICIES_PER_TARGET)
    throw new IotError(
      "LimitExceededException",
      `The target ${checked} already has the maximum number of policies attached (${MAX_POLICIES_PER_TARGET})`,
    );
  targets.add(checked);
  state.save();
}

/** DetachPolicy: detaching a policy that is not attached succeeds without change (detach calls are idempotent). */
export function detachPolicy(state: IotState, policyName: string, target: string | undefined): void {
  requirePolicy(state, policyName);
  const checked = checkTarget(state, target);
  if (state.policyTargets.get(policyName)?.delete(checked)) state.save();
}

/**
 * ListAttachedPolicies, by policy name. With `recursive` on a thing group target, the policies of its
 * parent groups too (what its members get), each once.
 */
export function listAttachedPolicies(
  state: IotState,
  input: PagedByMarker & { target: string; recursive?: boolean },
) {
  const target = checkTarget(state, input.target);
  const targets = [target];
  const groupPrefix = state.arn("thinggroup", "");
  if (input.recursive === true && target.startsWith(groupPrefix)) {
    let parent = state.thingGroups.get(target.slice(groupPrefix.length))?.parentGroupName;
    for (; parent !== undefined && !targets.includes(state.arn("thinggroup", parent)); ) {
      targets.push(state.arn("thinggroup", parent));
      parent = state.thingGroups.get(parent)?.parentGroupName;
    }
  }
  const names = [...new Set(targets.flatMap((t) => policyNamesAttachedTo(state, t)))].sort();
  const page = paginate(names, input.marker, pageLimit(input.pageSize, 25, 250));
  return {
    policies: page.items.map((name) => ({ policyName: name, policyArn: state.arn("policy", name) })),
    nextMarker: page.next,
  };
}

/** ListTargetsForPolicy, sorted. */
export function listTargetsForPolicy(state: IotState, input: PagedByMarker & { policyName: string }) {
  requirePolicy(state, input.policyName);
  const targets = [...(state.policyTargets.get(input.policyName) ?? [])].sort();
  const page = paginate(targets, input.marker, pageLimit(input.pageSize, 25, 250));
  return { targets: page.items, nextMarker: page.next };
}
