// An OAuth2 token endpoint for jetbridge's tests, from the established
// implementation oidc-provider (installed by scripts/test-node into build/node):
// one confidential client that may use the client-credentials grant with scope
// "events". Listens on 127.0.0.1:<port>; the token endpoint is /token.
// Usage: node oidc_token.mjs NODE_MODULES PORT CLIENT_ID CLIENT_SECRET
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, port, clientId, clientSecret] = process.argv.slice(2);
const { default: Provider } = await import(
  pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['events'],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  routes: { token: '/token' },
  ttl: { ClientCredentials: 600 },
});
provider.on('grant.error', (ctx, err) => console.error('grant error', err.message));
provider.listen(Number(port), '127.0.0.1', () => console.log(`listening ${port}`));
