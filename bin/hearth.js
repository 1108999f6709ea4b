#!/usr/bin/env node
// The published entry point runs the compiled CLI (`npm run build` makes dist/).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('hearth: dist/ is missing: run `npm run build` first (npm start does it for you)');
    process.exit(1);
  }
  throw err;
});
