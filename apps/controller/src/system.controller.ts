import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { CertificateAuthorityService, NodeService } from '@orca/cluster';
import type { Store } from '@orca/store';
import type { Response } from 'express';
import { arch, platform, release } from 'node:os';
import { ORCA_VERSION, UCP_API_VERSION } from './version.js';
import { STORE } from './tokens.js';

@Controller()
export class SystemController {
  constructor(
    @Inject(STORE) private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly nodes: NodeService,
  ) {}

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
    if (problems.length > 0) response.status(500).send(problems.join('; '));
    else response.status(200).send('OK');
  }

  @Get('version')
  version(): Record<string, unknown> {
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
      ApiVersion: UCP_API_VERSION,
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
    const [cluster, nodes] = await Promise.all([this.cas.cluster(), this.nodes.list()]);
    const managers = nodes.filter((n) => n.role === 'swarm-manager');
    return {
      ID: cluster.instanceId,
      Name: 'ucp',
      ServerVersion: `ucp/${ORCA_VERSION}`,
      OperatingSystem: 'orca',
      Nodes: nodes.length,
      SystemStatus: [
        ['Role', 'primary'],
        ['Strategy', 'spread'],
        ['Nodes', String(nodes.length)],
        ...nodes.map((n) => [` ${n.hostname}`, n.address]),
        ...nodes.flatMap((n) => [
          ['  └ ID', n.id],
          ['  └ Status', n.status === 'Ready' ? 'Healthy' : 'Unhealthy'],
        ]),
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
