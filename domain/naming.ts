/**
 * AWS IoT's naming rules, in one place: what a thing, thing type, thing group, policy or thing
 * attribute may be called. Each rule carries the wording that error messages quote.
 */

/** Things, thing types and thing groups (and so every device id). */
export const THING_NAME_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;
export const THING_NAME_RULE = "[a-zA-Z0-9:_-]{1,128}";

/** IoT policy names. */
export const POLICY_NAME_PATTERN = /^[\w+=,.@-]{1,128}$/;
export const POLICY_NAME_RULE = "[\\w+=,.@-]{1,128}";
export const POLICY_NAME_MAX = 128;

/** Thing attribute names and values. */
export const ATTRIBUTE_NAME_PATTERN = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
export const ATTRIBUTE_NAME_RULE = "[a-zA-Z0-9_.,@/:#-]{1,128}";
export const ATTRIBUTE_VALUE_PATTERN = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
/** As people read it (the pattern escapes the `]`). */
export const ATTRIBUTE_VALUE_RULE = "[a-zA-Z0-9_.,@/:#=[]-]{0,800}";

/** True when `value` is a valid thing (or thing type, or thing group) name. */
export const isThingName = (value: string): boolean => THING_NAME_PATTERN.test(value);

/** True when `value` is a valid IoT policy name. */
export const isPolicyName = (value: string): boolean => POLICY_NAME_PATTERN.test(value);
