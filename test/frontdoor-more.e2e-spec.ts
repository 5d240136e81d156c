// docker login, docker network connect/disconnect, node-local networks, docker import and the
// volumes `docker run` makes, through the Docker front door with the stock docker CLI and client
// bundles, as UCP's classic Swarm compatibility served them: POST /auth checked by an engine
// against the registry, network (dis)connects sent to the engine holding the container, bridge
// networks created, listed and removed as "<node>/<name>", imports teed to every node, named
// volumes created first and anonymous ones made with the caller's collection labels. Real engines
// in swarm mode on 127.0.0.41-42, orca's controller, agents and ucp-proxy really running, Debian's
// docker-registry with htpasswd authentication.
import { freePort, startOrcaCluster, type Dockerd, type OrcaCluster } from '@orca/testing';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const scratch = mkdtempSync(join(tmpdir(), 'orca-fd-more-'));
const dockerConfig = join(scratch, 'docker-config');
mkdirSync(dockerConfig);
// The CLI must use only what env.sh sets: no DOCKER_* from the runner, no contexts of its own.
const cleanEnv = Object.fromEntries(
  Object.entries({ ...process.env, DOCKER_CONFIG: dockerConfig }).filter(
    ([k]) => !k.startsWith('DOCKER_') || k === 'DOCKER_CONFIG',
  ),
) as NodeJS.ProcessEnv;
const SCRIPT = 'cd "$1" && eval "$(<env.sh)" >/dev/null && shift && exec docker "$@"';

function run(command: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { env: cleanEnv, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          stdout: stdout.trim(),
          stderr,
        }),
    );
    child.stdin?.end(input);
  });
}

/** The docker CLI with a bundle's env.sh, as the UCP docs say. */
function docker(bundle: string, args: string[], input?: string): Promise<Run> {
  return run('bash', ['-c', SCRIPT, 'bash', bundle, ...args], input);
}

async function ok(bundle: string, args: string[], input?: string): Promise<string> {
  const result = await docker(bundle, args, input);
  if (result.code !== 0)
    throw new Error(`docker ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

/** Straight to one engine's socket: what the node really holds, not what the front door says. */
async function onEngine(daemon: Dockerd, args: string[]): Promise<string> {
  const result = await run('docker', ['-H', daemon.dockerHost, ...args]);
  if (result.code !== 0) throw new Error(`docker -H ${daemon.address} ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** A request straight to the front door, with a bundle's certificate or with none. */
function raw(
  cluster: OrcaCluster,
  bundle: string | undefined,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; json: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const credentials = bundle
      ? {
          ca: readFileSync(join(bundle, 'ca.pem')),
          cert: readFileSync(join(bundle, 'cert.pem')),
          key: readFileSync(join(bundle, 'key.pem')),
        }
      : { rejectUnauthorized: false };
    const req = request(
      `${cluster.url}${path}`,
      {
        method,
        agent: false,
        ...credentials,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
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
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function plainStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An htpasswd line as docker-registry wants it (bcrypt), from the system's crypt(3) via perl. */
async function htpasswdLine(user: string, password: string): Promise<string> {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const salt = [...randomBytes(22)].map((b) => alphabet[b % 64]).join('');
  const hashed = await run('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2y$05$${salt}`]);
  if (hashed.code !== 0 || !hashed.stdout.startsWith('$2y$')) throw new Error(`no bcrypt: ${hashed.stderr}`);
  return `${user}:${hashed.stdout}\n`;
}

const labelsOf = async (daemon: Dockerd, volume: string): Promise<Record<string, string>> =>
  JSON.parse(await onEngine(daemon, ['volume', 'inspect', '-f', '{{json .Labels}}', volume])) as Record<
    string,
    string
  >;

const labelsOfNetwork = async (daemon: Dockerd, network: string): Promise<Record<string, string>> =>
  JSON.parse(await onEngine(daemon, ['network', 'inspect', '-f', '{{json .Labels}}', network])) as Record<
    string,
    string
  >;

describe('docker login, networks, import and implicit volumes through the Docker front door', () => {
  const PASSWORD = 'front-door-more-pass';
  const REGISTRY_PASSWORD = 'r3gistry-s3cret';
  const WRONG_PASSWORD = 'not-the-r3gistry-s3cret';
  let cluster: OrcaCluster;
  let admin: string;
  let owner: string;
  let stranger: string;
  let busybox: string;
  let manager: Dockerd;
  let worker: Dockerd;
  let workerName: string;
  let managerName: string;
  let registry: ChildProcess | undefined;
  let registryHost: string;

  async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await cluster.api(method, path, { body });
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
    return (answer.text ? JSON.parse(answer.text) : undefined) as T;
  }

  beforeAll(async () => {
    cluster = await startOrcaCluster({ engines: 2, firstIndex: 40 });
    busybox = cluster.images.busybox;
    [manager, worker] = cluster.swarm.daemons;
    workerName = `${hostname()}-${worker.address}`;
    managerName = `${hostname()}-${manager.address}`;
    admin = await cluster.bundle('admin', cluster.adminPassword);
    await api('POST', '/accounts', { name: 'volly', password: PASSWORD });
    await api('POST', '/accounts', { name: 'stranger', password: PASSWORD });
    owner = await cluster.bundle('volly', PASSWORD);
    stranger = await cluster.bundle('stranger', PASSWORD);
    // Debian's docker-registry with htpasswd (plain HTTP: engines allow 127.0.0.0/8 without TLS).
    const storage = join(scratch, 'registry');
    mkdirSync(storage);
    writeFileSync(join(storage, 'htpasswd'), await htpasswdLine('puller', REGISTRY_PASSWORD));
    registryHost = `${manager.address}:${await freePort()}`;
    writeFileSync(
      join(storage, 'config.yml'),
      [
        'version: 0.1',
        'log:',
        '  level: error',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${storage}/data`,
        'auth:',
        '  htpasswd:',
        '    realm: orca-test',
        `    path: ${storage}/htpasswd`,
        'http:',
        `  addr: ${registryHost}`,
        '',
      ].join('\n'),
    );
    registry = spawn('docker-registry', ['serve', join(storage, 'config.yml')], { stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    while ((await plainStatus(`http://${registryHost}/v2/`).catch(() => 0)) !== 401) {
      if (Date.now() > deadline) throw new Error('docker-registry did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 150_000);

  afterAll(async () => {
    if (registry && registry.exitCode === null) {
      const exited = new Promise((resolve) => registry!.once('exit', resolve));
      registry.kill('SIGTERM');
      await exited;
    }
    await cluster?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  it('docker login: an engine checks the credentials with the registry, for any authenticated user', async () => {
    // A user without any grant on "/" logs in: POST /auth changes nothing.
    const login = await docker(
      owner,
      ['login', '--username', 'puller', '--password-stdin', registryHost],
      REGISTRY_PASSWORD,
    );
    expect(login).toMatchObject({ code: 0 });
    expect(login.stdout).toContain('Login Succeeded');
    const stored = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8')) as {
      auths: Record<string, { auth?: string }>;
    };
    expect(Buffer.from(stored.auths[registryHost].auth ?? '', 'base64').toString()).toBe(
      `puller:${REGISTRY_PASSWORD}`,
    );
    await ok(owner, ['logout', registryHost]);

    const wrong = await docker(
      admin,
      ['login', '--username', 'puller', '--password-stdin', registryHost],
      WRONG_PASSWORD,
    );
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/Error response from daemon: .*401 Unauthorized/);
    // The engine answers a refused login with 500: the front door says what it is, the caller's 401.
    const refused = await raw(
      cluster,
      admin,
      'POST',
      '/v1.41/auth',
      JSON.stringify({ username: 'puller', password: WRONG_PASSWORD, serveraddress: registryHost }),
    );
    expect(refused.status).toBe(401);
    expect((refused.json as { message: string }).message).toMatch(/401 Unauthorized/);
    // No registry there: a bad gateway, with the engine's reason.
    const nowhere = await raw(
      cluster,
      owner,
      'POST',
      '/v1.41/auth',
      JSON.stringify({
        username: 'puller',
        password: 'x',
        serveraddress: `${manager.address}:${await freePort()}`,
      }),
    );
    expect(nowhere.status).toBe(502);
    expect((nowhere.json as { message: string }).message).toContain('connection refused');

    // Not authenticated, not JSON, wrong types: refused before any engine sees them.
    const anonymous = await raw(cluster, undefined, 'POST', '/v1.41/auth', '{"username":"puller"}');
    expect(anonymous.status).toBe(401);
    expect((await raw(cluster, admin, 'POST', '/v1.41/auth', '{nope')).status).toBe(400);
    expect(await raw(cluster, admin, 'POST', '/v1.41/auth', '{"password":7}')).toMatchObject({
      status: 400,
      json: { message: 'password must be a string' },
    });
    // UCP's own /auth/login is still UCP's.
    expect((await raw(cluster, undefined, 'POST', '/auth/login', '{}')).status).toBe(401);

    // Audited as the caller's registry login, and no password in the audit log or the controller's log.
    type Entry = { path: string; operation?: string; subject: string; status: number; resource?: string };
    let page: { entries: Entry[] } = { entries: [] };
    let logins: Entry[] = [];
    // Entries are written as responses end: the last one may still be on its way.
    for (let tries = 0; logins.length < 4 && tries < 20; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 250));
      page = (await raw(cluster, admin, 'GET', '/api/ucp/audit?limit=100')).json as { entries: Entry[] };
      logins = page.entries.filter(
        (e) => /^\/v[\d.]+\/auth$/.test(e.path) && e.operation === 'Registry Login',
      );
    }
    expect(logins).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ subject: 'volly', status: 200, resource: registryHost }),
        expect.objectContaining({ subject: 'admin', status: 401, resource: registryHost }),
        expect.objectContaining({ subject: 'volly', status: 502 }),
      ]),
    );
    const everything = JSON.stringify(page);
    const controllerLog = join(dirname(admin), 'controller.log');
    expect(existsSync(controllerLog)).toBe(true);
    for (const secret of [REGISTRY_PASSWORD, WRONG_PASSWORD]) {
      expect(everything).not.toContain(secret);
      expect(readFileSync(controllerLog, 'utf8')).not.toContain(secret);
    }
  });

  it('docker network connect/disconnect go to the engine that holds the container', async () => {
    // A user-defined bridge network exists on the worker only.
    await onEngine(worker, ['network', 'create', '-d', 'bridge', 'fd-bridge']);
    await ok(admin, [
      'run',
      '-d',
      '--name',
      'fd-attach',
      '-e',
      `constraint:node==${workerName}`,
      busybox,
      'sleep',
      '600',
    ]);
    const networksOf = async () =>
      (
        await onEngine(worker, [
          'inspect',
          '-f',
          '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}',
          'fd-attach',
        ])
      )
        .split(' ')
        .filter(Boolean)
        .sort();
    await ok(admin, ['network', 'connect', 'fd-bridge', 'fd-attach']);
    expect(await networksOf()).toEqual(['bridge', 'fd-bridge']);
    // The node-prefixed name that docker ps shows works too.
    await ok(admin, ['network', 'disconnect', 'fd-bridge', `${workerName}/fd-attach`]);
    expect(await networksOf()).toEqual(['bridge']);
    // An attachable swarm overlay: the worker's engine gets the attachment from a manager itself.
    await ok(admin, ['network', 'create', '-d', 'overlay', '--attachable', 'fd-overlay']);
    await ok(admin, ['network', 'connect', 'fd-overlay', 'fd-attach']);
    expect(await networksOf()).toEqual(['bridge', 'fd-overlay']);
    await ok(admin, ['network', 'disconnect', 'fd-overlay', 'fd-attach']);
    expect(await networksOf()).toEqual(['bridge']);

    const missing = await docker(admin, ['network', 'connect', 'fd-bridge', 'no-such-container']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('No such container: no-such-container');
    const noNetwork = await docker(admin, ['network', 'connect', 'no-such-network', 'fd-attach']);
    expect(noNetwork.code).not.toBe(0);
    expect(noNetwork.stderr).toContain(`network no-such-network not found on node ${workerName}`);
    expect(
      await raw(cluster, admin, 'POST', '/v1.41/networks/fd-bridge/connect', '{"Container":3}'),
    ).toMatchObject({ status: 400, json: { message: 'Container is required' } });

    // Network Connect on the network's collection: fd-bridge is unlabelled ("/").
    await ok(owner, ['run', '-d', '--name', 'volly-attach', busybox, 'sleep', '600']);
    const denied = await docker(owner, ['network', 'connect', 'fd-bridge', 'volly-attach']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('access denied: no access to Network Connect on collection /');
    // ... and Container Update on the container's: the admin's network in volly's collection.
    await onEngine(worker, [
      'network',
      'create',
      '-d',
      'bridge',
      '--label',
      'com.docker.ucp.access.label=/Shared/Private/volly',
      'volly-bridge',
    ]);
    await ok(owner, ['network', 'connect', 'volly-bridge', 'volly-attach']);
    const strangerDenied = await docker(stranger, ['network', 'disconnect', 'volly-bridge', 'volly-attach']);
    expect(strangerDenied.code).not.toBe(0);
    expect(strangerDenied.stderr).toContain(
      'access denied: no access to Network Disconnect on collection /Shared/Private/volly',
    );
    await ok(owner, ['network', 'disconnect', 'volly-bridge', 'volly-attach']);
    await ok(owner, ['rm', '-f', 'volly-attach']);
    await ok(admin, ['rm', '-f', 'fd-attach']);
    await onEngine(worker, ['network', 'rm', 'fd-bridge', 'volly-bridge']);
  });

  it('creates the named volumes docker run mounts with the caller labels first, or refuses', async () => {
    await ok(owner, [
      'create',
      '--name',
      'volly-volumes',
      '-v',
      'fd-data:/data',
      '--mount',
      'type=volume,src=fd-mounted,dst=/m,volume-label=tier=db',
      busybox,
      'true',
    ]);
    // Non-admins schedule on the worker only (/Shared): the volumes are there, labelled.
    for (const volume of ['fd-data', 'fd-mounted']) {
      const labels = await labelsOf(worker, volume);
      expect(labels).toMatchObject({
        'com.docker.ucp.access.label': '/Shared/Private/volly',
        'com.docker.ucp.access.owner': 'volly',
        'com.docker.ucp.collection.root': 'true',
        'com.docker.ucp.collection.shared': 'true',
        'com.docker.ucp.collection.private': 'true',
      });
      expect(labels[`com.docker.ucp.collection.${labels['com.docker.ucp.collection']}`]).toBe('true');
    }
    expect((await labelsOf(worker, 'fd-mounted')).tier).toBe('db');
    const mine = (await ok(owner, ['volume', 'ls', '--format', '{{.Name}}'])).split('\n');
    expect(mine).toEqual(expect.arrayContaining([`${workerName}/fd-data`, `${workerName}/fd-mounted`]));
    expect(
      await ok(owner, [
        'volume',
        'inspect',
        '-f',
        '{{index .Labels "com.docker.ucp.access.label"}}',
        `${workerName}/fd-data`,
      ]),
    ).toBe('/Shared/Private/volly');

    // Someone else sees none of it, may not mount it, and may not create volumes in volly's collection.
    expect(await ok(stranger, ['volume', 'ls', '-q'])).not.toContain('fd-');
    const hidden = await docker(stranger, ['volume', 'inspect', `${workerName}/fd-data`]);
    expect(hidden.stderr).toContain(
      'access denied: no access to Volume View on collection /Shared/Private/volly',
    );
    const mount = await docker(stranger, ['create', '-v', 'fd-data:/data', busybox, 'true']);
    expect(mount.stderr).toContain(
      'access denied: no access to Volume Mount on collection /Shared/Private/volly',
    );
    const into = await docker(stranger, [
      'create',
      '--name',
      'stranger-volumes',
      '--mount',
      'type=volume,src=fd-theirs,dst=/m,volume-label=com.docker.ucp.access.label=/Shared/Private/volly',
      busybox,
      'true',
    ]);
    expect(into.code).not.toBe(0);
    expect(into.stderr).toContain(
      'access denied: no access to Volume Create on collection /Shared/Private/volly',
    );
    // Refused before anything was made.
    for (const daemon of [manager, worker]) {
      expect(await onEngine(daemon, ['volume', 'ls', '-q'])).not.toContain('fd-theirs');
      expect(await onEngine(daemon, ['ps', '-a', '--format', '{{.Names}}'])).not.toContain(
        'stranger-volumes',
      );
    }
    // The stranger's own implicit volume lands in their own collection.
    await ok(stranger, ['create', '--name', 'stranger-own', '-v', 'fd-own:/data', busybox, 'true']);
    expect((await labelsOf(worker, 'fd-own'))['com.docker.ucp.access.label']).toBe(
      '/Shared/Private/stranger',
    );

    await ok(owner, ['rm', 'volly-volumes']);
    await ok(stranger, ['rm', 'stranger-own']);
  });
  it('labels the anonymous volumes docker run makes, which stay anonymous', async () => {
    // An image with a VOLUME, on the worker (where non-admins schedule).
    await onEngine(worker, ['create', '--name', 'fd-vol-base', busybox, 'true']);
    await onEngine(worker, ['commit', '--change', 'VOLUME /cache', 'fd-vol-base', 'fd-vol-image:1']);
    await onEngine(worker, ['rm', 'fd-vol-base']);
    const volumesOnWorker = async () => new Set((await onEngine(worker, ['volume', 'ls', '-q'])).split('\n'));
    const before = await volumesOnWorker();
    await ok(owner, [
      'create',
      '--name',
      'volly-anon',
      '-v',
      '/data',
      '--mount',
      'type=volume,dst=/m,volume-label=tier=cache',
      // Filled by a tmpfs, a named volume: no anonymous volume there.
      '--tmpfs',
      '/scratch',
      '-v',
      'fd-anon-named:/cache/named',
      'fd-vol-image:1',
      'true',
    ]);
    const mounts = (
      JSON.parse(await onEngine(worker, ['inspect', '-f', '{{json .Mounts}}', 'volly-anon'])) as {
        Type: string;
        Name: string;
        Destination: string;
      }[]
    ).sort((a, b) => a.Destination.localeCompare(b.Destination));
    expect(mounts.map((m) => `${m.Type} ${m.Destination}`)).toEqual([
      'volume /cache',
      'volume /cache/named',
      'volume /data',
      'volume /m',
    ]);
    const anonymous = mounts.filter((m) => m.Name !== 'fd-anon-named');
    for (const { Name } of anonymous) {
      expect(Name).toMatch(/^[0-9a-f]{64}$/);
      expect(before.has(Name)).toBe(false);
      expect(await labelsOf(worker, Name)).toMatchObject({
        'com.docker.ucp.access.label': '/Shared/Private/volly',
        'com.docker.ucp.access.owner': 'volly',
        'com.docker.ucp.collection.private': 'true',
      });
    }
    expect((await labelsOf(worker, anonymous.find((m) => m.Destination === '/m')!.Name)).tier).toBe('cache');
    // Their owner sees them, as "<node>/<name>"; someone else does not.
    const mine = (await ok(owner, ['volume', 'ls', '--format', '{{.Name}}'])).split('\n');
    expect(mine).toEqual(expect.arrayContaining(anonymous.map((m) => `${workerName}/${m.Name}`)));
    const theirs = await ok(stranger, ['volume', 'ls', '-q']);
    for (const { Name } of anonymous) expect(theirs).not.toContain(Name);
    // Still anonymous for the engine: rm -v takes them with the container, not the named one.
    await ok(owner, ['rm', '-v', 'volly-anon']);
    const after = await volumesOnWorker();
    for (const { Name } of anonymous) expect(after.has(Name)).toBe(false);
    expect(after.has('fd-anon-named')).toBe(true);
    // And so does --rm (the engine removes the container when it exits; detached: users may not attach).
    await ok(owner, ['run', '-d', '--rm', '--name', 'volly-rm', '-v', '/data', busybox, 'true']);
    // The engine forgets the container, then removes its anonymous volumes.
    const added = async () => [...(await volumesOnWorker())].filter((v) => !before.has(v));
    const deadline = Date.now() + 20_000;
    while (
      (await onEngine(worker, ['ps', '-a', '-q', '--filter', 'name=volly-rm'])) !== '' ||
      (await added()).length > 1
    ) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await onEngine(worker, ['ps', '-a', '-q', '--filter', 'name=volly-rm'])).toBe('');
    expect(await added()).toEqual(['fd-anon-named']);

    // An anonymous volume is decided like any volume: another collection needs Volume Create there.
    const into = await docker(stranger, [
      'create',
      '--name',
      'stranger-anon',
      '--mount',
      'type=volume,dst=/m,volume-label=com.docker.ucp.access.label=/Shared/Private/volly',
      busybox,
      'true',
    ]);
    expect(into.code).not.toBe(0);
    expect(into.stderr).toContain(
      'access denied: no access to Volume Create on collection /Shared/Private/volly',
    );
    expect(await onEngine(worker, ['ps', '-a', '--format', '{{.Names}}'])).not.toContain('stranger-anon');
    await ok(owner, ['volume', 'rm', `${workerName}/fd-anon-named`]);
    await onEngine(worker, ['rmi', 'fd-vol-image:1']);
  });

  it('creates, lists, inspects and removes node-local networks as <node>/<name>', async () => {
    const id = await ok(admin, ['network', 'create', '-d', 'bridge', `${workerName}/fd-local`]);
    // On the worker's engine only, labelled like any create.
    expect(
      await onEngine(worker, [
        'network',
        'inspect',
        '-f',
        '{{.Id}} {{index .Labels "com.docker.ucp.access.label"}}',
        'fd-local',
      ]),
    ).toBe(`${id} /Shared/Private/admin`);
    expect(await onEngine(manager, ['network', 'ls', '-q', '--filter', 'name=fd-local'])).toBe('');

    // Swarm networks once by name, each node's local ones as "<node>/<name>".
    const listed = (await ok(admin, ['network', 'ls', '--format', '{{.Name}} {{.Scope}}'])).split('\n');
    expect(listed).toEqual(
      expect.arrayContaining([
        'ingress swarm',
        `${workerName}/fd-local local`,
        `${workerName}/host local`,
        `${managerName}/host local`,
        `${managerName}/none local`,
      ]),
    );
    expect(listed.filter((n) => n.startsWith('ingress '))).toHaveLength(1);
    expect(listed.filter((n) => /^(host|none) /.test(n))).toEqual([]);
    // Engine filters still apply.
    expect(await ok(admin, ['network', 'ls', '--filter', 'name=fd-local', '--format', '{{.Name}}'])).toBe(
      `${workerName}/fd-local`,
    );

    // Inspect by "<node>/<name>", by id, or by a name only one node has; "host" is on every node.
    for (const ref of [`${workerName}/fd-local`, id, 'fd-local'])
      expect(await ok(admin, ['network', 'inspect', '-f', '{{.Name}} {{.Driver}}', ref])).toBe(
        `${workerName}/fd-local bridge`,
      );
    expect(await ok(admin, ['network', 'inspect', '-f', '{{.Scope}}', 'ingress'])).toBe('swarm');
    const ambiguous = await docker(admin, ['network', 'inspect', 'host']);
    expect(ambiguous.code).not.toBe(0);
    expect(ambiguous.stderr).toContain('network host exists on several nodes: name it as <node>/<name>');
    expect(await ok(admin, ['network', 'inspect', '-f', '{{.Name}}', `${managerName}/host`])).toBe(
      `${managerName}/host`,
    );
    const nowhere = await docker(admin, ['network', 'inspect', `${workerName}/no-such-net`]);
    expect(nowhere.stderr).toContain(`No such network: ${workerName}/no-such-net`);

    // Connect by the node-qualified name; a local network of another node is refused.
    await ok(admin, [
      'run',
      '-d',
      '--name',
      'fd-local-c',
      '-e',
      `constraint:node==${workerName}`,
      busybox,
      'sleep',
      '600',
    ]);
    await ok(admin, ['network', 'connect', `${workerName}/fd-local`, 'fd-local-c']);
    expect(
      await onEngine(worker, [
        'inspect',
        '-f',
        '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}',
        'fd-local-c',
      ]),
    ).toBe('bridge fd-local');
    const elsewhere = await docker(admin, ['network', 'connect', `${managerName}/none`, 'fd-local-c']);
    expect(elsewhere.stderr).toContain(
      `network ${managerName}/none is local to node ${managerName}: the container is on node ${workerName}`,
    );
    await ok(admin, ['network', 'disconnect', `${workerName}/fd-local`, 'fd-local-c']);
    await ok(admin, ['rm', '-f', 'fd-local-c']);

    // A user creates on a node it may schedule on, in its own collection, and sees only what it may.
    await ok(owner, ['network', 'create', '-d', 'bridge', `${workerName}/volly-local`]);
    expect((await labelsOfNetwork(worker, 'volly-local'))['com.docker.ucp.access.label']).toBe(
      '/Shared/Private/volly',
    );
    const mine = (await ok(owner, ['network', 'ls', '--format', '{{.Name}}'])).split('\n');
    expect(mine).toContain(`${workerName}/volly-local`);
    // Unlabelled ("/") and the admin's networks are not the user's; the manager (/System) is not its node.
    for (const other of [`${workerName}/host`, `${workerName}/fd-local`, 'ingress'])
      expect(mine).not.toContain(other);
    expect(mine.filter((n) => n.startsWith(`${managerName}/`))).toEqual([]);
    expect(await ok(stranger, ['network', 'ls', '--format', '{{.Name}}'])).not.toContain('volly-local');
    const peek = await docker(stranger, ['network', 'inspect', `${workerName}/volly-local`]);
    expect(peek.stderr).toContain(
      'access denied: no access to Network View on collection /Shared/Private/volly',
    );
    const onManager = await docker(owner, ['network', 'create', '-d', 'bridge', `${managerName}/volly-m`]);
    expect(onManager.stderr).toContain('access denied: no access to Node Schedule on collection /System');
    const unknown = await docker(admin, ['network', 'create', '-d', 'bridge', 'no-such-node/x']);
    expect(unknown.stderr).toContain(
      'unable to find a node that satisfies the following conditions [node==no-such-node]',
    );
    const removeTheirs = await docker(stranger, ['network', 'rm', `${workerName}/volly-local`]);
    expect(removeTheirs.stderr).toContain(
      'access denied: no access to Network Delete on collection /Shared/Private/volly',
    );

    await ok(owner, ['network', 'rm', `${workerName}/volly-local`]);
    await ok(admin, ['network', 'rm', 'fd-local']);
    expect(await onEngine(worker, ['network', 'ls', '--format', '{{.Name}}'])).not.toMatch(
      /^(fd-local|volly-local)$/m,
    );
  });

  it('docker import sends the archive to every node, as docker load', async () => {
    // A root filesystem: busybox exported from the manager's engine.
    await onEngine(manager, ['create', '--name', 'fd-export', busybox, 'true']);
    const rootfs = join(scratch, 'rootfs.tar');
    await onEngine(manager, ['export', '-o', rootfs, 'fd-export']);
    await onEngine(manager, ['rm', 'fd-export']);
    const out = await ok(admin, [
      'import',
      '--change',
      'CMD ["echo", "imported"]',
      '--message',
      'through the front door',
      rootfs,
      'fd-imported:1',
    ]);
    // Each node reports the image it made.
    for (const [daemon, name] of [
      [manager, managerName],
      [worker, workerName],
    ] as const) {
      const id = await onEngine(daemon, ['image', 'inspect', '-f', '{{.Id}}', 'fd-imported:1']);
      expect(out).toContain(`${name}: ${id}`);
    }
    expect(await ok(admin, ['run', '--rm', '-e', `constraint:node==${workerName}`, 'fd-imported:1'])).toBe(
      'imported',
    );
    expect(await ok(admin, ['history', '--format', '{{.Comment}}', 'fd-imported:1'])).toContain(
      'through the front door',
    );

    // Authorized as an image create (Image Pull on "/"); not an archive, or nothing: the caller's error.
    const denied = await docker(owner, ['import', rootfs, 'volly-imported:1']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('access denied: no access to Image Pull on collection /');
    expect(
      await raw(cluster, admin, 'POST', '/v1.41/images/create?fromSrc=-&repo=fd-bad', 'not a tar at all'),
    ).toMatchObject({ status: 400, json: { message: expect.stringContaining('not a tar archive') } });
    expect(await raw(cluster, admin, 'POST', '/v1.41/images/create?fromSrc=-&repo=fd-bad')).toMatchObject({
      status: 400,
      json: { message: expect.stringContaining('is required') },
    });
    for (const daemon of [manager, worker])
      expect(await onEngine(daemon, ['images', '-q', 'fd-bad'])).toBe('');
    await ok(admin, ['rmi', 'fd-imported:1']);
  });
});
