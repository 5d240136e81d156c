import { EmbeddedStore } from '@orca/store';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureIssuer, readIssuer, setIssuer, validateIssuer } from './issuer.js';

describe('the cluster OIDC issuer', () => {
  let dir: string;
  let store: EmbeddedStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orca-oidc-issuer-'));
    store = new EmbeddedStore({ dir });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts https URLs at /oidc and refuses what the provider or Kubernetes cannot use', () => {
    expect(validateIssuer('https://127.0.0.1:8443/oidc')).toBe('https://127.0.0.1:8443/oidc');
    expect(validateIssuer('https://LB.example.com:443/oidc')).toBe('https://lb.example.com/oidc');
    expect(validateIssuer('https://[::1]:8443/oidc')).toBe('https://[::1]:8443/oidc');
    for (const bad of [
      'http://127.0.0.1:8443/oidc',
      'https://127.0.0.1:8443/',
      'https://127.0.0.1:8443/oidc/',
      'https://127.0.0.1:8443/other',
      'https://127.0.0.1:8443/oidc?x=1',
      'https://127.0.0.1:8443/oidc#f',
      'https://user:pw@127.0.0.1:8443/oidc',
      'not a url',
      '',
      42,
      undefined,
    ]) {
      let error: unknown;
      try {
        validateIssuer(bad);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ status: 400, code: 'INVALID_ISSUER' });
    }
  });

  it('is set once by the first controller, kept across restarts, and changed only by setIssuer', async () => {
    expect(await readIssuer(store)).toBeUndefined();
    const first = await ensureIssuer(store, 'https://127.0.0.1:8443/oidc');
    expect(first.issuer).toBe('https://127.0.0.1:8443/oidc');
    // A second manager (or a restart with another address) finds the cluster's issuer.
    expect((await ensureIssuer(store, 'https://127.0.0.2:9443/oidc')).issuer).toBe(first.issuer);
    await setIssuer(store, 'https://managers.example.com/oidc');
    expect((await ensureIssuer(store, 'https://127.0.0.1:8443/oidc')).issuer).toBe(
      'https://managers.example.com/oidc',
    );
    await expect(setIssuer(store, 'http://managers.example.com/oidc')).rejects.toMatchObject({ status: 400 });
    expect((await readIssuer(store))!.issuer).toBe('https://managers.example.com/oidc');
  });
});
