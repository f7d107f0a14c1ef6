/**
 * A readers-writer gate: any number of shared holders, or one exclusive holder. A waiting exclusive
 * request stops new shared ones from entering, so a transaction is not starved by a stream of writes.
 */
export class WriteGate {
  #shared = 0;
  #exclusive = false;
  readonly #waiting: { exclusive: boolean; enter: () => void }[] = [];

  /** Calls `enter` once the gate is held shared: at once when it is free of exclusive holders and waiters. */
  enterShared(enter: () => void): void {
    if (!this.#exclusive && this.#waiting.length === 0) {
      this.#shared++;
      enter();
    } else {
      this.#waiting.push({ exclusive: false, enter });
    }
  }

  leaveShared(): void {
    this.#shared--;
    this.#drain();
  }

  /** Resolves once the gate is held exclusive. */
  enterExclusive(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#exclusive && this.#shared === 0 && this.#waiting.length === 0) {
        this.#exclusive = true;
        resolve();
      } else {
        this.#waiting.push({ exclusive: true, enter: resolve });
      }
    });
  }

  leaveExclusive(): void {
    this.#exclusive = false;
    this.#drain();
  }

  #drain(): void {
    while (!this.#exclusive) {
      const next = this.#waiting[0];
      if (!next) return;
      if (next.exclusive) {
        if (this.#shared > 0) return;
        this.#waiting.shift();
        this.#exclusive = true;
        next.enter();
        return;
      }
      this.#waiting.shift();
      this.#shared++;
      next.enter();
    }
  }
}
