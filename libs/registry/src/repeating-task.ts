// One background loop shape for the DTR's store-driven workers (webhook deliveries, poll mirroring,
// jobs): a pass, then the next one after an interval; `nudge` runs a pass now; `stop` waits for
// the pass in flight. Passes never overlap; a failed pass is logged and the loop goes on.
export class RepeatingTask {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;
  private stopCalled = false;

  constructor(
    private readonly name: string,
    private readonly pass: () => Promise<unknown>,
    private readonly intervalMs: () => number,
    private readonly log?: { error(message: string): void },
  ) {}

  /** Not running: never started, or stopped. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** stop() was called: a pass in flight (also one run directly) should end early. */
  get isStopping(): boolean {
    return this.stopCalled;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopCalled = false;
    this.schedule(0);
  }

  /** Run a pass now unless one is running (work was just queued on this replica). */
  nudge(): void {
    if (!this.stopped && !this.running) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopCalled = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.running || this.stopped) return;
      this.running = this.pass()
        .then(() => undefined)
        .catch((error: unknown) => this.log?.error(`${this.name}: ${(error as Error).message}`))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.schedule(this.intervalMs());
        });
    }, delayMs);
    this.timer.unref();
  }
}
