import type { ClockPort } from "./ports.ts";

/**
 * Shared policies this process has recently seen in place with a given document. Ensuring a shared
 * policy costs a GetPolicy (10 requests/s per account), so a warm instance skips that check for a short
 * while; a per-device policy is never cached. It holds no device's result, only "policy P has document D".
 */
export class KnownPolicies {
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly clock: ClockPort,
    private readonly ttlMs = 60_000,
  ) {}

  /** True when `name` was seen with exactly `document` within the time to live. */
  has(name: string, document: string): boolean {
    const until = this.#seen.get(`${name}\n${document}`);
    return until !== undefined && until > this.clock.now().getTime();
  }

  remember(name: string, document: string): void {
    if (this.#seen.size > 1_000) this.#seen.clear();
    this.#seen.set(`${name}\n${document}`, this.clock.now().getTime() + this.ttlMs);
  }

  /**
   * True when `name` was attached to thing group `group` by this process within the time to live (a group
   * policy is shared, so attaching it again for each member would spend AttachPolicy's 15 requests/s).
   */
  attachedToGroup(name: string, group: string): boolean {
    const until = this.#seen.get(`${name}\n\u0000group ${group}`);
    return until !== undefined && until > this.clock.now().getTime();
  }

  rememberAttachedToGroup(name: string, group: string): void {
    if (this.#seen.size > 1_000) this.#seen.clear();
    this.#seen.set(`${name}\n\u0000group ${group}`, this.clock.now().getTime() + this.ttlMs);
  }
}
