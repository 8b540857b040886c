import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
  // The pure-JavaScript dependencies (ajv, pino, chokidar, commander and theirs) are bundled into
  // dist: left external, starting usip-agent reads about 150 files of node_modules (ajv alone
  // about 100), which costs next to nothing on a real disk but seconds where files are slow to
  // reach (the VM tests read the host's tree over 9p under emulation: 20 s instead of 2 s).
  // @usip/client stays external: it loads the native netlink addon.
  noExternal: [/^(?!@usip\/)/],
  // Bundled CommonJS modules require Node's built-in modules; give the ESM bundle a require().
  banner: { js: "import { createRequire as __usipAgentCreateRequire } from 'node:module'; const require = __usipAgentCreateRequire(import.meta.url);" },
});
