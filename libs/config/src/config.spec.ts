import { ConfigError, loadControllerConfig, parseDuration } from './config.js';

describe('controller configuration', () => {
  it('has the documented defaults', () => {
    const config = loadControllerConfig({});
    expect(config.port).toBe(8443);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir.endsWith('/certs')).toBe(true);
    expect(config.store).toEqual({ kind: 'embedded', dir: `${config.dataDir}/store` });
    expect(config.nodeCertValidityMs).toBe(90 * 24 * 3600 * 1000);
  });

  it.each([
    [{ ORCA_PORT: 'abc' }, 'ORCA_PORT'],
    [{ ORCA_PORT: '70000' }, 'ORCA_PORT'],
    [{ ORCA_NODE_CERT_EXPIRY: '30m' }, 'ORCA_NODE_CERT_EXPIRY'],
    [{ ORCA_NODE_CERT_EXPIRY: 'soon' }, 'ORCA_NODE_CERT_EXPIRY'],
    [{ ORCA_ETCD_ENDPOINTS: 'not a url' }, 'ORCA_ETCD_ENDPOINTS'],
    [{ ORCA_ETCD_ENDPOINTS: 'https://127.0.0.1:2379' }, 'ORCA_ETCD_CA_FILE'],
    [{ ORCA_ADMIN_PASSWORD: 'short' }, 'ORCA_ADMIN_PASSWORD'],
  ])('refuses %j naming %s', (env, setting) => {
    expect(() => loadControllerConfig(env)).toThrow(ConfigError);
    expect(() => loadControllerConfig(env)).toThrow(setting);
  });

  it('parses Go-style durations', () => {
    expect(parseDuration('x', '2160h')).toBe(2160 * 3600 * 1000);
    expect(parseDuration('x', '1h30m')).toBe(90 * 60 * 1000);
    expect(parseDuration('x', '500ms')).toBe(500);
  });
});
