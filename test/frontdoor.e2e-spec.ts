// The Docker front door with the stock docker CLI, used exactly as the UCP docs tell a user to:
// download a client bundle, `cd bundle && eval "$(<env.sh)"`, then `docker ...`. Real engines in
// swarm mode, orca's controller, agents and ucp-proxy really running (libs/testing orca-cluster).
import { CLIENT_ROOT_CN, CertificateAuthority, createRootCa, generateKeyPair } from '@orca/pki';
import { startOrcaCluster, type OrcaCluster } from '@orca/testing';
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const dockerConfig = mkdtempSync(join(tmpdir(), 'orca-docker-config-'));
// The CLI must use only what env.sh sets: no DOCKER_* from the runner, no contexts of its own.
const cleanEnv = Object.fromEntries(
  Object.entries({ ...process.env, DOCKER_CONFIG: dockerConfig }).filter(
    ([k]) => !k.startsWith('DOCKER_') || k === 'DOCKER_CONFIG',
  ),
) as NodeJS.ProcessEnv;
const SCRIPT = 'cd "$1" && eval "$(<env.sh)" >/dev/null && shift && exec docker "$@"';

function docker(bundle: string, args: string[], input?: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      'bash',
      ['-c', SCRIPT, 'bash', bundle, ...args],
      { env: cleanEnv, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
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

async function ok(bundle: string, args: string[], input?: string): Promise<string> {
  const run = await docker(bundle, args, input);
  if (run.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${run.code}): ${run.stderr}`);
  return run.stdout;
}

async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** A request straight to the front door with a bundle's certificate (for bad-input checks). */
function raw(
  cluster: OrcaCluster,
  bundle: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; json: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cluster.url}${path}`,
      {
        method,
        agent: false,
        ca: readFileSync(join(bundle, 'ca.pem')),
        cert: readFileSync(join(bundle, 'cert.pem')),
        key: readFileSync(join(bundle, 'key.pem')),
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

describe('the Docker front door with the docker CLI', () => {
  let cluster: OrcaCluster;
  let admin: string;
  let busybox: string;
  // The engines of this test share the machine's hostname, so node names carry their address.
  const nodeName = (address: string) => `${hostname()}-${address}`;
  let managerName: string;
  let workerNames: string[];

  beforeAll(async () => {
    cluster = await startOrcaCluster({ engines: 3 });
    busybox = cluster.images.busybox;
    admin = await cluster.bundle('admin', cluster.adminPassword);
    managerName = nodeName(cluster.swarm.manager.address);
    workerNames = cluster.swarm.daemons.slice(1).map((d) => nodeName(d.address));
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
    rmSync(dockerConfig, { recursive: true, force: true });
  }, 120_000);

  describe('as an admin', () => {
    it('reports the server as ucp/... and the swarm in docker info', async () => {
      expect(await ok(admin, ['version', '--format', '{{.Server.Version}}'])).toMatch(/^ucp\/3\.0\.0/);
      const info = await ok(admin, [
        'info',
        '--format',
        '{{.ServerVersion}} {{.Swarm.Nodes}} {{.Swarm.Managers}}',
      ]);
      expect(info).toMatch(/^ucp\/\S+ 3 1$/);
      expect(await ok(admin, ['info'])).toContain(`${managerName}: ${cluster.swarm.manager.address}:12376`);
    });

    it('lists the swarm nodes with docker node ls', async () => {
      const rows = (
        await ok(admin, ['node', 'ls', '--format', '{{.ID}} {{.ManagerStatus}} {{.Status}}'])
      ).split('\n');
      expect(rows).toHaveLength(3);
      expect(rows.filter((r) => r.includes('Leader'))).toHaveLength(1);
      expect(rows.every((r) => r.endsWith('Ready'))).toBe(true);
    });

    it('spreads docker run over the nodes, honours constraints, and merges docker ps with node names', async () => {
      for (const name of ['spread-a', 'spread-b', 'spread-c'])
        await ok(admin, ['run', '-d', '--name', name, '--network', 'none', busybox, 'sleep', '600']);
      const names = (await ok(admin, ['ps', '--format', '{{.Names}}'])).split('\n');
      const spreadNodes = names.filter((n) => n.includes('/spread-')).map((n) => n.split('/')[0]);
      expect(new Set(spreadNodes)).toEqual(new Set([managerName, ...workerNames]));

      const target = workerNames[1];
      await ok(admin, [
        'run',
        '-d',
        '--name',
        'pinned',
        '-e',
        `constraint:node==${target}`,
        '--network',
        'none',
        busybox,
        'sleep',
        '600',
      ]);
      await ok(admin, [
        'run',
        '-d',
        '--name',
        'pinned-label',
        '--label',
        `com.docker.swarm.constraints=["node==${target}"]`,
        '--network',
        'none',
        busybox,
        'sleep',
        '600',
      ]);
      const pinned = await ok(admin, ['ps', '--filter', 'name=pinned', '--format', '{{.Names}}']);
      expect(pinned.split('\n').sort()).toEqual([`${target}/pinned`, `${target}/pinned-label`]);
      // The constraint is the scheduler's, not the container's environment.
      expect(await ok(admin, ['inspect', '-f', '{{json .Config.Env}}', 'pinned'])).not.toContain(
        'constraint:',
      );
      expect(
        await ok(admin, [
          'inspect',
          '-f',
          '{{index .Config.Labels "com.docker.ucp.access.label"}}',
          `${target}/pinned`,
        ]),
      ).toBe('/Shared/Private/admin');
      const clash = await docker(admin, [
        'run',
        '-d',
        '--name',
        'pinned',
        '--network',
        'none',
        busybox,
        'true',
      ]);
      expect(clash.code).not.toBe(0);
      expect(clash.stderr).toContain('Conflict. The container name "/pinned" is already in use');
      const nowhere = await docker(admin, [
        'run',
        '-d',
        '-e',
        'constraint:node==no-such-node',
        '--network',
        'none',
        busybox,
        'true',
      ]);
      expect(nowhere.stderr).toContain(
        'unable to find a node that satisfies the following conditions [node==no-such-node]',
      );
      await ok(admin, ['rm', '-f', `${target}/pinned`, 'pinned-label', 'spread-a', 'spread-b', 'spread-c']);
      expect(await ok(admin, ['ps', '-a', '--filter', 'name=pinned', '-q'])).toBe('');
    });

    it('streams docker run output, docker logs -f while the container runs, and docker exec', async () => {
      const testStarted = Math.floor(Date.now() / 1000) - 1;
      expect(
        await ok(admin, ['run', '--rm', '--network', 'none', busybox, 'echo', 'hello from a node']),
      ).toBe('hello from a node');
      await ok(admin, [
        'run',
        '-d',
        '--name',
        'ticker',
        '--network',
        'none',
        busybox,
        'sh',
        '-c',
        'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done',
      ]);
      const follow = spawn('bash', ['-c', SCRIPT, 'bash', admin, 'logs', '-f', 'ticker'], { env: cleanEnv });
      try {
        let seen = '';
        follow.stdout.on('data', (c: Buffer) => (seen += c.toString()));
        await eventually('three ticks through logs -f', 20_000, async () =>
          /tick 3\n/.test(seen) ? true : undefined,
        );
        const lines = seen.split('\n').length;
        // Still streaming: more lines arrive while the container keeps running.
        await eventually('more ticks', 10_000, async () =>
          seen.split('\n').length > lines + 2 ? true : undefined,
        );
        expect(await ok(admin, ['inspect', '-f', '{{.State.Running}}', 'ticker'])).toBe('true');
      } finally {
        follow.kill('SIGTERM');
      }
      // Every node's events, merged: the ticker's lifecycle from the node that runs it.
      const events = await ok(admin, [
        'events',
        '--since',
        String(testStarted),
        '--until',
        String(Math.ceil(Date.now() / 1000) + 1),
        '--filter',
        'container=ticker',
        '--format',
        '{{.Action}}',
      ]);
      expect(events.split('\n')).toEqual(expect.arrayContaining(['create', 'start']));
      expect(await ok(admin, ['exec', 'ticker', 'echo', 'inside'])).toBe('inside');
      expect((await docker(admin, ['exec', 'ticker', 'sh', '-c', 'exit 3'])).code).toBe(3);
      // stdin through the hijacked stream, and its end: `cat` exits when stdin closes.
      expect(await ok(admin, ['exec', '-i', 'ticker', 'cat'], 'through stdin\n')).toBe('through stdin');
      // Hijacked exec starts never pass Express: they are audited all the same.
      const audit = await eventually('the exec start in the audit log', 10_000, async () => {
        const page = (await raw(cluster, admin, 'GET', '/api/ucp/audit?limit=200')).json as {
          entries: { path: string; operation?: string; decision?: string; status: number; subject: string }[];
        };
        return page.entries.find((e) => /\/exec\/[0-9a-f]+\/start$/.test(e.path));
      });
      expect(audit).toMatchObject({
        operation: 'Container Exec',
        decision: 'allow',
        status: 101,
        subject: 'admin',
      });
      await ok(admin, ['rm', '-f', 'ticker']);
    });

    it('creates, lists, inspects and removes services; task containers get the collection labels', async () => {
      await ok(admin, [
        'service',
        'create',
        '--detach',
        '--name',
        'web',
        '--network',
        'host',
        busybox,
        'sleep',
        '600',
      ]);
      await eventually('web 1/1', 30_000, async () =>
        (await ok(admin, ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}'])).includes('web 1/1')
          ? true
          : undefined,
      );
      expect(await ok(admin, ['service', 'ps', 'web', '--format', '{{.Name}} {{.DesiredState}}'])).toBe(
        'web.1 Running',
      );
      const labels = JSON.parse(
        await ok(admin, [
          'service',
          'inspect',
          'web',
          '--format',
          '{{json .Spec.TaskTemplate.ContainerSpec.Labels}}',
        ]),
      ) as Record<string, string>;
      expect(labels['com.docker.ucp.access.label']).toBe('/Shared/Private/admin');
      expect(labels['com.docker.ucp.collection.private']).toBe('true');
      const task = await eventually('the task container', 20_000, async () => {
        const line = await ok(admin, [
          'ps',
          '--filter',
          'name=web.1',
          '--format',
          '{{.Names}} {{.Label "com.docker.ucp.access.label"}}',
        ]);
        return line ? line : undefined;
      });
      expect(task).toMatch(/\/web\.1\.\S+ \/Shared\/Private\/admin$/);
      await ok(admin, ['service', 'rm', 'web']);
      expect(await ok(admin, ['service', 'ls', '-q'])).toBe('');
    });

    it('deploys a stack', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'orca-stack-'));
      try {
        writeFileSync(
          join(dir, 'stack.yml'),
          [
            'version: "3.8"',
            'services:',
            '  app:',
            `    image: ${busybox}`,
            '    command: sleep 600',
            '    networks: [hostnet]',
            'networks:',
            '  hostnet:',
            '    external: true',
            '    name: host',
            '',
          ].join('\n'),
        );
        expect(await ok(admin, ['stack', 'deploy', '-c', join(dir, 'stack.yml'), 'demo'])).toContain(
          'Creating service demo_app',
        );
        await eventually('demo_app 1/1', 30_000, async () =>
          (await ok(admin, ['stack', 'services', 'demo', '--format', '{{.Name}} {{.Replicas}}'])) ===
          'demo_app 1/1'
            ? true
            : undefined,
        );
        await ok(admin, ['stack', 'rm', 'demo']);
        expect(await ok(admin, ['stack', 'ls', '--format', '{{.Name}}'])).not.toContain('demo');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('creates, lists and removes secrets, configs and networks', async () => {
      await ok(admin, ['secret', 'create', 'db-pass', '-'], 's3cret');
      expect(await ok(admin, ['secret', 'ls', '--format', '{{.Name}}'])).toContain('db-pass');
      expect(
        await ok(admin, [
          'secret',
          'inspect',
          'db-pass',
          '--format',
          '{{index .Spec.Labels "com.docker.ucp.access.label"}}',
        ]),
      ).toBe('/Shared/Private/admin');
      await ok(admin, ['secret', 'rm', 'db-pass']);
      expect(await ok(admin, ['secret', 'ls', '-q'])).toBe('');
      await ok(admin, ['config', 'create', 'app-conf', '-'], 'key=value');
      expect(await ok(admin, ['config', 'ls', '--format', '{{.Name}}'])).toContain('app-conf');
      await ok(admin, ['config', 'rm', 'app-conf']);
      expect(await ok(admin, ['network', 'ls', '--format', '{{.Name}}'])).toMatch(/host[\s\S]*none/);
      await ok(admin, ['network', 'create', '-d', 'overlay', 'orca-net']);
      expect(
        await ok(admin, ['network', 'ls', '--filter', 'name=orca-net', '--format', '{{.Name}} {{.Driver}}']),
      ).toBe('orca-net overlay');
      await ok(admin, ['network', 'rm', 'orca-net']);
    });

    it('answers bad input with Docker-style 4xx errors', async () => {
      const malformed = await raw(cluster, admin, 'POST', '/v1.41/containers/create', '{"Image": ');
      expect(malformed.status).toBe(400);
      expect((malformed.json as { message: string }).message).toMatch(/invalid JSON/);
      const wrongType = await raw(
        cluster,
        admin,
        'POST',
        '/v1.41/services/create',
        '{"Name":"x","Labels":5}',
      );
      expect(wrongType).toMatchObject({
        status: 400,
        json: { message: 'Labels must be an object of strings' },
      });
      const badEnv = await raw(
        cluster,
        admin,
        'POST',
        '/v1.41/containers/create',
        `{"Image":"${busybox}","Env":"x"}`,
      );
      expect(badEnv).toMatchObject({ status: 400, json: { message: 'Env must be an array of strings' } });
      const unknown = await docker(admin, ['inspect', '--type', 'container', 'no-such-container']);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('No such container: no-such-container');
      const unknownService = await raw(cluster, admin, 'GET', '/v1.41/services/no-such-service');
      expect(unknownService.status).toBe(404);
      expect(await raw(cluster, admin, 'GET', '/v1.41/no-such-endpoint')).toMatchObject({
        status: 404,
        json: { message: 'page not found' },
      });
      // A build without a context is bad input; BuildKit sessions are not served.
      const build = await raw(cluster, admin, 'POST', '/v1.41/build');
      expect(build).toMatchObject({
        status: 400,
        json: { message: 'a build context (a tar archive) is required' },
      });
      const session = await raw(cluster, admin, 'POST', '/v1.41/session');
      expect(session).toMatchObject({
        status: 501,
        json: { message: '/session is not supported through the UCP API' },
      });
      const exec = await raw(cluster, admin, 'POST', '/v1.41/exec/no-such-exec/start', '{}');
      expect(exec.status).toBe(404);
      expect(await raw(cluster, admin, 'GET', '/v1.41/containers/json?filters=notjson')).toMatchObject({
        status: 400,
      });
    });
  });

  describe('RBAC through the docker CLI', () => {
    const PASSWORD = 'front-door-pass';
    const users = ['alice', 'bob', 'carol', 'dave', 'eve'] as const;
    type User = (typeof users)[number];
    const bundles = {} as Record<User, string>;
    const ids = {} as Record<string, string>;
    const inDev = ['--label', 'com.docker.ucp.access.label=/Shared/dev'];
    const inProd = ['--label', 'com.docker.ucp.access.label=/Shared/prod'];
    const inFrontend = ['--label', 'com.docker.ucp.access.label=/Shared/dev/frontend'];
    const sleeper = (name: string, ...extra: string[]) => [
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      ...extra,
      busybox,
      'sleep',
      '600',
    ];

    async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const answer = await cluster.api(method, path, { body });
      if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
      return (answer.text ? JSON.parse(answer.text) : undefined) as T;
    }

    /** The docker CLI is refused with a 403 whose message names the permission and collection. */
    async function denied(
      user: User,
      args: string[],
      operation: string,
      collection: string,
      input?: string,
    ): Promise<void> {
      const run = await docker(bundles[user], args, input);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain(`access denied: no access to ${operation} on collection ${collection}`);
    }

    beforeAll(async () => {
      // One org with two teams; dave is only an org member, eve only in docker-datacenter.
      ids.acme = (await api<{ id: string }>('POST', '/accounts', { name: 'acme', isOrg: true })).id;
      for (const user of users)
        ids[user] = (await api<{ id: string }>('POST', '/accounts', { name: user, password: PASSWORD })).id;
      ids.devs = (await api<{ id: string }>('POST', '/accounts/acme/teams', { name: 'devs' })).id;
      ids.ops = (await api<{ id: string }>('POST', '/accounts/acme/teams', { name: 'ops' })).id;
      for (const user of ['alice', 'carol'])
        await api('PUT', `/accounts/acme/teams/devs/members/${user}`, {});
      await api('PUT', '/accounts/acme/teams/ops/members/bob', {});
      await api('PUT', '/accounts/acme/members/dave', {});
      ids.dev = (await api<{ id: string }>('POST', '/collections', { name: 'dev', parent_id: 'shared' })).id;
      ids.prod = (
        await api<{ id: string }>('POST', '/collections', { name: 'prod', parent_id: 'shared' })
      ).id;
      ids.frontend = (
        await api<{ id: string }>('POST', '/collections', { name: 'frontend', parent_id: ids.dev })
      ).id;
      ids.logviewer = (
        await api<{ id: string }>('POST', '/roles', {
          name: 'logviewer',
          operations: { Container: { 'Container View': [], 'Container Logs': [] } },
        })
      ).id;
      const grant = (subject: string, collection: string, role: string) =>
        api('PUT', `/collectionGrants/${ids[subject]}/${ids[collection]}/${role}`);
      await grant('devs', 'dev', 'restrictedcontrol'); // team grant
      await grant('ops', 'prod', 'fullcontrol'); // team grant
      await grant('ops', 'dev', 'viewonly');
      await grant('acme', 'prod', 'viewonly'); // org grant: every member
      await grant('alice', 'frontend', 'fullcontrol'); // user grant on a nested collection
      await grant('dave', 'dev', ids.logviewer); // custom role
      for (const user of users) bundles[user] = await cluster.bundle(user, PASSWORD);
      // Admin's container in /Shared/prod, to check who sees it.
      await ok(admin, sleeper('admin-prod', ...inProd));
    }, 120_000);

    it('allows and denies container operations per user, role and collection', async () => {
      // alice: Restricted Control on /Shared/dev (team devs).
      await ok(bundles.alice, sleeper('alice-dev', ...inDev));
      await denied('alice', sleeper('alice-prod', ...inProd), 'Container Create', '/Shared/prod');
      await denied(
        'alice',
        sleeper('alice-priv', ...inDev, '--privileged'),
        'Container Privileged',
        '/Shared/dev',
      );
      await denied(
        'alice',
        sleeper('alice-bind', ...inDev, '-v', '/tmp:/host'),
        'Container Bind Mount',
        '/Shared/dev',
      );
      await denied(
        'alice',
        sleeper('alice-caps', ...inDev, '--cap-add', 'NET_ADMIN'),
        'Container Capabilities',
        '/Shared/dev',
      );
      await denied(
        'alice',
        ['run', '-d', ...inDev, '--network', 'host', busybox, 'true'],
        'Container Host Network',
        '/Shared/dev',
      );
      await denied(
        'alice',
        ['run', '-d', ...inDev, '--pid', 'host', '--network', 'none', busybox, 'true'],
        'Container Host Network',
        '/Shared/dev',
      );
      await denied('alice', ['exec', 'alice-dev', 'true'], 'Container Exec', '/Shared/dev');
      // Full Control on the nested /Shared/dev/frontend (user grant) lifts those limits there.
      await ok(bundles.alice, sleeper('alice-front', ...inFrontend, '-v', '/tmp:/host:ro'));
      expect(await ok(bundles.alice, ['exec', 'alice-front', 'echo', 'exec ok'])).toBe('exec ok');
      // carol shares the team grant; bob only views /Shared/dev; dave's custom role reads logs.
      await ok(bundles.carol, ['restart', '-t', '1', 'alice-dev']);
      await denied('bob', ['stop', 'alice-dev'], 'Container Stop', '/Shared/dev');
      await ok(bundles.bob, ['logs', 'alice-dev']);
      await ok(bundles.dave, ['logs', 'alice-dev']);
      await denied('dave', ['stop', 'alice-dev'], 'Container Stop', '/Shared/dev');
      await denied('dave', sleeper('dave-dev', ...inDev), 'Container Create', '/Shared/dev');
      // The CLI inspects before it reads logs: eve is stopped at Container View.
      await denied('eve', ['logs', 'alice-dev'], 'Container View', '/Shared/dev');
      // bob: Full Control on /Shared/prod (team ops).
      await ok(bundles.bob, sleeper('bob-prod', ...inProd));
      expect(await ok(bundles.bob, ['exec', 'bob-prod', 'echo', 'bob was here'])).toBe('bob was here');
      await denied('carol', ['stop', 'bob-prod'], 'Container Stop', '/Shared/prod');
      // A collection that does not exist is refused, not created.
      const nowhere = await docker(
        bundles.alice,
        sleeper('alice-nowhere', '--label', 'com.docker.ucp.access.label=/Shared/nope'),
      );
      expect(nowhere.stderr).toContain('collection /Shared/nope does not exist');
    });

    it('filters docker ps to what each user may see', async () => {
      await ok(bundles.eve, sleeper('eve-private'));
      await ok(bundles.alice, sleeper('alice-private'));
      const seen = async (user: User) =>
        (await ok(bundles[user], ['ps', '--format', '{{.Names}}']))
          .split('\n')
          .filter(Boolean)
          .map((n) => n.split('/')[1])
          .sort();
      // alice: her dev/frontend/private containers and /Shared/prod by the org's View Only grant.
      expect(await seen('alice')).toEqual([
        'admin-prod',
        'alice-dev',
        'alice-front',
        'alice-private',
        'bob-prod',
      ]);
      // bob has Full Control of /Shared/prod: other users' containers there are hidden from him.
      expect(await seen('bob')).toEqual(['alice-dev', 'alice-front', 'bob-prod']);
      // eve sees none of anyone else's containers, private or not: in lists and in events.
      expect(await seen('eve')).toEqual(['eve-private']);
      const eveEvents = await ok(bundles.eve, [
        'events',
        '--since',
        String(Math.floor(Date.now() / 1000) - 120),
        '--until',
        String(Math.ceil(Date.now() / 1000) + 1),
        '--filter',
        'type=container',
        '--format',
        '{{.Actor.Attributes.name}}',
      ]);
      expect(new Set(eveEvents.split('\n'))).toEqual(new Set(['eve-private']));
      expect(
        await ok(bundles.eve, [
          'inspect',
          '-f',
          '{{index .Config.Labels "com.docker.ucp.access.label"}}',
          'eve-private',
        ]),
      ).toBe('/Shared/Private/eve');
      const hidden = await docker(bundles.eve, ['inspect', '--type', 'container', 'alice-private']);
      expect(hidden.stderr).toContain(
        'access denied: no access to Container View on collection /Shared/Private/alice',
      );
      // Non-admins schedule on workers (/Shared) only: the manager is in /System.
      const where = await ok(bundles.eve, ['ps', '--filter', 'name=eve-private', '--format', '{{.Names}}']);
      expect(workerNames).toContain(where.split('/')[0]);
      await denied(
        'eve',
        sleeper('eve-on-manager', '-e', `constraint:node==${managerName}`),
        'Node Schedule',
        '/System',
      );
      // Scheduler on /Shared (everyone's default) shows the workers, not the manager.
      expect((await ok(bundles.eve, ['node', 'ls', '-q'])).split('\n')).toHaveLength(2);
    });

    it('applies the same rules to services, secrets, networks and volumes', async () => {
      await ok(bundles.alice, [
        'service',
        'create',
        '--detach',
        '--name',
        'alice-svc',
        ...inDev,
        busybox,
        'sleep',
        '600',
      ]);
      await denied(
        'alice',
        ['service', 'create', '--detach', '--name', 'alice-prod-svc', ...inProd, busybox, 'sleep', '600'],
        'Service Create',
        '/Shared/prod',
      );
      expect(
        await ok(bundles.alice, [
          'service',
          'inspect',
          'alice-svc',
          '--format',
          '{{index .Spec.TaskTemplate.ContainerSpec.Labels "com.docker.ucp.access.label"}}',
        ]),
      ).toBe('/Shared/dev');
      expect(await ok(bundles.bob, ['service', 'ls', '--format', '{{.Name}}'])).toBe('alice-svc');
      expect(await ok(bundles.eve, ['service', 'ls', '-q'])).toBe('');
      await denied('bob', ['service', 'rm', 'alice-svc'], 'Service Delete', '/Shared/dev');
      await ok(bundles.bob, ['secret', 'create', ...inProd, 'prod-db', '-'], 'prod-secret');
      await denied(
        'alice',
        ['secret', 'create', ...inProd, 'alice-db', '-'],
        'Secret Create',
        '/Shared/prod',
        'alice-secret',
      );
      expect(await ok(bundles.alice, ['secret', 'ls', '--format', '{{.Name}}'])).toBe('prod-db');
      // Seeing a secret is not using it: a service may reference only secrets its creator may use.
      await denied(
        'alice',
        ['service', 'create', '--detach', ...inDev, '--secret', 'prod-db', busybox, 'sleep', '600'],
        'Secret Use',
        '/Shared/prod',
      );
      expect(await ok(bundles.eve, ['secret', 'ls', '-q'])).toBe('');
      await denied(
        'alice',
        ['network', 'create', '-d', 'overlay', ...inProd, 'alice-net'],
        'Network Create',
        '/Shared/prod',
      );
      // Volumes are node-local and in collections too: seeing and mounting them are decided.
      const worker = workerNames[0];
      await ok(bundles.bob, ['volume', 'create', ...inProd, `${worker}/prod-data`]);
      expect(await ok(bundles.bob, ['volume', 'ls', '--format', '{{.Name}}'])).toBe(`${worker}/prod-data`);
      expect(await ok(bundles.eve, ['volume', 'ls', '-q'])).toBe('');
      await denied(
        'eve',
        sleeper('eve-steals', '-v', 'prod-data:/data', '-e', `constraint:node==${worker}`),
        'Volume Mount',
        '/Shared/prod',
      );
      await ok(bundles.bob, ['volume', 'rm', `${worker}/prod-data`]);
      await ok(bundles.alice, ['service', 'rm', 'alice-svc']);
      await ok(bundles.bob, ['secret', 'rm', 'prod-db']);
    });

    it('refuses a revoked bundle, a deactivated account and a foreign CA', async () => {
      expect((await docker(bundles.carol, ['ps', '-q'])).code).toBe(0);
      // A connection that stays open is cut off too, at its next request.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const onConnection = () =>
        new Promise<{ status: number; reused: boolean; text: string }>((resolve, reject) => {
          const req = request(
            `${cluster.url}/v1.41/containers/json`,
            {
              agent,
              ca: readFileSync(join(bundles.carol, 'ca.pem')),
              cert: readFileSync(join(bundles.carol, 'cert.pem')),
              key: readFileSync(join(bundles.carol, 'key.pem')),
            },
            (res) => {
              let text = '';
              res.on('data', (c: Buffer) => (text += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, text }));
            },
          );
          req.on('error', reject);
          req.end();
        });
      expect((await onConnection()).status).toBe(200);
      const keys = await api<{ accountPublicKeys: { id: string }[] }>('GET', '/accounts/carol/publicKeys');
      for (const key of keys.accountPublicKeys) await api('DELETE', `/accounts/carol/publicKeys/${key.id}`);
      const cutOff = await onConnection();
      agent.destroy();
      expect(cutOff).toEqual({
        status: 401,
        reused: true,
        text: '{"message":"client certificate is not registered to an active account"}',
      });
      const revoked = await docker(bundles.carol, ['ps']);
      expect(revoked.code).not.toBe(0);
      expect(revoked.stderr).toContain('client certificate is not registered to an active account');

      await api('PATCH', '/accounts/dave', { isActive: false });
      const inactive = await docker(bundles.dave, ['ps']);
      expect(inactive.code).not.toBe(0);
      expect(inactive.stderr).toContain('client certificate is not registered to an active account');

      // A CA with the very name of the client root CA (so the CLI presents the certificate), and a
      // certificate for alice from it: well-formed, but not ours.
      const foreign = mkdtempSync(join(tmpdir(), 'orca-foreign-'));
      try {
        cpSync(bundles.alice, foreign, { recursive: true });
        const ca = await CertificateAuthority.load(await createRootCa({ commonName: CLIENT_ROOT_CN }));
        const keys = await generateKeyPair();
        const { certPem } = await ca.issueClientCertificate({
          publicKeyPem: keys.publicKeyPem,
          commonName: 'alice',
          instanceId: 'foreign',
        });
        writeFileSync(join(foreign, 'cert.pem'), certPem);
        writeFileSync(join(foreign, 'key.pem'), keys.privateKeyPem, { mode: 0o600 });
        const refused = await docker(foreign, ['ps']);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain('client certificate not issued by the client root CA');
      } finally {
        rmSync(foreign, { recursive: true, force: true });
      }
      // Bearer tokens work on the front door too.
      const login = await cluster.api('POST', '/auth/login', {
        body: { username: 'eve', password: PASSWORD },
      });
      const token = (JSON.parse(login.text) as { auth_token: string }).auth_token;
      const listed = await cluster.api('GET', '/v1.41/containers/json', { token });
      expect(listed.status).toBe(200);
      expect((JSON.parse(listed.text) as { Names: string[] }[]).map((c) => c.Names[0].split('/')[2])).toEqual(
        ['eve-private'],
      );
    });
  });
});
