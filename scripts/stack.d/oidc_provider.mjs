// OpenID Connect provider for the userportal test stack (npm oidc-provider), http://127.0.0.1:3000
// Usage: node provider.mjs config.json   (written by scripts/stack; node_modules next to this file)
// One confidential client (the portal), static accounts with passwords, a small login form and
// no consent screen. Claims: preferred_username, email, name, groups (scope "groups", and also
// in "profile" so the default "openid email profile" scopes carry them).
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const ACCOUNTS = cfg.accounts;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'stack-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(cfg.issuer, {
  clients: [{
    ...cfg.client,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // mozilla-django-oidc posts the secret in the body; oidc-provider accepts post and basic alike
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [cfg.cookie_key] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'groups'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  features: { devInteractions: { enabled: false } },
  // PKCE of public clients only, as oidc-provider 9 does by default: 8.x (installed with Debian's
  // Node 18) requires it of every client, and the portal's confidential client sends none
  pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const acc = ACCOUNTS[sub];
    if (!acc) return undefined;
    return { accountId: sub, async claims() { return { sub, ...acc.claims }; } };
  },
  // First-party client: grant the requested scopes without a consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups offline_access');
    await grant.save();
    return grant;
  },
});

const html = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const readForm = (req) => new Promise((resolve, reject) => {
  let d = ''; req.on('data', (c) => { d += c; }); req.on('end', () => resolve(new URLSearchParams(d)));
  req.on('error', reject);
});

// GET /interaction/:uid shows the login form, POST /interaction/:uid checks it.
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([\w-]+)$/);
  if (!m) return next();
  ctx.set('cache-control', 'no-store');
  const { uid, prompt } = await provider.interactionDetails(ctx.req, ctx.res);
  if (prompt.name !== 'login') ctx.throw(501, `prompt ${prompt.name} not handled`);
  let error = '';
  if (ctx.method === 'POST') {
    const form = await readForm(ctx.req);
    const user = form.get('username'); const acc = ACCOUNTS[user];
    if (acc && acc.password === form.get('password')) {
      return provider.interactionFinished(ctx.req, ctx.res,
        { login: { accountId: user } }, { mergeWithLastSubmission: false });
    }
    error = '<p id="error">Invalid username or password.</p>';
  }
  ctx.type = 'html';
  ctx.body = `<!doctype html><html><head><title>Test IdP login</title><link rel="icon" href="data:,"></head>
<body><h1>Test IdP login</h1>${error}
<form method="post" action="/interaction/${html(uid)}">
<label>Username <input name="username" id="username" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="login">Sign in</button></form></body></html>`;
});

provider.listen(cfg.port, '127.0.0.1', () => console.log(`oidc-provider listening on ${cfg.issuer}`));
