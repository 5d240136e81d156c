/** Who is making a request, once authenticated (password, token, session or client certificate). */
export interface Principal {
  /** eNZi account id. */
  id: string;
  name: string;
  isAdmin: boolean;
  via: 'password' | 'token' | 'session' | 'certificate' | 'node';
}
