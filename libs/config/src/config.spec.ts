import { ConfigError, kubeComponentsFrom, loadControllerConfig, parseDuration } from './config.js';

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

  it('runs Kubernetes by default on UCP ports, and not when told or given another apiserver', () => {
    expect(kubeComponentsFrom({})).toEqual({
      enabled: true,
      apiserverPort: 12388,
      kvClientPort: 12379,
      kvPeerPort: 12380,
      webhookPort: 12389,
    });
    expect(kubeComponentsFrom({ ORCA_KUBE_WEBHOOK_PORT: '22389' }).webhookPort).toBe(22389);
    expect(kubeComponentsFrom({ ORCA_KUBERNETES: 'false' }).enabled).toBe(false);
    expect(kubeComponentsFrom({ ORCA_KUBE_APISERVER: 'https://127.0.0.1:6443' }).enabled).toBe(false);
    expect(kubeComponentsFrom({ ORCA_KUBE_APISERVER_PORT: '22388' }).apiserverPort).toBe(22388);
    expect(() => kubeComponentsFrom({ ORCA_KUBERNETES: 'yes' })).toThrow('ORCA_KUBERNETES');
    expect(() => kubeComponentsFrom({ ORCA_KUBE_KV_PORT: '0' })).toThrow('ORCA_KUBE_KV_PORT');
    // The front door's settings apply without ORCA_KUBE_APISERVER too.
    expect(loadControllerConfig({ ORCA_KUBE_PORT: '16443' }).kubeFrontDoor).toEqual({
      port: 16443,
      authorization: 'webhook',
    });
  });

  it("takes the local engine's socket as a path or unix:// URL, and refuses anything else", () => {
    expect(loadControllerConfig({}).localEngineSocket).toBeUndefined();
    expect(loadControllerConfig({ ORCA_LOCAL_ENGINE: '/var/run/docker.sock' }).localEngineSocket).toBe(
      '/var/run/docker.sock',
    );
    expect(loadControllerConfig({ ORCA_LOCAL_ENGINE: 'unix:///run/engine.sock' }).localEngineSocket).toBe(
      '/run/engine.sock',
    );
    expect(() => loadControllerConfig({ ORCA_LOCAL_ENGINE: 'tcp://127.0.0.1:2375' })).toThrow(
      'invalid setting ORCA_LOCAL_ENGINE',
    );
  });
});
