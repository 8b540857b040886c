import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  headersCandidatesFromMeta,
  inSeries,
  majorOf,
  headersCandidatesFromNames,
  newestOfSeries,
  parseAptStanzas,
  parseKernelSelector,
  rtRelease,
  seriesOfRelease,
} from '../src/apt.js';

// Real `apt-cache show linux-headers-amd64 linux-headers-6.12-amd64` output (some fields left
// out) from a bookworm machine with -security and -backports.
const metaShow = readFileSync(new URL('fixtures/apt-show-headers-meta.txt', import.meta.url), 'utf8');
// The same from the trixie build root (trixie, -updates, -backports), where 7.x lives.
const trixieMetaShow = readFileSync(new URL('fixtures/apt-show-headers-meta-trixie.txt', import.meta.url), 'utf8');

test('selectors: series, all, exact releases, lists', () => {
  assert.equal(parseKernelSelector('6.1'), [{ kind: 'series', series: '6.1' }]);
  assert.equal(parseKernelSelector('all'), [
    { kind: 'series', series: '6.1' },
    { kind: 'series', series: '6.12' },
    { kind: 'series', series: '7' },
  ]);
  assert.equal(parseKernelSelector('6.12.117+deb12-amd64'), [{ kind: 'release', release: '6.12.117+deb12-amd64' }]);
  assert.equal(parseKernelSelector('6.12, 6.1.0-56-amd64,6.12'), [
    { kind: 'series', series: '6.12' },
    { kind: 'release', release: '6.1.0-56-amd64' },
  ]);
});

test('selectors: a series\' PREEMPT_RT flavour, beside the plain one', () => {
  assert.equal(parseKernelSelector('6.12-rt'), [{ kind: 'series', series: '6.12', flavour: 'rt' }]);
  assert.equal(parseKernelSelector('6.12,6.12-rt,6.12-rt'), [
    { kind: 'series', series: '6.12' },
    { kind: 'series', series: '6.12', flavour: 'rt' },
  ]);
  assert.is(rtRelease('6.12.118+deb12-amd64'), '6.12.118+deb12-rt-amd64');
  assert.is(rtRelease('6.1.0-57-amd64'), '6.1.0-57-rt-amd64');
});

test('selectors: bad input gets an error naming the word and the accepted forms', () => {
  assert.throws(() => parseKernelSelector('latest'), /unknown kernel selector "latest": use 6\.1, 6\.12, 7 \(the newest 7\.x\), all, a series' PREEMPT_RT flavour such as 6\.1-rt, or an exact amd64 release/);
  assert.throws(() => parseKernelSelector('6.12-cloud'), /unknown kernel selector "6\.12-cloud"/);
  assert.throws(() => parseKernelSelector('6.1.0-56-cloud-amd64'), /unknown kernel selector "6\.1\.0-56-cloud-amd64"/);
  assert.throws(() => parseKernelSelector(' , '), /empty kernel selector/);
});

test('series of a release; other flavours are not plain releases', () => {
  assert.is(seriesOfRelease('6.1.0-56-amd64'), '6.1');
  assert.is(seriesOfRelease('6.12.117+deb12-amd64'), '6.12');
  assert.is(seriesOfRelease('6.12.117+deb12-rt-amd64'), null);
  assert.is(seriesOfRelease('6.12-amd64'), null, 'a meta package name is not a release');
  assert.is(seriesOfRelease('6.1.0-56-common'), null);
});

test('apt-cache show stanzas are split and continuation lines kept', () => {
  const stanzas = parseAptStanzas(metaShow);
  assert.is(stanzas.length, 4);
  assert.is(stanzas[0]?.Package, 'linux-headers-amd64');
  assert.is(stanzas[3]?.Version, '6.12.117-1~deb12u1');
  const folded = parseAptStanzas('Package: a\nDescription: one\n two\n\nPackage: b\n');
  assert.equal(folded, [{ Package: 'a', Description: 'one\ntwo' }, { Package: 'b' }]);
});

test('picks the newest 6.1 and the newest 6.12 from every suite the meta packages come from', () => {
  const candidates = headersCandidatesFromMeta(parseAptStanzas(metaShow));
  assert.equal(
    candidates.map((c) => c.release).sort(),
    ['6.1.0-50-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64', '6.12.95+deb12-amd64'],
  );
  assert.equal(newestOfSeries(candidates, '6.1'), { release: '6.1.0-56-amd64', series: '6.1', version: '6.1.192-2' });
  // bookworm-security's 6.12.117 is newer than the backports meta package's 6.12.95.
  assert.equal(newestOfSeries(candidates, '6.12'), {
    release: '6.12.117+deb12-amd64',
    series: '6.12',
    version: '6.12.117-1~deb12u1',
  });
  assert.is(newestOfSeries(candidates, '6.8'), null);
});

test('a backports meta package that moved to a newer series does not count for 6.12', () => {
  const movedOn = parseAptStanzas(
    'Package: linux-headers-amd64\nVersion: 6.16.3-1~bpo12+1\nDepends: linux-headers-6.16.3+deb12-amd64 (= 6.16.3-1~bpo12+1)\n',
  );
  const candidates = headersCandidatesFromMeta(movedOn);
  assert.is(newestOfSeries(candidates, '6.12'), null);
  assert.is(newestOfSeries(candidates, '6.16')?.release, '6.16.3+deb12-amd64');
});

test('package names give the newest plain release of a series when no meta package does', () => {
  const names = [
    'linux-headers-6.12.9+deb12-amd64',
    'linux-headers-6.12.113+deb12-amd64',
    'linux-headers-6.12.113+deb12-cloud-amd64',
    'linux-headers-6.12.113+deb12-common',
    'linux-headers-6.12.41+deb12-rt-amd64',
    'linux-headers-6.1.0-56-amd64',
  ].join('\n');
  const candidates = headersCandidatesFromNames(names, '6.12');
  assert.equal(candidates.map((c) => c.release), ['6.12.9+deb12-amd64', '6.12.113+deb12-amd64']);
  assert.is(newestOfSeries(candidates, '6.12')?.release, '6.12.113+deb12-amd64');
  assert.is(newestOfSeries(headersCandidatesFromNames(names, '6.1'), '6.1')?.release, '6.1.0-56-amd64');
});

test.run();

test('a bare major selects the newest X.Y of it: 7 is 7.3 in trixie-backports, not trixie\'s 6.12', () => {
  assert.equal(parseKernelSelector('7'), [{ kind: 'series', series: '7' }]);
  assert.equal(parseKernelSelector('6.12,7,7-rt'), [
    { kind: 'series', series: '6.12' },
    { kind: 'series', series: '7' },
    { kind: 'series', series: '7', flavour: 'rt' },
  ]);
  assert.is(seriesOfRelease('7.3.4+deb13-amd64'), '7.3');
  assert.is(majorOf('7.3'), 7);
  assert.is(majorOf('7'), 7);
  assert.is(majorOf('6.12'), 6);
  assert.ok(inSeries('7.3', '7'));
  assert.not.ok(inSeries('7.3', '7.2'));
  assert.not.ok(inSeries('6.12', '6.1'), 'a series is not a prefix of another');
  const candidates = headersCandidatesFromMeta(parseAptStanzas(trixieMetaShow));
  assert.equal(newestOfSeries(candidates, '7'), { release: '7.3.4+deb13-amd64', series: '7.3', version: '7.3.4-1~bpo13+1' });
  assert.is(newestOfSeries(candidates, '6.12')?.release, '6.12.117+deb13-amd64');
  assert.is(newestOfSeries(candidates, '8'), null);
});
