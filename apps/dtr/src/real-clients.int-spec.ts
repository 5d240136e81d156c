// Real clients against orca's DTR: a Docker Engine from the harness logs in, pushes an image built
// locally and pulls it back by tag and by digest; skopeo copies between orca and Debian's
// docker-registry in both directions.
import { buildImages, freePort, startDockerd, type Dockerd } from '@orca/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dtrRequest, startTestDtr, type TestDtr } from './test-dtr.js';

function run(command: string, args: string[], env: Record<string, string>, input?: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

async function ok(command: string, args: string[], env: Record<string, string> = {}, input?: string) {
  const result = await run(command, args, env, input);
  if (result.code !== 0)
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.code}):\n${result.stderr}${result.stdout}`,
    );
  return result.stdout;
}

describe('real registry clients', () => {
  let dtr: TestDtr;
  let daemon: Dockerd | undefined;
  let registry: ChildProcess | undefined;
  let registryHost: string;
  let dockerEnv: Record<string, string>;
  let busybox: string;
  let certDir: string;
  const password = 'alice-password';

  beforeAll(async () => {
    dtr = await startTestDtr();
    await dtr.createUser('alice', password);
    for (const name of ['busybox', 'copied']) {
      const res = await dtrRequest(dtr, 'POST', '/api/v0/repositories/alice', {
        basic: ['alice', password],
        body: JSON.stringify({ name, visibility: 'private' }),
      });
      expect(res.status).toBe(201);
    }
    daemon = await startDockerd({ index: 9, registryCas: { [dtr.dtr.registryHost]: dtr.dtr.caPem } });
    busybox = (await buildImages(daemon, ['busybox'])).busybox!;
    const config = join(dtr.dir, 'docker-config');
    mkdirSync(config);
    dockerEnv = { DOCKER_HOST: daemon.dockerHost, DOCKER_CONFIG: config };
    certDir = join(dtr.dir, 'certs');
    mkdirSync(certDir);
    writeFileSync(join(certDir, 'ca.crt'), dtr.dtr.caPem);

    // Debian's docker-registry (distribution 2.8) as the other side for skopeo.
    const port = await freePort();
    registryHost = `127.0.0.1:${port}`;
    const storage = mkdtempSync(join(dtr.dir, 'registry-'));
    const configFile = join(storage, 'config.yml');
    writeFileSync(
      configFile,
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}/data\n  delete:\n    enabled: true\nhttp:\n  addr: ${registryHost}\n`,
    );
    registry = spawn('docker-registry', ['serve', configFile], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`http://${registryHost}/v2/`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 180_000);

  afterAll(async () => {
    registry?.kill('SIGTERM');
    await daemon?.stop();
    await dtr?.close();
  }, 120_000);

  it('docker logs in, pushes, and pulls back by tag and by digest', async () => {
    const image = `${dtr.dtr.registryHost}/alice/busybox`;
    await ok(
      'docker',
      ['login', '-u', 'alice', '--password-stdin', dtr.dtr.registryHost],
      dockerEnv,
      password,
    );
    // docker login asks for a refresh token (OAuth2 password grant, access_type=offline) and keeps
    // it instead of the password; the push and pulls below trade it for access tokens.
    const stored = JSON.parse(readFileSync(join(dtr.dir, 'docker-config', 'config.json'), 'utf8')) as {
      auths: Record<string, { auth?: string; identitytoken?: string }>;
    };
    expect(stored.auths[dtr.dtr.registryHost]?.identitytoken).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    // Only the user name is kept beside it, not the password.
    expect(Buffer.from(stored.auths[dtr.dtr.registryHost]?.auth ?? '', 'base64').toString()).toBe('alice:');
    await ok('docker', ['tag', busybox, `${image}:v1`], dockerEnv);
    const pushed = await ok('docker', ['push', `${image}:v1`], dockerEnv);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
    expect(digest).toBeDefined();

    await ok('docker', ['rmi', `${image}:v1`], dockerEnv);
    await ok('docker', ['pull', `${image}:v1`], dockerEnv);
    const byTag = await ok(
      'docker',
      ['image', 'inspect', '--format', '{{json .RepoDigests}}', `${image}:v1`],
      dockerEnv,
    );
    expect(byTag).toContain(`${image}@${digest}`);

    await ok('docker', ['rmi', `${image}:v1`], dockerEnv);
    await ok('docker', ['pull', `${image}@${digest}`], dockerEnv);
    const ids = await ok(
      'docker',
      ['image', 'inspect', '--format', '{{.Id}}', `${image}@${digest}`, busybox],
      dockerEnv,
    );
    const [pulledId, localId] = ids.trim().split('\n');
    expect(pulledId).toBe(localId);

    // Without credentials the private repository is not there for this client.
    await ok('docker', ['logout', dtr.dtr.registryHost], dockerEnv);
    const anonymous = await run('docker', ['pull', `${image}:v1`], dockerEnv);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/unauthorized|denied|authentication required/i);

    // A DTR access token works for `docker login` in place of the password.
    const created = await dtrRequest(dtr, 'POST', '/api/v0/api_tokens', {
      basic: ['alice', password],
      body: JSON.stringify({ tokenLabel: 'docker' }),
    });
    const { token } = created.json<{ token: string }>();
    await ok('docker', ['login', '-u', 'alice', '--password-stdin', dtr.dtr.registryHost], dockerEnv, token);
    await ok('docker', ['pull', `${image}:v1`], dockerEnv);
  }, 180_000);

  it('skopeo copies orca -> docker-registry -> orca with the same digest', async () => {
    const creds = `alice:${password}`;
    const source = `docker://${dtr.dtr.registryHost}/alice/busybox:v1`;
    await ok('skopeo', [
      'copy',
      '--src-creds',
      creds,
      '--src-cert-dir',
      certDir,
      '--dest-tls-verify=false',
      source,
      `docker://${registryHost}/mirror/busybox:v1`,
    ]);
    await ok('skopeo', [
      'copy',
      '--src-tls-verify=false',
      '--dest-creds',
      creds,
      '--dest-cert-dir',
      certDir,
      `docker://${registryHost}/mirror/busybox:v1`,
      `docker://${dtr.dtr.registryHost}/alice/copied:v2`,
    ]);
    const digestOf = async (args: string[]) =>
      (JSON.parse(await ok('skopeo', ['inspect', ...args])) as { Digest: string }).Digest;
    const original = await digestOf(['--creds', creds, '--cert-dir', certDir, source]);
    const mirrored = await digestOf(['--tls-verify=false', `docker://${registryHost}/mirror/busybox:v1`]);
    const back = await digestOf([
      '--creds',
      creds,
      '--cert-dir',
      certDir,
      `docker://${dtr.dtr.registryHost}/alice/copied:v2`,
    ]);
    expect(mirrored).toBe(original);
    expect(back).toBe(original);
  }, 180_000);
});
