// A real, independent OpenID Connect provider for tests/sso: panva's certified
// oidc-provider, configured like a national identity provider ("Gosuslugi"-style):
// authorization code flow, PKCE required, a `snils` scope and claim.
//
// Environment (all set by tests/sso/conftest.py):
//   REDIRECT_URIS   JSON list of the relying party's callback URLs (required)
//   CLIENT_ID       confidential client id (default "medcard")
//   CLIENT_SECRET   its secret (default "medcard-test-secret")
//   PUBLIC_CLIENT_ID  a second, public client (token_endpoint_auth_method "none")
//   PEOPLE          JSON {login: {snils, family_name, given_name, middle_name, birthdate,
//                   snils_only_in_userinfo}}; the login typed into the sign-in form is the
//                   account id and the ID token's `sub`
//   PORT            port on 127.0.0.1 (default 0: any free port)
//
// Prints one JSON line {"issuer": "http://127.0.0.1:PORT"} on stdout once it listens.
// Sign-in uses oidc-provider's devInteractions (any password), followed by its
// consent form: the same two forms a person meets at a real provider.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import { Provider } from 'oidc-provider';

const redirectUris = JSON.parse(process.env.REDIRECT_URIS || '[]');
if (!Array.isArray(redirectUris) || redirectUris.length === 0) {
  console.error('REDIRECT_URIS (a JSON list of callback URLs) is required');
  process.exit(2);
}
const people = JSON.parse(process.env.PEOPLE || '{}');

function account(login) {
  const person = people[login];
  if (!person) return undefined;
  return {
    accountId: login,
    async claims(use) {
      const claims = {
        sub: login,
        family_name: person.family_name,
        given_name: person.given_name,
        middle_name: person.middle_name,
        name: [person.family_name, person.given_name, person.middle_name].filter(Boolean).join(' '),
        birthdate: person.birthdate,
      };
      // Some providers release SNILS only at the userinfo endpoint.
      if (person.snils && !(use === 'id_token' && person.snils_only_in_userinfo)) {
        claims.snils = person.snils;
      }
      return claims;
    },
  };
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const clients = [
  {
    client_id: process.env.CLIENT_ID || 'medcard',
    client_secret: process.env.CLIENT_SECRET || 'medcard-test-secret',
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];
if (process.env.PUBLIC_CLIENT_ID) {
  clients.push({
    client_id: process.env.PUBLIC_CLIENT_ID,
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
  });
}

const configuration = {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'family_name', 'given_name', 'middle_name', 'birthdate'],
    snils: ['snils'],
  },
  // Put the claims of the granted scopes into the ID token too (the relying party
  // reads SNILS from there, and falls back to userinfo when a provider does not).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
  },
  async findAccount(_ctx, sub) {
    return account(sub);
  },
};

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = http.createServer((req, res) => handler(req, res));
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  handler = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
