/**
 * "Something changed" for the schedulers' waits (an instance went idle, one
 * unloaded, a waiter left): waiters re-check their condition on each notify,
 * or when their time is up.
 */
export class ChangeSignal {
  private readonly listeners = new Set<() => void>();

  notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves at the next notify, or after `ms` (the timer does not keep the process alive). */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(Math.max(0, ms), 2 ** 31 - 1));
      timer.unref();
      this.listeners.add(done);
    });
  }
}
