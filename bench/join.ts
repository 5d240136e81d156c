// Join latency against a warm controller on the embedded store: token to signed certificate, the
// way ucp-agent joins (pinned CA download, key, CSR, join request, leader signing). The reference
// in the same run is `openssl` making and signing the same kind of certificate from a fresh key.
import { loadControllerConfig } from '@orca/config';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { joinCluster } from '../apps/agent/src/agent.js';
import { startController } from '../apps/controller/src/controller.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function report(label: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  console.log(
    `join: ${label}: p50 ${percentile(sorted, 50).toFixed(1)} ms, p95 ${percentile(sorted, 95).toFixed(1)} ms ` +
      `(${samples.length} joins, ${cpus().length} cores)`,
  );
}

export async function benchJoin(count = 200): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'orca-bench-join-'));
  const controller = await startController(
    loadControllerConfig({
      ORCA_DATA_DIR: dir,
      ORCA_PORT: String(await freePort()),
      ORCA_ADMIN_PASSWORD: 'bench-admin-pw',
    }),
    { logger: { log: () => undefined, error: (m: string) => console.error(m) } as never },
  );
  try {
    const { worker } = await controller.cas.joinTokens();
    const joinOnce = () =>
      joinCluster({
        managerUrl: controller.url,
        token: worker,
        address: '127.0.0.9',
        hostname: 'bench',
        runtimeKind: 'process',
        caAttempts: 1,
      });
    for (let i = 0; i < 20; i++) await joinOnce(); // warm up
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      await joinOnce();
      samples.push(performance.now() - start);
    }
    report('orca token -> certificate (CA pin, key, CSR, join, leader signing)', samples);

    // Reference: openssl generating a P-256 key and CSR and signing it with the CA, per join.
    const files = mkdtempSync(join(tmpdir(), 'orca-bench-openssl-'));
    const ca = await controller.cas.clusterAuthority();
    writeFileSync(join(files, 'ca.pem'), ca.certPem);
    execFileSync('openssl', [
      'ecparam',
      '-name',
      'prime256v1',
      '-genkey',
      '-noout',
      '-out',
      join(files, 'ca.key'),
    ]);
    execFileSync('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      join(files, 'ca.key'),
      '-subj',
      '/CN=swarm-ca',
      '-days',
      '30',
      '-out',
      join(files, 'ca.pem'),
    ]);
    const reference: number[] = [];
    for (let i = 0; i < Math.min(count, 50); i++) {
      const start = performance.now();
      execFileSync('openssl', [
        'ecparam',
        '-name',
        'prime256v1',
        '-genkey',
        '-noout',
        '-out',
        join(files, 'n.key'),
      ]);
      execFileSync('openssl', [
        'req',
        '-new',
        '-key',
        join(files, 'n.key'),
        '-subj',
        '/CN=n',
        '-out',
        join(files, 'n.csr'),
      ]);
      execFileSync('openssl', [
        'x509',
        '-req',
        '-in',
        join(files, 'n.csr'),
        '-CA',
        join(files, 'ca.pem'),
        '-CAkey',
        join(files, 'ca.key'),
        '-CAcreateserial',
        '-days',
        '90',
        '-out',
        join(files, 'n.pem'),
      ]);
      reference.push(performance.now() - start);
    }
    report('reference: openssl key + CSR + sign (3 processes, no network)', reference);
    rmSync(files, { recursive: true, force: true });
  } finally {
    await controller.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
