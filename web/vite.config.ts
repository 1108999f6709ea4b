// The chat UI's build: `npm run build` runs it after tsc; hearth serves web/dist under /ui/.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/**
 * `@contract/*` (web/tsconfig.json's path alias) is the server's contract, src/http/<area>/contract.ts
 * (docs/ui.md, "One contract"). The page imports its types only; `import type` is erased before
 * bundling, so an import that reaches the bundler would put zod and server code in the page: the
 * build refuses it.
 */
function contractTypesOnly(): Plugin {
  return {
    name: 'hearth-contract-types-only',
    enforce: 'pre',
    resolveId(id, importer) {
      if (!id.startsWith('@contract/')) return null;
      this.error(`${importer ?? 'the page'} imports ${id} as a value: import its types only (\`import type\`)`);
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  plugins: [contractTypesOnly(), react()],
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Highlighting languages are split into chunks of their own and loaded on demand.
    chunkSizeWarningLimit: 400,
    reportCompressedSize: false,
  },
  server: {
    // `npx vite --config web/vite.config.ts` for UI work: the API comes from a running hearth.
    proxy: { '/api': 'http://127.0.0.1:11434' },
  },
});
