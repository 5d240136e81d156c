// Keeps the ucp-agent service's join-token secret equal to orca's current worker token, so engines
// that join the swarm after a rotation still join orca. Swarm secrets are immutable: a rotation
// creates a new secret (named by the token's digest), points the service at it under the same file
// name, and removes the secrets nothing uses any more. Level-triggered and idempotent: every manager's
// agent may run it; a lost race shows up as a conflict and is settled on the next round.
import type { Engine, ServiceInfo } from '@orca/engine';
import { createHash } from 'node:crypto';

export const AGENT_SERVICE = 'ucp-agent';
export const AGENT_TOKEN_SECRET = 'ucp-agent-join-token';
export const TOKEN_DIGEST_LABEL = 'com.docker.ucp.orca.token-sha256';
export const MANAGED_LABEL = 'com.docker.ucp.orca.managed';

/** The label value that identifies a token without revealing it. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function secretLabels(token: string): Record<string, string> {
  return { [MANAGED_LABEL]: 'true', [TOKEN_DIGEST_LABEL]: tokenDigest(token) };
}

export type SecretSyncResult = 'no-service' | 'in-sync' | 'updated';

export async function syncAgentTokenSecret(engine: Engine, workerToken: string): Promise<SecretSyncResult> {
  const service: ServiceInfo | undefined = (await engine.listServices()).find(
    (s) => s.spec.name === AGENT_SERVICE,
  );
  if (!service) return 'no-service';
  const digest = tokenDigest(workerToken);
  const secrets = await engine.listSecrets();
  const isTokenSecret = (name: string) =>
    name === AGENT_TOKEN_SECRET || name.startsWith(`${AGENT_TOKEN_SECRET}-`);
  let current = secrets.find((s) => isTokenSecret(s.name) && s.labels[TOKEN_DIGEST_LABEL] === digest);
  if (!current) {
    const name = `${AGENT_TOKEN_SECRET}-${digest.slice(0, 12)}`;
    const id = await engine.createSecret(name, workerToken, secretLabels(workerToken));
    current = { id, name, version: 0, labels: secretLabels(workerToken), createdAt: '' };
  }
  const referenced = service.spec.secrets ?? [];
  const others = referenced.filter((s) => s.target !== AGENT_TOKEN_SECRET);
  const pointsAtCurrent = referenced.some(
    (s) => s.target === AGENT_TOKEN_SECRET && s.secretId === current.id,
  );
  if (!pointsAtCurrent) {
    await engine.updateService(
      service.id,
      {
        ...service.spec,
        secrets: [...others, { secretId: current.id, secretName: current.name, target: AGENT_TOKEN_SECRET }],
      },
      service.version,
    );
  }
  // Old token secrets: removing one a task still holds fails; the next round retries.
  const inUse = new Set([current.id, ...others.map((s) => s.secretId)]);
  for (const secret of secrets) {
    if (isTokenSecret(secret.name) && secret.labels[MANAGED_LABEL] === 'true' && !inUse.has(secret.id)) {
      await engine.removeSecret(secret.id).catch(() => undefined);
    }
  }
  return pointsAtCurrent ? 'in-sync' : 'updated';
}
