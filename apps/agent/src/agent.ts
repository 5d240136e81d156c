// ucp-agent: joins the cluster with a join token (CA pinned by the token's digest), then talks to
// managers only over mutual TLS: heartbeats, renews its certificate between 50% and 80% of its
// validity, and runs ucp-reconcile whenever the node's components differ from the desired list.
import {
  caDigestMatches,
  parseJoinToken,
  createCsr,
  generateKeyPair,
  parseCertificate,
  renewalTime,
} from '@orca/pki';
import { KUBE_COMPONENT_NAMES, type KubeNodeBundle } from '@orca/cluster';
import { reconcileNode, specHash, type ComponentSpec, type Runtime } from '@orca/reconcile';
import { hostname as osHostname } from 'node:os';
import { httpsJson, httpsRequest, HttpError } from './https-json.js';
import { kubeFilesPresent, withKubeInputs, writeKubeFiles } from './kube-files.js';
import { loadIdentity, saveIdentity, type NodeIdentity } from './node-identity.js';

export interface AgentOptions {
  managerUrl: string;
  token?: string;
  stateDir: string;
  address: string;
  hostname?: string;
  runtime: Runtime;
  runtimeKind: 'docker' | 'process';
  engineNodeId?: string;
  facts?: { engineSocket?: string; certsDir?: string; orcaCommand?: string[] };
  heartbeatMs?: number;
  /** How often the node is compared with its desired components even without a change. */
  checkMs?: number;
  /** Managers running Kubernetes: how often its files are fetched again (renewed certificates). Default 30 s. */
  kubeFilesCheckMs?: number;
  engineInfo?: () => Promise<{ version?: string; swarmNodeId?: string; reachable: boolean }>;
  /** Managers only: makes the swarm's ucp-agent join-token secret hold this worker token. */
  syncTokenSecret?: (workerToken: string) => Promise<string>;
  /** How often a manager compares the worker token with the swarm secret. Default 5 s. */
  tokenSecretCheckMs?: number;
  log?: (line: string) => void;
}

interface DesiredResponse {
  revision: number;
  components: ComponentSpec[];
}

export class JoinError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JoinError';
  }
}

const CA_DOWNLOAD_ATTEMPTS = 5;
const CA_DOWNLOAD_INTERVAL_MS = 2000;

/** Downloads the CA bundle without trusting it, then trusts it only if it matches the token's digest. */
export async function fetchPinnedCa(
  managerUrl: string,
  token: string,
  attempts = CA_DOWNLOAD_ATTEMPTS,
): Promise<string> {
  try {
    parseJoinToken(token);
  } catch {
    throw new JoinError('the join token is malformed (expected SWMTKN-1-<digest>-<secret>)');
  }
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      const { status, text } = await httpsRequest(
        'GET',
        `${managerUrl}/api/orca/v1/ca`,
        { insecure: true },
        undefined,
        5000,
      );
      if (status !== 200) throw new HttpError(status, text);
      if (!caDigestMatches(token, text)) throw new JoinError('remote CA does not match fingerprint');
      return text;
    } catch (error) {
      if (error instanceof JoinError) throw error;
      lastError = error as Error;
      if (attempt + 1 < attempts) await new Promise((r) => setTimeout(r, CA_DOWNLOAD_INTERVAL_MS));
    }
  }
  throw new JoinError(`cannot reach the manager at ${managerUrl}: ${lastError?.message ?? 'unknown error'}`);
}

export async function joinCluster(options: {
  managerUrl: string;
  token: string;
  address: string;
  hostname: string;
  runtimeKind: 'docker' | 'process';
  engineNodeId?: string;
  facts?: AgentOptions['facts'];
  caAttempts?: number;
}): Promise<NodeIdentity> {
  const ca = await fetchPinnedCa(options.managerUrl, options.token, options.caAttempts);
  const keys = await generateKeyPair();
  const csr = await createCsr(keys);
  let issued: { nodeId: string; role: NodeIdentity['role']; certificate: string; ca: string };
  try {
    issued = await httpsJson(
      'POST',
      `${options.managerUrl}/api/orca/v1/join`,
      { ca },
      {
        token: options.token,
        csr,
        hostname: options.hostname,
        address: options.address,
        engineNodeId: options.engineNodeId,
        runtime: options.runtimeKind,
        facts: options.facts,
      },
    );
  } catch (error) {
    throw new JoinError(`join refused: ${(error as Error).message}`);
  }
  return {
    nodeId: issued.nodeId,
    role: issued.role,
    managerUrl: options.managerUrl,
    keyPem: keys.privateKeyPem,
    certPem: issued.certificate,
    caPem: issued.ca,
  };
}

export class Agent {
  private identity!: NodeIdentity;
  private stopped = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private desired: DesiredResponse = { revision: 0, components: [] };
  private reconciling?: Promise<void>;
  private recheck = false;
  private renewTimer?: NodeJS.Timeout;
  private lastTokenSecretError?: string;
  private kubeFilesFetchedAt = 0;
  private syncingTokenSecret = false;
  private readonly log: (line: string) => void;
  /** Aborts the in-flight long poll when the agent stops. */
  private readonly stopping = new AbortController();
  lastReconcile?: { at: string; converged: boolean; report?: string };

  constructor(private readonly options: AgentOptions) {
    this.log = options.log ?? ((line) => console.log(line));
  }

  get nodeId(): string {
    return this.identity.nodeId;
  }

  get role(): NodeIdentity['role'] {
    return this.identity.role;
  }

  private tls() {
    return { ca: this.identity.caPem, cert: this.identity.certPem, key: this.identity.keyPem };
  }

  /** Joins unless the state directory already holds an identity, then starts the loops. */
  async start(): Promise<void> {
    const existing = loadIdentity(this.options.stateDir);
    if (existing) {
      this.identity = { ...existing, managerUrl: this.options.managerUrl };
      this.log(`ucp-agent: node ${existing.nodeId} (${existing.role}) already joined`);
    } else {
      if (!this.options.token)
        throw new JoinError('this node has not joined yet and no join token was given');
      this.identity = await joinCluster({
        managerUrl: this.options.managerUrl,
        token: this.options.token,
        address: this.options.address,
        hostname: this.options.hostname ?? osHostname(),
        runtimeKind: this.options.runtimeKind,
        engineNodeId: this.options.engineNodeId,
        facts: this.options.facts,
      });
      saveIdentity(this.options.stateDir, this.identity);
      this.log(`ucp-agent: joined as node ${this.identity.nodeId} (${this.identity.role})`);
    }
    this.scheduleRenewal();
    await this.heartbeat().catch((e: Error) => this.log(`ucp-agent: heartbeat failed: ${e.message}`));
    this.timers.push(
      setInterval(() => {
        void this.heartbeat().catch((e: Error) => this.log(`ucp-agent: heartbeat failed: ${e.message}`));
      }, this.options.heartbeatMs ?? 5000),
    );
    this.timers.push(setInterval(() => this.requestReconcile(), this.options.checkMs ?? 3000));
    if (this.identity.role === 'swarm-manager' && this.options.syncTokenSecret) {
      void this.syncTokenSecret();
      this.timers.push(
        setInterval(() => void this.syncTokenSecret(), this.options.tokenSecretCheckMs ?? 5000),
      );
    }
    void this.watchDesired();
  }

  /** One round of keeping the swarm's join-token secret equal to the current worker token. */
  private async syncTokenSecret(): Promise<void> {
    if (this.syncingTokenSecret || this.stopped) return;
    this.syncingTokenSecret = true;
    try {
      const tokens = await httpsJson<{ Worker: string }>(
        'GET',
        `${this.identity.managerUrl}/api/orca/v1/jointokens`,
        this.tls(),
      );
      const result = await this.options.syncTokenSecret!(tokens.Worker);
      if (result === 'updated')
        this.log('ucp-agent: the ucp-agent service now carries the current worker token');
      this.lastTokenSecretError = undefined;
    } catch (error) {
      // Logged once per distinct failure: a lost race or a manager outage repeats every round.
      const message = (error as Error).message;
      if (message !== this.lastTokenSecretError)
        this.log(`ucp-agent: join-token secret sync failed: ${message}`);
      this.lastTokenSecretError = message;
    } finally {
      this.syncingTokenSecret = false;
    }
  }

  private scheduleRenewal(): void {
    const cert = parseCertificate(this.identity.certPem);
    const at = renewalTime(cert.notBefore, cert.notAfter).getTime();
    // setTimeout's limit is ~24.8 days: re-arm until the renewal point is near.
    const delay = Math.max(0, Math.min(at - Date.now(), 2 ** 31 - 1));
    this.renewTimer = setTimeout(() => {
      if (Date.now() < at) return this.scheduleRenewal();
      this.renew()
        .then(() => this.scheduleRenewal())
        .catch((e: Error) => {
          this.log(`ucp-agent: certificate renewal failed: ${e.message}; retrying`);
          this.renewTimer = setTimeout(() => this.scheduleRenewal(), 5000);
        });
    }, delay);
  }

  /** Renews with the current certificate (mutual TLS), no token; the key is replaced too. */
  async renew(): Promise<void> {
    const keys = await generateKeyPair();
    const csr = await createCsr(keys);
    const issued = await httpsJson<{ certificate: string; ca: string }>(
      'POST',
      `${this.identity.managerUrl}/api/orca/v1/nodes/${this.identity.nodeId}/renew`,
      this.tls(),
      { csr },
    );
    this.identity = {
      ...this.identity,
      keyPem: keys.privateKeyPem,
      certPem: issued.certificate,
      caPem: issued.ca,
    };
    saveIdentity(this.options.stateDir, this.identity);
    this.log(
      `ucp-agent: certificate renewed until ${parseCertificate(issued.certificate).notAfter.toISOString()}`,
    );
  }

  private async heartbeat(): Promise<void> {
    const components = await this.componentStates();
    const engine = this.options.engineInfo
      ? await this.options.engineInfo().catch(() => ({ reachable: false }))
      : undefined;
    await httpsJson(
      'POST',
      `${this.identity.managerUrl}/api/orca/v1/nodes/${this.identity.nodeId}/heartbeat`,
      this.tls(),
      {
        components,
        engine,
        lastReconcile: this.lastReconcile,
      },
    );
  }

  private async componentStates() {
    const running = await this.options.runtime.list().catch(() => []);
    return this.desired.components.map((spec) => {
      const actual = running.find((r) => r.name === spec.name);
      return {
        name: spec.name,
        state: !actual ? 'missing' : actual.running ? 'running' : 'stopped',
        specHash: actual?.specHash,
        id: actual?.id,
      };
    });
  }

  private async watchDesired(): Promise<void> {
    while (!this.stopped) {
      try {
        const next = await httpsJson<DesiredResponse>(
          'GET',
          `${this.identity.managerUrl}/api/orca/v1/nodes/${this.identity.nodeId}/desired?after=${this.desired.revision}&timeout=25`,
          this.tls(),
          undefined,
          35_000,
          this.stopping.signal,
        );
        if (next.revision !== this.desired.revision) {
          this.desired = next;
          this.requestReconcile();
        }
      } catch (error) {
        if (this.stopped) return;
        this.log(`ucp-agent: cannot read desired components: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  /** True when the runtime differs from the desired list: missing, stopped, changed or unwanted components. */
  async drifted(): Promise<boolean> {
    // Kubernetes components started before their files were written (install starts a manager's
    // components itself) wait for them: missing files are a drift too.
    if (this.wantsKube() && !kubeFilesPresent(this.options.stateDir)) return true;
    const running = await this.options.runtime.list();
    // Kubernetes components carry their files' hash: a changed file is a changed spec (a restart).
    const desired = withKubeInputs(this.options.stateDir, this.desired.components);
    const wanted = new Map(desired.map((spec) => [spec.name, specHash(spec)]));
    for (const [name, hash] of wanted) {
      const actual = running.find((r) => r.name === name);
      if (!actual || !actual.running || actual.specHash !== hash) return true;
    }
    return running.some((r) => !wanted.has(r.name));
  }

  requestReconcile(): void {
    if (this.stopped) return;
    if (this.reconciling) {
      this.recheck = true;
      return;
    }
    this.reconciling = this.reconcileIfDrifted()
      .catch((e: Error) => this.log(`ucp-agent: reconcile failed: ${e.message}`))
      .finally(() => {
        this.reconciling = undefined;
        if (this.recheck) {
          this.recheck = false;
          this.requestReconcile();
        }
      });
  }

  private wantsKube(): boolean {
    const names: readonly string[] = KUBE_COMPONENT_NAMES;
    return this.desired.components.some((c) => names.includes(c.name));
  }

  /**
   * A manager running Kubernetes gets its components' certificates, keys and kubeconfigs from a
   * manager before they start; rewritten when they changed (a new address, a new CA bundle).
   */
  private async syncKubeFiles(): Promise<void> {
    if (!this.wantsKube()) return;
    const bundle = await httpsJson<KubeNodeBundle>(
      'GET',
      `${this.identity.managerUrl}/api/orca/v1/nodes/${this.identity.nodeId}/kube`,
      this.tls(),
    );
    const changed = writeKubeFiles(this.options.stateDir, bundle);
    this.kubeFilesFetchedAt = Date.now();
    if (changed > 0) this.log(`ucp-agent: wrote ${changed} Kubernetes certificate and configuration files`);
  }

  private async reconcileIfDrifted(): Promise<void> {
    if (this.desired.revision === 0) return;
    // Certificates the managers renewed reach the node's files (and so restart its components).
    if (this.wantsKube() && Date.now() - this.kubeFilesFetchedAt >= (this.options.kubeFilesCheckMs ?? 30_000))
      await this.syncKubeFiles().catch((e: Error) =>
        this.log(`ucp-agent: cannot fetch the Kubernetes files: ${e.message}`),
      );
    if (!(await this.drifted())) return;
    this.log(`ucp-agent: node ${this.identity.nodeId} differs from its desired state; running ucp-reconcile`);
    await this.syncKubeFiles();
    const result = await reconcileNode({
      nodeId: this.identity.nodeId,
      desired: withKubeInputs(this.options.stateDir, this.desired.components),
      runtime: this.options.runtime,
      log: (line: string) => this.log(`ucp-reconcile: ${line}`),
    });
    const failed = result.actions.filter((a) => a.action === 'failed');
    this.lastReconcile = {
      at: new Date().toISOString(),
      converged: result.converged,
      report: failed.map((a) => `${a.component}: ${a.error ?? 'failed'}`).join('; ') || undefined,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    for (const timer of this.timers) clearInterval(timer);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    await this.reconciling;
  }
}
