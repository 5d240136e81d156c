// How orca reaches the kube-apiserver: its URL and CA, the front-proxy client certificate the front
// door forwards with, and an admin client certificate for orca's own calls (namespace lists,
// webhook registration, RoleBinding sync). Files are read when first needed and re-read when they
// change, because the apiserver may be started (and its certificates written) after the controller.
import { readFileSync, statSync } from 'node:fs';
import { Agent, request as httpsRequest, type AgentOptions } from 'node:https';

export interface KubeUpstreamSettings {
  apiserverUrl: string;
  caFile: string;
  proxyCertFile: string;
  proxyKeyFile: string;
  adminCertFile: string;
  adminKeyFile: string;
}

/** Who the apiserver says a token is (TokenReview status.user). */
export interface ReviewedToken {
  username: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: unknown; uid?: string; groups?: unknown; extra?: Record<string, unknown> };
}

export interface KubeReply {
  status: number;
  body: string;
}

interface Loaded {
  stamp: string;
  proxy: AgentOptions;
  proxyAgent: Agent;
  adminAgent: Agent;
}

export class KubeUpstream {
  readonly url: URL;
  private loaded?: Loaded;
  private checkedAt = 0;

  constructor(readonly settings: KubeUpstreamSettings) {
    this.url = new URL(settings.apiserverUrl);
  }

  private stamp(): string {
    const { caFile, proxyCertFile, proxyKeyFile, adminCertFile, adminKeyFile } = this.settings;
    return [caFile, proxyCertFile, proxyKeyFile, adminCertFile, adminKeyFile]
      .map((f) => {
        const st = statSync(f);
        return `${st.mtimeMs}:${st.size}`;
      })
      .join('|');
  }

  private load(): Loaded {
    // Checked at most once a second: this is on every proxied request's path.
    if (this.loaded && Date.now() - this.checkedAt < 1000) return this.loaded;
    const stamp = this.stamp();
    this.checkedAt = Date.now();
    if (this.loaded?.stamp === stamp) return this.loaded;
    const s = this.settings;
    const ca = readFileSync(s.caFile, 'utf8');
    const proxy: AgentOptions = {
      ca,
      cert: readFileSync(s.proxyCertFile, 'utf8'),
      key: readFileSync(s.proxyKeyFile, 'utf8'),
      minVersion: 'TLSv1.2',
    };
    const admin: AgentOptions = {
      ca,
      cert: readFileSync(s.adminCertFile, 'utf8'),
      key: readFileSync(s.adminKeyFile, 'utf8'),
      minVersion: 'TLSv1.2',
    };
    this.loaded?.proxyAgent.destroy();
    this.loaded?.adminAgent.destroy();
    this.loaded = {
      stamp,
      proxy,
      // Kept-alive connections (a TLS handshake costs more than a small call), with Nagle off: a
      // request's headers must not wait for the ACK of the previous response on that connection.
      proxyAgent: new Agent({ ...proxy, keepAlive: true, maxSockets: 256, noDelay: true }),
      adminAgent: new Agent({ ...admin, keepAlive: true, noDelay: true }),
    };
    return this.loaded;
  }

  /** TLS options and a keep-alive agent carrying the front-proxy client certificate. */
  proxy(): { agent: Agent; tls: AgentOptions } {
    const loaded = this.load();
    return { agent: loaded.proxyAgent, tls: loaded.proxy };
  }

  /** One JSON call to the apiserver as orca's admin. */
  request(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<KubeReply> {
    const agent = this.load().adminAgent;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        new URL(path, this.url),
        {
          method,
          agent,
          timeout: 15_000,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: apiserver timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /**
   * Asks the apiserver who a bearer token is (TokenReview as orca's admin): service-account tokens
   * and whatever else the apiserver itself accepts. Throws when the apiserver gives no answer.
   */
  async reviewToken(token: string): Promise<ReviewedToken | undefined> {
    const reply = await this.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token },
    });
    if (reply.status !== 201 && reply.status !== 200) throw new Error(`TokenReview answered ${reply.status}`);
    const status = (JSON.parse(reply.body) as { status?: TokenReviewStatus }).status;
    const user = status?.user;
    if (!status?.authenticated || !user || typeof user.username !== 'string' || user.username === '')
      return undefined;
    const strings = (v: unknown): string[] =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    const extra: Record<string, string[]> = {};
    for (const [key, values] of Object.entries(user.extra ?? {})) extra[key] = strings(values);
    return { username: user.username, uid: user.uid, groups: strings(user.groups), extra };
  }

  close(): void {
    this.loaded?.proxyAgent.destroy();
    this.loaded?.adminAgent.destroy();
    this.loaded = undefined;
  }
}
