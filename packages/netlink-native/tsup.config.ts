import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  // dist/ also holds the native addon, which `napi build` writes after tsup has run.
  clean: true,
});
