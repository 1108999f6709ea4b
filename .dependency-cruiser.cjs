/**
 * The layering of docs/architecture.md, checked on every `npm test` (`npm run lint:layers`).
 * Imports point downward: cli -> http -> domain services -> engine, atlas, node.
 * Shared leaves (config, errors, log, units, version, secrets) may be imported from anywhere;
 * src/context.ts is the composition root and may import every layer but cli and http.
 */
const DOMAIN = '(chat|jobs|workflows|models|knowledge|images)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'nothing-imports-cli',
      comment: 'cli is the top: nothing below it may import it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-cli-imports-http',
      comment: 'http sits right under cli: no service, engine or store may import it.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/(cli|http)/'] },
      to: { path: '^src/http/' },
    },
    {
      name: 'only-http-imports-fastify',
      comment: 'src/http owns everything Fastify (routes, hooks, streams, the guard and metrics glue).',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/http/' },
      to: { path: 'node_modules/(fastify|@fastify/)' },
    },
    {
      name: 'domain-below-http',
      comment: 'domain services do not know about HTTP or the CLI.',
      severity: 'error',
      from: { path: `^src/${DOMAIN}/` },
      to: { path: '^src/(cli|http)/' },
    },
    {
      name: 'engine-below-domain',
      comment: 'the engine serves the domain services; it imports none of them.',
      severity: 'error',
      from: { path: '^src/engine/' },
      to: { path: `^src/(cli|http|net|metrics|${DOMAIN})/|^src/context\\.ts$` },
    },
    {
      name: 'atlas-and-node-are-the-bottom',
      comment: 'atlas and node import nothing of hearth above them.',
      severity: 'error',
      from: { path: '^src/(atlas|node)/' },
      to: { path: `^src/(cli|http|net|metrics|engine|${DOMAIN})/|^src/context\\.ts$` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
