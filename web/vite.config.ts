// The chat UI's build: `npm run build` runs it after tsc; hearth serves web/dist under /ui/.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  plugins: [react()],
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
