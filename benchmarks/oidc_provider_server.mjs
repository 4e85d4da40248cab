// panva/oidc-provider set up to do the same token-endpoint work as the reference server, for
// benchmarks/token_throughput.py: one client, client_credentials, private_key_jwt with RS384,
// opaque access tokens, the in-memory adapter, one Node process (no cluster).
//
//   node benchmarks/oidc_provider_server.mjs PORT JWKS_FILE CLIENT_ID SCOPE    (PORT 0 picks a free one)
//
// OIDC_PROVIDER_PREFIX is the `npm install --prefix` directory holding the package (token_throughput.py
// installs it there); without it the package is looked up from this file as usual.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, jwksFile, clientId, scope] = process.argv.slice(2);
if (!scope) {
  console.error('usage: oidc_provider_server.mjs PORT JWKS_FILE CLIENT_ID SCOPE');
  process.exit(2);
}

const prefix = process.env.OIDC_PROVIDER_PREFIX;
const from = prefix ? join(prefix, 'package.json') : import.meta.url;
const { default: Provider } = await import(pathToFileURL(createRequire(from).resolve('oidc-provider')).href);

// The provider's own signing key: opaque access tokens do not use it, but without one
// oidc-provider generates a development key and warns.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-server', use: 'sig', alg: 'RS256' };

// Listen first, so that with PORT 0 the issuer URL can name the port the system picked.
const server = createServer();
await new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS384',
      jwks: JSON.parse(readFileSync(jwksFile, 'utf8')),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope,
    },
  ],
  scopes: scope.split(' '),
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
  },
  enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
  jwks: { keys: [signingJwk] },
  ttl: { ClientCredentials: 300 },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

server.on('request', provider.callback());
console.log(`oidc-provider ${issuer} ready`);
