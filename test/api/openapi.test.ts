// The OpenAPI plugin on the real API server (a sandbox runtime): every API route is in the
// document with its method, every $ref resolves, the bearer scheme is declared, and Swagger UI
// answers at /docs with its assets served locally.

import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { DOCS_PREFIX, OPENAPI_PATH, openApiPlugin } from '../../src/api/openapi.js';
import { startDemoRuntime } from '../../src/sandbox/demo-runtime.js';

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { responses?: Record<string, unknown>; parameters?: unknown[] }>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string }> };
  security: Array<Record<string, unknown[]>>;
}

t.test('the document lists every API route', async (t) => {
  const routes: Array<{ method: string; url: string }> = [];
  // Registered first, so it sees every route added after it, including the plugin's own.
  const collect = async (app: FastifyInstance) => {
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) routes.push({ method, url: route.url });
    });
  };
  const demo = await startDemoRuntime({
    workloads: [{ name: 'frontend', rps: 1000 }],
    startController: false,
    server: { before: [collect, openApiPlugin({ version: '9.8.7' })] },
  });
  t.teardown(() => demo.stop());
  const app = demo.runtime.server;

  const response = await app.inject({ url: OPENAPI_PATH });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /application\/json/);
  const doc = response.json() as OpenApiDocument;
  t.match(doc.openapi, /^3\./);
  t.equal(doc.info.title, 'clustershift API');
  t.equal(doc.info.version, '9.8.7');
  t.match(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer' }, 'bearer scheme');
  t.match(doc.security, [{ bearerAuth: [] }]);

  const api = routes.filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD');
  t.ok(api.length >= 8, `found ${api.length} API routes`);
  for (const route of api) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const operation = doc.paths[path]?.[route.method.toLowerCase()];
    t.ok(operation, `${route.method} ${route.url} is documented as ${route.method.toLowerCase()} ${path}`);
    t.ok(operation?.responses?.['200'], `${route.method} ${route.url} documents its 200 answer`);
    // The rollouts' paths name a namespace and a workload; a migration's only its name.
    if (path.startsWith('/api/v1/migrations/'))
      t.match(operation?.parameters, [{ in: 'path', name: 'name' }], `${route.url} documents its name`);
    else if (path.includes('{name}'))
      t.match(
        operation?.parameters,
        [
          { in: 'path', name: 'namespace' },
          { in: 'path', name: 'name' },
        ],
        `${route.url} documents its path parameters`,
      );
  }
  // Nothing undocumented sneaks in, and nothing hidden (health, metrics) leaks out.
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => `${method} ${path}`),
  );
  t.equal(documented.length, api.length, documented.join(', '));
  t.notOk(doc.paths['/healthz'] ?? doc.paths['/metrics'] ?? doc.paths[OPENAPI_PATH]);
  t.ok(
    doc.paths['/api/v1/rollouts/{namespace}/{name}/abort']?.post?.responses?.['409'],
    'abort documents 409',
  );

  // Every reference resolves inside the document (a broken $ref breaks client generators).
  const text = response.body;
  const refs = [...new Set([...text.matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!))];
  for (const ref of refs) {
    t.match(ref, /^#\//, `${ref} is local`);
    const target = ref
      .slice(2)
      .split('/')
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], doc);
    t.ok(target, `${ref} resolves`);
  }
});

t.test('Swagger UI answers at /docs with local assets', async (t) => {
  const demo = await startDemoRuntime({
    workloads: [{ name: 'frontend', rps: 1000 }],
    startController: false,
    server: { before: [openApiPlugin({ version: '0.1.0' })] },
  });
  t.teardown(() => demo.stop());
  const app = demo.runtime.server;
  const page = await app.inject({ url: DOCS_PREFIX });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);
  t.notMatch(page.body, /https?:\/\//, 'no asset is loaded from another host');
  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  t.ok(assets.length >= 3, `assets: ${assets.join(', ')}`);
  for (const asset of assets) {
    const answer = await app.inject({ url: asset });
    t.equal(answer.statusCode, 200, `${asset} is served`);
  }
  const json = await app.inject({ url: `${DOCS_PREFIX}/json` });
  t.equal(json.statusCode, 200);
  t.equal((json.json() as OpenApiDocument).info.title, 'clustershift API');
});
