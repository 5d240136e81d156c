// Singletons (CA signing, component planning) run only on the elected leader and stop the moment
// leadership is lost; then this manager campaigns again.
import type { Leadership, Store } from '@orca/store';
import type { CertificateAuthorityService } from './certificate-authority.service.js';
import { CertificateSigner, type Logger } from './certificate-signer.js';
import { ComponentPlanner } from './component-planner.js';
import { keys } from './model.js';

export class ManagerLoops {
  private stopped = false;
  private leadership?: Leadership;
  private abort = new AbortController();
  private done?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly identity: string,
    private readonly logger: Logger,
    private readonly ttlSeconds = 10,
  ) {}

  start(): void {
    this.done = this.loop();
  }

  isLeader(): boolean {
    return this.leadership?.isLeader() ?? false;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        this.leadership = await this.store.campaign(keys.elections, this.identity, {
          ttlSeconds: this.ttlSeconds,
          signal: this.abort.signal,
        });
      } catch (error) {
        if (this.stopped) return;
        this.logger.error(`election: ${(error as Error).message}; campaigning again`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      this.logger.log(`elected leader for cluster singletons (${this.identity})`);
      const signer = new CertificateSigner(this.store, this.cas, this.logger);
      const planner = new ComponentPlanner(this.store, this.logger);
      try {
        await signer.start(this.leadership);
        await planner.start(this.leadership);
        const reason = await Promise.race([this.leadership.lost, this.stoppedSignal()]);
        if (!this.stopped) this.logger.error(`lost leadership: ${reason.message}`);
      } catch (error) {
        this.logger.error(`leader loops failed: ${(error as Error).message}`);
      } finally {
        await Promise.allSettled([signer.stop(), planner.stop()]);
      }
      if (this.stopped) {
        await this.leadership.resign().catch(() => undefined);
        return;
      }
    }
  }

  private stoppedSignal(): Promise<Error> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) resolve(new Error('stopped'));
      this.abort.signal.addEventListener('abort', () => resolve(new Error('stopped')), { once: true });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.done;
  }
}
