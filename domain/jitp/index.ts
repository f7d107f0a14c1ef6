/*
 * Provisioning templates in AWS IoT's JITP format, evaluated by this service: a policy mapping may name
 * one (`provisioningTemplate`), so an existing JITP template gains the allowlist and per-device selection.
 */
export {
  type EvaluatedTemplate,
  evaluateProvisioningTemplate,
  type ProvisioningTemplateField,
  type TemplateContext,
  type TemplateEvaluation,
  type TemplatePolicy,
  type TemplateThing,
} from "./evaluate.ts";
export { type ParameterSource, resolveParameters } from "./parameters.ts";
export { type MappingWarning, thingNameWarnings } from "./thing-name.ts";
export { type TemplateProblem, type TemplateValidation, validateProvisioningTemplate } from "./validate.ts";
