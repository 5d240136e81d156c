// docker build, load, save and pull through the Docker front door with the stock docker CLI and a
// client bundle, as UCP's classic Swarm compatibility served them: build on one schedulable node
// (constraints honoured), load onto every node, save from a node holding the images, pull on every
// node with each node's progress streamed as it arrives. Real engines in swarm mode on 127.0.0.31-32,
// orca's controller, agents and ucp-proxy really running, Debian's docker-registry for pulls.
import { freePort, startOrcaCluster, type Dockerd, type OrcaCluster } from '@orca/testing';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const scratch = mkdtempSync(join(tmpdir(), 'orca-fd-images-'));
const dockerConfig = join(scratch, 'docker-config');
mkdirSync(dockerConfig);
// The CLI must use only what env.sh sets: no DOCKER_* from the runner, no contexts of its own.
const cleanEnv = Object.fromEntries(
  Object.entries({ ...process.env, DOCKER_CONFIG: dockerConfig }).filter(
    ([k]) => !k.startsWith('DOCKER_') || k === 'DOCKER_CONFIG',
  ),
) as NodeJS.ProcessEnv;
const SCRIPT = 'cd "$1" && eval "$(<env.sh)" >/dev/null && shift && exec docker "$@"';

function run(command: string, args: string[], env: NodeJS.ProcessEnv = cleanEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { env, timeout: 90_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: stdout.trim(), stderr }),
    );
  });
}

/** The docker CLI with a bundle's env.sh, as the UCP docs say (extra env: e.g. DOCKER_BUILDKIT). */
function docker(bundle: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return run('bash', ['-c', SCRIPT, 'bash', bundle, ...args], { ...cleanEnv, ...env });
}

async function ok(bundle: string, args: string[], env?: Record<string, string>): Promise<Run> {
  const result = await docker(bundle, args, env);
  if (result.code !== 0)
    throw new Error(`docker ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result;
}

/** Straight to one engine's socket (what the node really holds, not what the front door says). */
async function engineHas(daemon: Dockerd, ref: string): Promise<boolean> {
  return (
    (await run('docker', ['-H', daemon.dockerHost, 'image', 'inspect', '-f', '{{.Id}}', ref])).code === 0
  );
}

async function onEngine(daemon: Dockerd, args: string[]): Promise<string> {
  const result = await run('docker', ['-H', daemon.dockerHost, ...args]);
  if (result.code !== 0) throw new Error(`docker -H ${daemon.address} ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function eventually<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A request straight to the front door with a bundle's certificate (bad input, headers). */
function raw(
  cluster: OrcaCluster,
  bundle: string,
  method: string,
  path: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; json: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cluster.url}${path}`,
      {
        method,
        agent: false,
        ca: readFileSync(join(bundle, 'ca.pem')),
        cert: readFileSync(join(bundle, 'cert.pem')),
        key: readFileSync(join(bundle, 'key.pem')),
        headers,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A plain HTTP GET on its own connection (nothing kept alive after the test). */
function plainGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * An HTTP relay in front of docker-registry that can hold one blob's downloads until released, or
 * corrupt the first download of one blob: what a slow or broken registry does to real engines.
 */
function startRelay(
  host: string,
  port: number,
  registry: string,
  basic?: string,
): Promise<{
  server: Server;
  hold(digest: string): void;
  release(): void;
  corruptOnce(digest: string): void;
}> {
  let held: string | undefined;
  let corrupt: string | undefined;
  const waiting: (() => void)[] = [];
  const server = createServer((req, res) => {
    if (basic && req.headers.authorization !== `Basic ${Buffer.from(basic).toString('base64')}`) {
      res.writeHead(401, {
        'www-authenticate': 'Basic realm="orca-test"',
        'content-type': 'application/json',
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const forward = (mangle: boolean) => {
      const upstream = httpRequest(
        `http://${registry}${req.url ?? '/'}`,
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          if (!mangle) return answer.pipe(res);
          answer.resume();
          res.end(Buffer.alloc(Number(answer.headers['content-length'] ?? 0)));
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    const url = req.url ?? '';
    if (req.method === 'GET' && held && url.includes(held)) waiting.push(() => forward(false));
    else if (req.method === 'GET' && corrupt && url.includes(corrupt)) {
      corrupt = undefined;
      forward(true);
    } else forward(false);
  });
  return new Promise((resolve) =>
    server.listen(port, host, () =>
      resolve({
        server,
        hold: (digest) => (held = digest),
        release: () => {
          held = undefined;
          for (const go of waiting.splice(0)) go();
        },
        corruptOnce: (digest) => (corrupt = digest),
      }),
    ),
  );
}

const BIG_LAYER = 128 * 1024 * 1024;

/** The pid of the cluster's controller process (the one serving this port). */
function controllerPid(port: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!cmdline.includes('controller')) continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`ORCA_PORT=${port}`))
        return Number(entry);
    } catch {
      // gone, or not ours
    }
  }
  throw new Error(`no controller process for port ${port}`);
}

/** A process's resident memory now (VmRSS) or at its peak (VmHWM), in bytes. */
function rss(pid: number, which: 'VmRSS' | 'VmHWM'): number {
  const line = new RegExp(`${which}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!line) throw new Error(`no ${which} for ${pid}`);
  return Number(line[1]) * 1024;
}

describe('docker build, load, save and pull through the Docker front door', () => {
  let cluster: OrcaCluster;
  let admin: string;
  let busybox: string;
  let manager: Dockerd;
  let worker: Dockerd;
  const nodeName = (d: Dockerd) => `${hostname()}-${d.address}`;
  let registry: ChildProcess | undefined;
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
  let guarded: Awaited<ReturnType<typeof startRelay>> | undefined;
  let guardedHost: string;
  let registryHost: string;
  let relayHost: string;
  let context: string;
  let payloadSum: string;
  const built = 'orca-test/built:1';

  beforeAll(async () => {
    cluster = await startOrcaCluster({ engines: 2, firstIndex: 30 });
    busybox = cluster.images.busybox;
    [manager, worker] = cluster.swarm.daemons;
    admin = await cluster.bundle('admin', cluster.adminPassword);
    // Debian's docker-registry (plain HTTP: engines allow 127.0.0.0/8 without TLS) and the relay.
    const storage = join(scratch, 'registry');
    mkdirSync(storage);
    registryHost = `${manager.address}:${await freePort()}`;
    writeFileSync(
      join(storage, 'config.yml'),
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}/data\nhttp:\n  addr: ${registryHost}\n`,
    );
    registry = spawn('docker-registry', ['serve', join(storage, 'config.yml')], { stdio: 'ignore' });
    const relayPort = await freePort();
    relayHost = `${manager.address}:${relayPort}`;
    relay = await startRelay(manager.address, relayPort, registryHost);
    // The same registry behind HTTP Basic authentication: engines need the caller's credentials.
    const guardedPort = await freePort();
    guardedHost = `${manager.address}:${guardedPort}`;
    guarded = await startRelay(manager.address, guardedPort, registryHost, 'puller:s3cret');
    const deadline = Date.now() + 30_000;
    while ((await plainGet(`http://${registryHost}/v2/`).catch(() => undefined))?.status !== 200) {
      if (Date.now() > deadline) throw new Error('docker-registry did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
    // A build context with a payload big enough to cross many TLS records and socket buffers.
    context = join(scratch, 'context');
    mkdirSync(context);
    const payload = randomBytes(8 * 1024 * 1024);
    payloadSum = createHash('sha256').update(payload).digest('hex');
    writeFileSync(join(context, 'payload.bin'), payload);
    writeFileSync(join(context, 'hello.txt'), 'built through the front door\n');
    writeFileSync(
      join(context, 'Dockerfile'),
      `FROM ${busybox}\nARG GREETING=unset\nLABEL greeting=$GREETING\nCOPY payload.bin hello.txt /\nCMD ["cat", "/hello.txt"]\n`,
    );
  }, 180_000);

  afterAll(async () => {
    if (registry && registry.exitCode === null) {
      const exited = new Promise((resolve) => registry!.once('exit', resolve));
      registry.kill('SIGTERM');
      await exited;
    }
    for (const server of [relay?.server, guarded?.server]) {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
    await cluster?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  /** An image the nodes do not have (one random layer), pushed to the registry by the manager. */
  async function push(name: string): Promise<string> {
    const dir = join(scratch, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'data.bin'), randomBytes(512 * 1024));
    await run('tar', ['-cf', join(scratch, `${name}.tar`), '-C', dir, '.']);
    const ref = `${registryHost}/${name}:1`;
    await onEngine(manager, ['import', join(scratch, `${name}.tar`), ref]);
    await onEngine(manager, ['push', ref]);
    await onEngine(manager, ['rmi', ref]);
    const manifest = JSON.parse(
      (
        await plainGet(`http://${registryHost}/v2/${name}/manifests/1`, {
          accept:
            'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
        })
      ).text,
    ) as { layers: { digest: string }[] };
    return manifest.layers[0].digest;
  }

  it('advertises the classic builder and builds on the constrained node, context and output streamed', async () => {
    const ping = await raw(cluster, admin, 'GET', '/_ping');
    expect(ping.status).toBe(200);
    expect(ping.headers['builder-version']).toBe('1');
    expect((await raw(cluster, admin, 'HEAD', '/v1.41/_ping')).headers['builder-version']).toBe('1');

    // docker CLI 28 without DOCKER_BUILDKIT and without buildx falls back to the classic builder.
    const target = nodeName(worker);
    const build = await ok(admin, [
      'build',
      '-t',
      built,
      '--build-arg',
      `constraint:node==${target}`,
      '--build-arg',
      'GREETING=hello',
      context,
    ]);
    expect(build.stderr).toContain('legacy builder is deprecated');
    expect(build.stdout).toMatch(/Step 1\/5 : FROM/);
    expect(build.stdout).toMatch(/Successfully tagged orca-test\/built:1/);
    // The constraint is the scheduler's: the build never saw it as an argument.
    expect(build.stdout).not.toContain('constraint');
    expect(await engineHas(worker, built)).toBe(true);
    expect(await engineHas(manager, built)).toBe(false);
    expect(await onEngine(worker, ['image', 'inspect', '-f', '{{.Config.Labels.greeting}}', built])).toBe(
      'hello',
    );
    const sum = await ok(admin, [
      'run',
      '--rm',
      '--network',
      'none',
      '-e',
      `constraint:node==${target}`,
      built,
      'sha256sum',
      '/payload.bin',
    ]);
    expect(sum.stdout.split(/\s+/)[0]).toBe(payloadSum);

    // DOCKER_BUILDKIT=0, and the constraint as a label (as for docker run).
    const onManager = await ok(
      admin,
      [
        'build',
        '-q',
        '-t',
        'orca-test/built:2',
        '--label',
        `com.docker.swarm.constraints=["node==${nodeName(manager)}"]`,
        context,
      ],
      { DOCKER_BUILDKIT: '0' },
    );
    expect(onManager.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await engineHas(manager, 'orca-test/built:2')).toBe(true);
    expect(await engineHas(worker, 'orca-test/built:2')).toBe(false);

    const nowhere = await docker(admin, ['build', '--build-arg', 'constraint:node==no-such-node', context]);
    expect(nowhere.code).not.toBe(0);
    expect(nowhere.stderr).toContain(
      'unable to find a node that satisfies the following conditions [node==no-such-node]',
    );
  });

  it('saves from the node that holds the image and loads onto every node', async () => {
    const archive = join(scratch, 'built.tar');
    await ok(admin, ['save', '-o', archive, built]);
    const listing = await run('tar', ['-tf', archive]);
    expect(listing.stdout.split('\n')).toContain('manifest.json');
    const missing = await docker(admin, ['save', '-o', join(scratch, 'none.tar'), built, 'orca-test/none:1']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('Unable to find a node containing all images');

    await ok(admin, ['rmi', built]);
    expect(await engineHas(worker, built)).toBe(false);
    const loaded = await ok(admin, ['load', '-i', archive]);
    expect(loaded.stdout.split('\n').sort()).toEqual(
      [nodeName(manager), nodeName(worker)].map((n) => `${n}: Loaded image: ${built}`).sort(),
    );
    expect(await engineHas(manager, built)).toBe(true);
    expect(await engineHas(worker, built)).toBe(true);
    // From stdin as well, the archive teed to both engines as it arrives.
    await ok(admin, ['rmi', built]);
    const piped = await run('bash', ['-c', `${SCRIPT} < "$0"`, archive, admin, 'load'], cleanEnv);
    expect(piped.code).toBe(0);
    expect(await engineHas(manager, built)).toBe(true);
    expect(await engineHas(worker, built)).toBe(true);
  });

  it('loads an archive larger than the controller could hold without holding it', async () => {
    // An image archive as docker save writes it, with one 128 MiB layer of random bytes.
    const dir = join(scratch, 'big');
    mkdirSync(join(dir, 'rootfs'), { recursive: true });
    mkdirSync(join(dir, 'image', 'layer'), { recursive: true });
    writeFileSync(join(dir, 'rootfs', 'big.bin'), randomBytes(BIG_LAYER));
    await run('tar', ['-cf', join(dir, 'image', 'layer', 'layer.tar'), '-C', join(dir, 'rootfs'), '.']);
    const diffId = createHash('sha256')
      .update(readFileSync(join(dir, 'image', 'layer', 'layer.tar')))
      .digest('hex');
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    });
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
    writeFileSync(join(dir, 'image', configName), config);
    writeFileSync(
      join(dir, 'image', 'manifest.json'),
      JSON.stringify([{ Config: configName, RepoTags: ['orca-test/big:1'], Layers: ['layer/layer.tar'] }]),
    );
    await run('tar', ['-cf', join(dir, 'big.tar'), '-C', join(dir, 'image'), '.']);
    rmSync(join(dir, 'rootfs'), { recursive: true });
    rmSync(join(dir, 'image'), { recursive: true });

    const controller = controllerPid(cluster.port);
    // Resets the peak to the current size (proc(5), clear_refs).
    writeFileSync(`/proc/${controller}/clear_refs`, '5');
    const before = rss(controller, 'VmRSS');
    await ok(admin, ['load', '-i', join(dir, 'big.tar')]);
    const grown = rss(controller, 'VmHWM') - before;
    expect(await engineHas(manager, 'orca-test/big:1')).toBe(true);
    expect(await engineHas(worker, 'orca-test/big:1')).toBe(true);
    // Held whole, the archive alone would raise the controller's peak by 128 MiB; streamed, the
    // peak grew by about 32 MiB here (chunks in flight and garbage not yet collected).
    expect(grown).toBeLessThan((BIG_LAYER * 3) / 4);
    await ok(admin, ['rmi', 'orca-test/big:1']);
    rmSync(dir, { recursive: true });
  });

  it('streams docker pull progress per node as it arrives and fails the CLI on any node error', async () => {
    const layer = await push('pulltest');
    const image = `${relayHost}/pulltest:1`;

    relay!.hold(layer);
    const pull = spawn('bash', ['-c', SCRIPT, 'bash', admin, 'pull', image], { env: cleanEnv });
    let stdout = '';
    let stderr = '';
    pull.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    pull.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number>((resolve) => pull.on('close', (code) => resolve(code ?? 1)));
    try {
      // Both nodes' progress reaches the CLI while their downloads are still held.
      const waitingFor = `${layer.slice('sha256:'.length, 'sha256:'.length + 12)}: Pulling fs layer`;
      for (const node of [nodeName(manager), nodeName(worker)]) {
        await eventually(`${node} progress`, 30_000, () =>
          stdout
            .split('\n')
            .some((l) => l.startsWith(`${node}: Pulling ${image}... : `) && l.includes(waitingFor))
            ? true
            : undefined,
        );
      }
      expect(pull.exitCode).toBeNull();
    } finally {
      relay!.release();
    }
    expect(await exited).toBe(0);
    for (const node of [nodeName(manager), nodeName(worker)])
      expect(stdout).toContain(`${node}: Pulling ${image}... : Status: Downloaded newer image for ${image}`);
    expect(stderr).not.toContain('Error');
    expect(await engineHas(manager, image)).toBe(true);
    expect(await engineHas(worker, image)).toBe(true);

    // One node gets a corrupt layer: its failure is a line of its own, the other node's pull goes
    // on, and the stream ends with the Docker error message so the CLI exits non-zero.
    const badLayer = await push('pullbad');
    relay!.corruptOnce(badLayer);
    const bad = await docker(admin, ['pull', `${relayHost}/pullbad:1`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`filesystem layer verification failed for digest ${badLayer}`);
    expect(bad.stdout).toContain('Status: Downloaded newer image');
    expect(
      [
        await engineHas(manager, `${relayHost}/pullbad:1`),
        await engineHas(worker, `${relayHost}/pullbad:1`),
      ].sort(),
    ).toEqual([false, true]);

    // Nothing to pull anywhere: the engines' own 404, not a stream.
    const unknown = await docker(admin, ['pull', `${relayHost}/no-such-image:1`]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/Error response from daemon: .*(not found|unknown)/);
    const direct = await raw(
      cluster,
      admin,
      'POST',
      `/v1.41/images/create?fromImage=${encodeURIComponent(`${relayHost}/no-such-image`)}&tag=1`,
    );
    expect(direct.status).toBe(404);
  });

  it('passes X-Registry-Auth on, so engines pull from a registry with the caller credentials', async () => {
    await push('private');
    const image = `${guardedHost}/private:1`;
    const refused = await docker(admin, ['pull', image]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Error response from daemon: .*no basic auth credentials/);
    expect(await engineHas(manager, image)).toBe(false);
    // What `docker login` stores: the CLI sends it as X-Registry-Auth with the pull.
    const config = join(dockerConfig, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ auths: { [guardedHost]: { auth: Buffer.from('puller:s3cret').toString('base64') } } }),
    );
    try {
      const pulled = await ok(admin, ['pull', image]);
      expect(pulled.stdout).toContain(
        `${nodeName(worker)}: Pulling ${image}... : Status: Downloaded newer image`,
      );
      expect(await engineHas(manager, image)).toBe(true);
      expect(await engineHas(worker, image)).toBe(true);
    } finally {
      rmSync(config, { force: true });
    }
  });

  describe('authorization and bad input', () => {
    const PASSWORD = 'front-door-pass';
    let nobody: string;
    let builder: string;

    async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const answer = await cluster.api(method, path, { body });
      if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
      return (answer.text ? JSON.parse(answer.text) : undefined) as T;
    }

    beforeAll(async () => {
      await api('POST', '/accounts', { name: 'nobody', password: PASSWORD });
      const id = (await api<{ id: string }>('POST', '/accounts', { name: 'builder', password: PASSWORD })).id;
      const role = (
        await api<{ id: string }>('POST', '/roles', {
          name: 'image-builder',
          operations: { Image: { 'Image Build': [] } },
        })
      ).id;
      // Image Build on "/" (images carry no access label); Node Schedule only on /Shared (default).
      await api('PUT', `/collectionGrants/${id}/swarm/${role}`);
      nobody = await cluster.bundle('nobody', PASSWORD);
      builder = await cluster.bundle('builder', PASSWORD);
    }, 60_000);

    it('needs Image Build, Load, Save and Pull, and builds only on nodes the user may schedule on', async () => {
      const archive = join(scratch, 'built.tar');
      const denied: [string[], string][] = [
        [['build', '-t', 'orca-test/nobody:1', context], 'Image Build'],
        [['load', '-i', archive], 'Image Load'],
        [['save', '-o', join(scratch, 'nobody.tar'), built], 'Image Save'],
        [['pull', `${relayHost}/pulltest:1`], 'Image Pull'],
      ];
      for (const [args, operation] of denied) {
        const refused = await docker(nobody, args);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain(`access denied: no access to ${operation} on collection /`);
      }
      // The builder may build, on /Shared's worker only; the manager is in /System.
      await ok(builder, ['build', '-q', '-t', 'orca-test/by-builder:1', context]);
      expect(await engineHas(worker, 'orca-test/by-builder:1')).toBe(true);
      expect(await engineHas(manager, 'orca-test/by-builder:1')).toBe(false);
      const onManager = await docker(builder, [
        'build',
        '--build-arg',
        `constraint:node==${nodeName(manager)}`,
        context,
      ]);
      expect(onManager.code).not.toBe(0);
      expect(onManager.stderr).toContain('access denied: no access to Node Schedule on collection /System');
      const load = await docker(builder, ['load', '-i', archive]);
      expect(load.stderr).toContain('access denied: no access to Image Load on collection /');
    });

    it('answers bad input with 4xx Docker errors', async () => {
      const tar = { 'content-type': 'application/x-tar' };
      const notTar = await raw(cluster, admin, 'POST', '/v1.41/build', 'FROM busybox\n'.repeat(100), tar);
      expect(notTar).toMatchObject({
        status: 400,
        json: { message: expect.stringContaining('not a tar archive') },
      });
      const empty = await raw(cluster, admin, 'POST', '/v1.41/build', undefined, tar);
      expect(empty).toMatchObject({
        status: 400,
        json: { message: 'a build context (a tar archive) is required' },
      });
      const badArgs = await raw(
        cluster,
        admin,
        'POST',
        '/v1.41/build?buildargs=%7Bnope',
        Buffer.alloc(1024),
        tar,
      );
      expect(badArgs.status).toBe(400);
      expect((badArgs.json as { message: string }).message).toMatch(/^invalid buildargs/);
      const badConstraint = await raw(
        cluster,
        admin,
        'POST',
        `/v1.41/build?buildargs=${encodeURIComponent('{"constraint:node":"=no-such-node"}')}`,
        Buffer.alloc(1024),
        tar,
      );
      expect(badConstraint).toMatchObject({
        status: 400,
        json: {
          message: 'unable to find a node that satisfies the following conditions [node==no-such-node]',
        },
      });
      // A valid tar without a Dockerfile: engines answer 500, the front door the caller's 400.
      expect(await raw(cluster, admin, 'POST', '/v1.41/build', Buffer.alloc(1024), tar)).toMatchObject({
        status: 400,
        json: { message: 'Cannot locate specified Dockerfile: Dockerfile' },
      });
      const loadNotTar = await raw(
        cluster,
        admin,
        'POST',
        '/v1.41/images/load',
        'not an archive at all',
        tar,
      );
      expect(loadNotTar).toMatchObject({
        status: 400,
        json: { message: expect.stringContaining('not a tar archive') },
      });
      expect(await raw(cluster, admin, 'GET', '/v1.41/images/get')).toMatchObject({
        status: 400,
        json: { message: 'names is required: the images to save' },
      });
      expect(await raw(cluster, admin, 'POST', '/v1.41/images/create')).toMatchObject({
        status: 400,
        json: { message: 'fromImage is required' },
      });
      expect((await raw(cluster, admin, 'POST', '/v1.41/session')).status).toBe(501);
    });
  });
});
