import { Controller, Get, Header, Inject, Optional, Res } from '@nestjs/common';
import { CertificateAuthorityService, NodeService, PROXY_PORT } from '@orca/cluster';
import type { Store } from '@orca/store';
import type { Response } from 'express';
import { arch, platform, release } from 'node:os';
import { ORCA_VERSION, UCP_API_VERSION } from './version.js';
import { STORE } from './tokens.js';
import { FrontDoorService } from './frontdoor/frontdoor.service.js';

@Controller()
export class SystemController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly nodes: NodeService,
    @Optional() private readonly frontDoor?: FrontDoorService,
  ) {}

  /** The Docker API version clients should speak: the engines' (so the docker CLI negotiates to it). */
  private async apiVersion(): Promise<string> {
    // Health checks must not wait on engines: at most a second, then UCP's own API version.
    const engines = this.frontDoor?.frontDoor.engineApiVersion().catch(() => undefined);
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000).unref());
    return (await Promise.race([engines, timeout])) ?? UCP_API_VERSION;
  }

  /** 200 "OK" when the store and the CA answer; 500 with the reason otherwise (UCP's /_ping). */
  @Get('_ping')
  @Header('Content-Type', 'text/plain; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  async ping(@Res() response: Response): Promise<void> {
    const problems: string[] = [];
    try {
      await this.store.health();
    } catch (error) {
      problems.push(`store: ${(error as Error).message}`);
    }
    if (problems.length === 0) {
      try {
        await this.cas.clusterBundle();
      } catch (error) {
        problems.push(`cluster CA: ${(error as Error).message}`);
      }
    }
    // What the docker CLI reads from /_ping (GET or HEAD) to negotiate and to enable swarm commands.
    response.setHeader('API-Version', await this.apiVersion());
    response.setHeader('OSType', 'linux');
    response.setHeader('Docker-Experimental', 'false');
    response.setHeader('Swarm', 'active/manager');
    if (problems.length > 0) response.status(500).send(problems.join('; '));
    else response.status(200).send('OK');
  }

  @Get('version')
  async version(): Promise<Record<string, unknown>> {
    const apiVersion = await this.apiVersion();
    const version = `ucp/${ORCA_VERSION}`;
    return {
      Platform: { Name: 'Docker Enterprise Edition (orca)' },
      Components: [
        {
          Name: 'Universal Control Plane',
          Version: ORCA_VERSION,
          Details: { ApiVersion: UCP_API_VERSION, Arch: arch() },
        },
      ],
      Version: version,
      ApiVersion: apiVersion,
      MinAPIVersion: '1.12',
      GitCommit: 'orca',
      GoVersion: `node${process.versions.node}`,
      Os: platform(),
      Arch: arch() === 'x64' ? 'amd64' : arch(),
      KernelVersion: release(),
      BuildTime: '',
    };
  }

  @Get('info')
  async info(): Promise<Record<string, unknown>> {
    const [cluster, nodes, engines] = await Promise.all([
      this.cas.cluster(),
      this.nodes.list(),
      this.frontDoor?.frontDoor.engineInfos().catch(() => []) ?? [],
    ]);
    const managers = nodes.filter((n) => n.role === 'swarm-manager');
    // The engines behind the front door, summed as classic Swarm's /info did.
    const engineOf = new Map(engines.map((e) => [e.node.id, e]));
    const sum = (field: string) =>
      engines.reduce(
        (total, e) => total + (typeof e.info?.[field] === 'number' ? (e.info[field] as number) : 0),
        0,
      );
    const first = engines.find((e) => e.info)?.info;
    return {
      ID: cluster.instanceId,
      Name: 'ucp',
      ServerVersion: `ucp/${ORCA_VERSION}`,
      OperatingSystem: 'orca',
      OSType: 'linux',
      Architecture:
        typeof first?.Architecture === 'string' ? first.Architecture : arch() === 'x64' ? 'x86_64' : arch(),
      KernelVersion: release(),
      Containers: sum('Containers'),
      ContainersRunning: sum('ContainersRunning'),
      ContainersPaused: sum('ContainersPaused'),
      ContainersStopped: sum('ContainersStopped'),
      Images: sum('Images'),
      NCPU: sum('NCPU'),
      MemTotal: sum('MemTotal'),
      Nodes: nodes.length,
      SystemStatus: [
        ['Role', 'primary'],
        ['Strategy', 'spread'],
        ['Filters', 'health, port, containerslots, dependency, affinity, constraint, whitelist'],
        ['Nodes', String(nodes.length)],
        ...nodes.flatMap((n) => {
          const engine = engineOf.get(n.id);
          const info = engine?.info;
          return [
            [` ${engine?.node.name ?? n.hostname}`, `${n.address}:${PROXY_PORT}`],
            ['  └ ID', n.id],
            ['  └ Status', n.status === 'Ready' ? 'Healthy' : 'Unhealthy'],
            ...(info
              ? [
                  [
                    '  └ Containers',
                    `${String(info.Containers)} (${String(info.ContainersRunning)} Running, ${String(info.ContainersPaused)} Paused, ${String(info.ContainersStopped)} Stopped)`,
                  ],
                  ['  └ ServerVersion', String(info.ServerVersion)],
                ]
              : []),
          ];
        }),
      ],
      Swarm: {
        NodeID: '',
        LocalNodeState: 'active',
        ControlAvailable: true,
        Nodes: nodes.length,
        Managers: managers.length,
        Cluster: { ID: cluster.clusterId },
        RemoteManagers: managers.map((m) => ({ NodeID: m.id, Addr: m.address })),
      },
    };
  }
}
