// Who is calling DTR: HTTP Basic with an eNZi password, a DTR access token or an eNZi session token
// in the password's place, or a bearer/SessionToken session. Undefined when no credentials came;
// wrong credentials throw 401 (429 while an account is locked). Secrets are never logged.
import { ApiError, type Principal } from '@orca/api';
import { getAccount, type Authenticator } from '@orca/identity';
import type { Store } from '@orca/store';
import type { ApiTokens } from './api-tokens.js';

export class DtrCredentials {
  constructor(
    private readonly store: Store,
    private readonly authenticator: Authenticator,
    private readonly apiTokens: ApiTokens,
  ) {}

  async principal(authorization: string | undefined): Promise<Principal | undefined> {
    const header = authorization?.trim();
    if (!header) return undefined;
    const basic = /^basic\s+(\S+)$/i.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        const user = decoded.slice(0, colon);
        const secret = decoded.slice(colon + 1);
        if (await this.apiTokens.resolve(user, secret)) {
          const account = await getAccount(this.store, user);
          if (!account || account.isOrg || !account.isActive)
            throw new ApiError(401, 'UNAUTHORIZED', 'inactive account');
          return { id: account.id, name: account.name, isAdmin: account.isAdmin, via: 'token' };
        }
        const session = await this.authenticator.sessions.resolve(secret).catch(() => undefined);
        if (session && session.name === user)
          return this.authenticator.authenticate({ authorization: `Bearer ${secret}` });
      }
    }
    return this.authenticator.authenticate({ authorization: header });
  }
}
