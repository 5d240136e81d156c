import { decideRepositoryAccess, type AccessFacts } from './access.js';

const alice = { id: 'u1', name: 'alice', isAdmin: false };
const admin = { id: 'u0', name: 'admin', isAdmin: true };
const base: AccessFacts = {
  subject: alice,
  namespace: { name: 'eng', isOrg: true },
  repository: { visibility: 'private' },
  isOrgAdmin: false,
  teamLevels: [],
  createRepositoryOnPush: false,
};
const actions = (facts: Partial<AccessFacts>) => decideRepositoryAccess({ ...base, ...facts }).actions;

describe('the repository permission decision', () => {
  it('gives owners, org admins and DTR admins everything', () => {
    expect(actions({ namespace: { name: 'alice', isOrg: false } })).toEqual(['pull', 'push', 'delete', '*']);
    expect(actions({ isOrgAdmin: true })).toEqual(['pull', 'push', 'delete', '*']);
    expect(actions({ subject: admin })).toEqual(['pull', 'push', 'delete', '*']);
  });

  it('maps team levels to actions, the highest winning', () => {
    expect(actions({ teamLevels: ['read-only'] })).toEqual(['pull']);
    expect(actions({ teamLevels: ['read-only', 'read-write'] })).toEqual(['pull', 'push', 'delete']);
    expect(actions({ teamLevels: ['admin', 'read-only'] })).toEqual(['pull', 'push', 'delete', '*']);
  });

  it('lets everyone pull a public repository and nobody see a private one without access', () => {
    expect(actions({ repository: { visibility: 'public' } })).toEqual(['pull']);
    expect(actions({ subject: undefined, repository: { visibility: 'public' } })).toEqual(['pull']);
    expect(actions({})).toEqual([]);
    expect(actions({ subject: undefined })).toEqual([]);
    expect(actions({ subject: undefined, teamLevels: ['admin'] })).toEqual([]);
  });

  it("does not let another user's namespace be used", () => {
    expect(actions({ namespace: { name: 'bob', isOrg: false } })).toEqual([]);
    expect(actions({ namespace: undefined, subject: admin })).toEqual([]);
  });

  it('creates on push only for namespace admins, and only when the setting is on', () => {
    const missing = { repository: undefined, namespace: { name: 'alice', isOrg: false } };
    expect(actions(missing)).toEqual(['pull']);
    expect(actions({ ...missing, createRepositoryOnPush: true })).toEqual(['pull', 'push']);
    expect(
      actions({ repository: undefined, teamLevels: ['read-write'], createRepositoryOnPush: true }),
    ).toEqual([]);
    expect(actions({ repository: undefined, isOrgAdmin: true, createRepositoryOnPush: true })).toEqual([
      'pull',
      'push',
    ]);
  });
});
