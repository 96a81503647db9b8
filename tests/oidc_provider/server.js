// A real OpenID provider (panva/oidc-provider, OpenID Certified) for Slipway's sign-in tests.
//
//   node server.js CONFIG.json
//
// CONFIG: {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris": [...]}, ...],
//          "accounts": "accounts.json"}. The accounts file is read on every sign-in, so a test can
// change someone's groups between two sign-ins: {"alice": {"email", "name", "groups": [...],
// "groups_in": "userinfo" | "id_token" | "both"}}. The development login page accepts any password
// for an account in that file. PKCE (S256) is required of every client. Prints one JSON line
// {"issuer": ...} once it listens on 127.0.0.1.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = () => JSON.parse(readFileSync(config.accounts, 'utf8'));

const server = createServer();
server.listen(config.port || 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      ...client,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    })),
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'name'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false, // claims of the granted scopes go into the ID token as well
    async findAccount(ctx, id) {
      const account = accounts()[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims(use) {
          const where = account.groups_in || 'both';
          const groups = where === 'both' || where === use ? { groups: account.groups || [] } : {};
          return {
            sub: id, preferred_username: id, name: account.name || id, email: account.email,
            email_verified: true, ...groups,
          };
        },
      };
    },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
