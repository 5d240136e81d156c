import { ApiError } from '@orca/api';
import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultUcpConfig,
  parseUcpConfigToml,
  readUcpConfig,
  readUcpConfigRevision,
  renderUcpConfigToml,
  watchUcpConfig,
  writeUcpConfig,
  type UcpConfig,
} from './index.js';

function rejection(toml: string): { key?: string; message: string } {
  try {
    parseUcpConfigToml(toml);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    const api = error as ApiError;
    expect(api.status).toBe(400);
    return { key: (api.detail as { key?: string } | undefined)?.key, message: api.message };
  }
  throw new Error(`accepted: ${toml}`);
}

describe('UCP configuration file', () => {
  it('has UCP 3.0 defaults', () => {
    const config = defaultUcpConfig();
    expect(config.auth).toEqual({
      backend: 'managed',
      default_new_user_role: 'restrictedcontrol',
      sessions: { lifetime_minutes: 4320, renewal_threshold_minutes: 1440, per_user_limit: 5 },
    });
    expect(config.scheduling_configuration).toEqual({
      enable_admin_ucp_scheduling: true,
      enable_user_ucp_scheduling: false,
    });
    expect(config.cluster_config).toMatchObject({
      controller_port: 443,
      swarm_port: 2376,
      kv_timeout: 5000,
      kv_snapshot_count: 20000,
    });
    expect(config.registries).toEqual([]);
  });

  it('round-trips through TOML, filling omitted keys with defaults', () => {
    const config = parseUcpConfigToml(`
[auth.sessions]
lifetime_minutes = 60
per_user_limit = 0

[[registries]]
host_address = "dtr.example.com"
service_id = "abc"

[cluster_config]
dns = ["127.0.0.53"]
`);
    // An omitted renewal threshold follows a short lifetime (at most lifetime - 5).
    expect(config.auth.sessions).toEqual({
      lifetime_minutes: 60,
      renewal_threshold_minutes: 55,
      per_user_limit: 0,
    });
    expect(config.registries).toEqual([
      { host_address: 'dtr.example.com', service_id: 'abc', ca_bundle: '' },
    ]);
    const again = parseUcpConfigToml(renderUcpConfigToml(config));
    expect(again).toEqual(config);
    expect(renderUcpConfigToml(defaultUcpConfig())).toContain('[auth.sessions]\nlifetime_minutes = 4320');
  });

  it.each([
    ['[auth]\nbogus = 1', 'auth.bogus'],
    ['[nope]\na = 1', 'nope'],
    ['[auth.sessions]\nlifetime_minutes = "72h"', 'auth.sessions.lifetime_minutes'],
    ['[auth.sessions]\nlifetime_minutes = 5', 'auth.sessions.lifetime_minutes'],
    ['[auth.sessions]\nlifetime_minutes = 60.5', 'auth.sessions.lifetime_minutes'],
    ['[auth.sessions]\nper_user_limit = -1', 'auth.sessions.per_user_limit'],
    [
      '[auth.sessions]\nlifetime_minutes = 60\nrenewal_threshold_minutes = 56',
      'auth.sessions.renewal_threshold_minutes',
    ],
    ['[auth]\ndefault_new_user_role = "root"', 'auth.default_new_user_role'],
    ['[auth]\nbackend = "ldap"', 'auth.backend'],
    [
      '[scheduling_configuration]\nenable_user_ucp_scheduling = "yes"',
      'scheduling_configuration.enable_user_ucp_scheduling',
    ],
    ['[cluster_config]\ncontroller_port = 70000', 'cluster_config.controller_port'],
    ['[cluster_config]\ndns = "1.1.1.1"', 'cluster_config.dns'],
    ['[cluster_config]\ndns = [1]', 'cluster_config.dns'],
    ['[cluster_config]\nmetrics_retention_time = "a day"', 'cluster_config.metrics_retention_time'],
    ['[log_configuration]\nlevel = "LOUD"', 'log_configuration.level'],
    ['[[registries]]\nhost = "x"', 'registries[0].host'],
    ['registries = 1', 'registries'],
    ['auth = 1', 'auth'],
    [
      '[trust_configuration]\nrequire_content_trust = 2020-01-01',
      'trust_configuration.require_content_trust',
    ],
  ])('refuses %j naming %s', (toml, key) => {
    const { key: named, message } = rejection(toml);
    expect(named).toBe(key);
    expect(message.startsWith(`${key}: `)).toBe(true);
  });

  it('refuses malformed TOML with the line, without echoing the document', () => {
    const { message } = rejection('[auth.ldap]\nreader_password = "s3cr3t-value\nx = ');
    expect(message).toMatch(/^invalid TOML at line \d+, column \d+/);
    expect(message).not.toContain('s3cr3t');
    expect(rejection('__proto__ = 1').message).toMatch(/invalid TOML/);
  });
});

describe('UCP configuration in the store', () => {
  let dir: string;
  let store: EmbeddedStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-ucp-config-'));
    store = new EmbeddedStore({ dir });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads defaults, writes with compare-and-swap, and refuses a stale writer', async () => {
    expect(await readUcpConfig(store)).toEqual(defaultUcpConfig());
    const first = await readUcpConfigRevision(store);
    expect(first.modRevision).toBe(0);
    const changed = parseUcpConfigToml('[auth.sessions]\nper_user_limit = 2');
    await writeUcpConfig(store, changed, first.modRevision);
    expect((await readUcpConfig(store)).auth.sessions.per_user_limit).toBe(2);
    // A writer that read before the change loses.
    await expect(writeUcpConfig(store, defaultUcpConfig(), first.modRevision)).rejects.toMatchObject({
      status: 409,
    });
    const second = await readUcpConfigRevision(store);
    await writeUcpConfig(store, defaultUcpConfig(), second.modRevision);
    expect((await readUcpConfig(store)).auth.sessions.per_user_limit).toBe(5);
  });

  it('keeps a watched copy current', async () => {
    const seen: UcpConfig[] = [];
    const watcher = await watchUcpConfig(store, (c) => seen.push(c));
    try {
      expect(watcher.current().scheduling_configuration.enable_user_ucp_scheduling).toBe(false);
      const { modRevision } = await readUcpConfigRevision(store);
      await writeUcpConfig(
        store,
        parseUcpConfigToml('[scheduling_configuration]\nenable_user_ucp_scheduling = true'),
        modRevision,
      );
      for (let i = 0; i < 100 && !watcher.current().scheduling_configuration.enable_user_ucp_scheduling; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(watcher.current().scheduling_configuration.enable_user_ucp_scheduling).toBe(true);
      expect(seen.length).toBeGreaterThanOrEqual(2);
    } finally {
      await watcher.close();
    }
  });
});
