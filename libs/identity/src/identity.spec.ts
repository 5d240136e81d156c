import { ApiError } from '@orca/api';
import { CertificateAuthorityService } from '@orca/cluster';
import { createRootCa, generateKeyPair, CertificateAuthority } from '@orca/pki';
import { EmbeddedStore } from '@orca/store';
import JSZip from 'jszip';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAdmin } from './accounts.js';
import { Authenticator } from './authenticator.js';
import { createClientBundle } from './bundle.js';
import { DEFAULT_ORG, Directory, isValidName, paginate } from './directory.js';
import { LOCKOUT, SESSION_LIMITS, Sessions } from './sessions.js';
import { parseUcpConfigToml, readUcpConfigRevision, writeUcpConfig } from '@orca/ucp-config';

describe('identity', () => {
  let dir: string;
  let store: EmbeddedStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-identity-unit-'));
    store = new EmbeddedStore({ dir });
    await ensureAdmin(store, 'admin-password');
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('validates names so they cannot leave their key prefix', () => {
    for (const ok of ['alice', 'a', 'docker-datacenter', 'a.b_c-d']) expect(isValidName(ok)).toBe(true);
    for (const bad of ['', '..', '../x', 'a/b', 'a..b', '-a', 'a-', 'x'.repeat(101), 'a b', 7])
      expect(isValidName(bad)).toBe(false);
  });

  it('pages with an inclusive start marker', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    expect(paginate(items, (x) => x, { limit: 2 })).toEqual({ items: ['a', 'b'], nextPageStart: 'c' });
    expect(paginate(items, (x) => x, { limit: 2, start: 'c' })).toEqual({
      items: ['c', 'd'],
      nextPageStart: 'e',
    });
    expect(paginate(items, (x) => x, { limit: 2, start: 'e' })).toEqual({ items: ['e'], nextPageStart: '' });
    expect(paginate(items, (x) => x, { start: 'bb' }).items).toEqual(['c', 'd', 'e']);
    expect(() => paginate(items, (x) => x, { limit: 'x' })).toThrow(ApiError);
  });

  it('creates users in the default org, and teams whose members join the org', async () => {
    const directory = new Directory(store);
    await directory.ensureDefaultOrg();
    const alice = await directory.create({ name: 'alice', password: 'password-1' });
    expect(alice).toMatchObject({ name: 'alice', isOrg: false, isActive: true, isAdmin: false });
    expect((await directory.orgsOf('alice', {})).memberOrgs[0].org.name).toBe(DEFAULT_ORG);
    await expect(directory.create({ name: 'alice', password: 'password-1' })).rejects.toMatchObject({
      status: 409,
    });
    await expect(directory.create({ name: 'bob' })).rejects.toMatchObject({ status: 400 });
    await directory.create({ name: 'eng', isOrg: true });
    await directory.createTeam('eng', { name: 'ops' });
    await directory.setTeamMember('eng', 'ops', alice.id, {});
    expect((await directory.orgMember('eng', 'alice')).isAdmin).toBe(false);
    expect((await directory.account('eng')).membersCount).toBe(1);
    expect((await directory.team('eng', 'ops')).membersCount).toBe(1);
    // The last active admin can be neither demoted, deactivated nor deleted.
    await expect(directory.update('admin', { isAdmin: false })).rejects.toMatchObject({ status: 409 });
    await expect(directory.update('admin', { isActive: false })).rejects.toMatchObject({ status: 409 });
    await expect(directory.remove('admin')).rejects.toMatchObject({ status: 409 });
    await expect(directory.update('alice', { isAdmin: 'yes' })).rejects.toMatchObject({ status: 400 });
    await directory.remove('alice');
    expect((await directory.team('eng', 'ops')).membersCount).toBe(0);
    await expect(directory.account(alice.id)).rejects.toMatchObject({ status: 404 });
  });

  it('keeps at most perUserLimit sessions, dropping the least recently used, and expires them', async () => {
    let now = 1_000_000;
    const sessions = new Sessions(store, () => now);
    const admin = await new Directory(store).record('admin');
    const tokens: string[] = [];
    for (let i = 0; i < SESSION_LIMITS.perUserLimit; i++) {
      tokens.push(await sessions.create(admin));
      now += 1000;
    }
    await sessions.resolve(tokens[0]); // now the most recently used
    now += 1000;
    await sessions.create(admin);
    expect(await sessions.resolve(tokens[0])).toBeDefined();
    expect(await sessions.resolve(tokens[1])).toBeUndefined();
    // Used inside the renewal threshold, a session is extended; unused past its lifetime, it is gone.
    now += SESSION_LIMITS.lifetimeMs - SESSION_LIMITS.renewalThresholdMs + 1;
    const renewed = await sessions.resolve(tokens[0]);
    expect(renewed?.expiresAt).toBe(now + SESSION_LIMITS.lifetimeMs);
    now += SESSION_LIMITS.lifetimeMs - 1;
    expect(await sessions.resolve(tokens[0])).toBeDefined();
    expect(await sessions.resolve(tokens[2])).toBeUndefined();
  });

  it('follows [auth.sessions] of the stored UCP configuration without a restart', async () => {
    let now = 2_000_000;
    const sessions = new Sessions(store, () => now);
    const admin = await new Directory(store).record('admin');
    const configure = async (toml: string) => {
      const { modRevision } = await readUcpConfigRevision(store);
      await writeUcpConfig(store, parseUcpConfigToml(toml), modRevision);
    };
    await configure(
      '[auth.sessions]\nlifetime_minutes = 30\nrenewal_threshold_minutes = 0\nper_user_limit = 2',
    );
    const a = await sessions.create(admin);
    now += 1000;
    const b = await sessions.create(admin);
    now += 1000;
    await sessions.create(admin);
    expect(await sessions.resolve(a)).toBeUndefined(); // the third session pushed out the LRU one
    const bRecord = await sessions.resolve(b);
    expect(bRecord?.expiresAt).toBe(now - 1000 + 30 * 60_000);
    // Renewal disabled: used just before expiry, it is not extended.
    now += 30 * 60_000 - 1001;
    expect((await sessions.resolve(b))?.expiresAt).toBe(bRecord?.expiresAt);
    now += 2;
    expect(await sessions.resolve(b)).toBeUndefined();
    // 0: no per-user limit.
    await configure('[auth.sessions]\nper_user_limit = 0');
    const many: string[] = [];
    for (let i = 0; i < 7; i++) many.push(await sessions.create(admin));
    for (const token of many) expect(await sessions.resolve(token)).toBeDefined();
    // A shorter lifetime applies to sessions made under the longer one.
    await configure(
      '[auth.sessions]\nlifetime_minutes = 10\nrenewal_threshold_minutes = 0\nper_user_limit = 0',
    );
    now += 10 * 60_000 + 1;
    expect((await sessions.resolve(many[0]))?.expiresAt).toBe(now + 10 * 60_000);
  });

  it('locks an account after repeated failures and unlocks it later', async () => {
    let now = 5_000_000;
    const cas = new CertificateAuthorityService(store, randomBytes(32).toString('base64'));
    const auth = new Authenticator(store, cas, undefined, () => now);
    for (let i = 0; i < LOCKOUT.maxFailures; i++)
      await expect(auth.login('admin', 'wrong')).rejects.toMatchObject({ status: 401 });
    await expect(auth.login('admin', 'admin-password')).rejects.toMatchObject({ status: 429 });
    now += LOCKOUT.lockMs + 1;
    await expect(auth.login('admin', 'admin-password')).resolves.toMatchObject({ name: 'admin' });
  });

  it('authenticates bundle certificates with registered keys only', async () => {
    const cas = new CertificateAuthorityService(store, randomBytes(32).toString('base64'));
    await cas.bootstrap(90 * 24 * 3_600_000);
    const auth = new Authenticator(store, cas);
    const bundle = await createClientBundle(auth.directory, cas, {
      user: 'admin',
      host: '127.0.0.1:8443',
      label: 'x',
    });
    const zip = await JSZip.loadAsync(bundle.zip);
    const certPem = await zip.file('cert.pem')!.async('string');
    await expect(auth.certificatePrincipal(certPem)).resolves.toMatchObject({
      name: 'admin',
      via: 'certificate',
    });
    expect(await zip.file('meta.json')!.async('string')).toContain('tcp://127.0.0.1:8443');

    // Same subject, other CA: refused.
    const otherCa = new CertificateAuthority(await createRootCa({ commonName: 'UCP Client Root CA' }));
    const { publicKeyPem } = await generateKeyPair();
    const foreign = await otherCa.issueClientCertificate({
      publicKeyPem,
      commonName: 'admin',
      instanceId: 'x',
    });
    await expect(auth.certificatePrincipal(foreign.certPem)).rejects.toMatchObject({ status: 401 });

    await auth.directory.removePublicKey('admin', bundle.keyId);
    await expect(auth.certificatePrincipal(certPem)).rejects.toMatchObject({ status: 401 });
  });
});
