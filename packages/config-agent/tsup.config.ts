import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'tsup';

// The packages esbuild put into dist/, by their directory, from its metafile.
function bundledPackages(metafile: string): string[] {
  const { inputs } = JSON.parse(readFileSync(metafile, 'utf8')) as { inputs: Record<string, unknown> };
  const dirs = new Map<string, string>();
  for (const input of Object.keys(inputs)) {
    const at = input.lastIndexOf('node_modules/');
    if (at < 0) continue;
    const rest = input.slice(at + 'node_modules/'.length).split('/');
    const name = rest[0]!.startsWith('@') ? rest.slice(0, 2).join('/') : rest[0]!;
    dirs.set(input.slice(0, at + 'node_modules/'.length) + name, name);
  }
  return [...dirs].sort((a, b) => a[1].localeCompare(b[1])).map(([dir]) => dir);
}

// Their licences ask that their notices go with copies of them: dist/THIRD-PARTY-LICENSES.txt,
// each package's name, version, licence and licence file, verbatim. A bundled package without
// a licence file fails the build (its notice cannot be shipped).
function writeThirdPartyLicences(): void {
  const metafile = 'dist/metafile-esm.json';
  const sections = bundledPackages(metafile).map((dir) => {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    if (file === undefined) throw new Error(`${manifest.name}: no licence file in ${dir}, cannot ship its notice`);
    return `${manifest.name}@${manifest.version} (${manifest.license ?? 'see below'})\n\n${readFileSync(join(dir, file), 'utf8').trim()}\n`;
  });
  const rule = `\n${'-'.repeat(78)}\n\n`;
  writeFileSync(
    'dist/THIRD-PARTY-LICENSES.txt',
    `usip-agent's dist/ bundles these packages; each is under its own licence, reproduced here.${rule}${sections.join(rule)}`,
  );
  rmSync(metafile);
}

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
  // For the bundled packages' notices (writeThirdPartyLicences).
  metafile: true,
  onSuccess: async () => writeThirdPartyLicences(),
  // Bundled CommonJS modules require Node's built-in modules; give the ESM bundle a require().
  banner: { js: "import { createRequire as __usipAgentCreateRequire } from 'node:module'; const require = __usipAgentCreateRequire(import.meta.url);" },
});
