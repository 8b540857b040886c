import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bzImagePayload, extractVmlinux } from '../src/vmlinux.js';

// A small stand-in for an uncompressed kernel: an ELF magic and some bytes.
const fakeElf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(3000, 0x5a)]);

/** A bzImage laid out as the x86 boot protocol says: setup sectors, then the payload. */
function bzImage(payload: Buffer, setupSectors = 3, payloadOffset = 64): Buffer {
  const start = (setupSectors + 1) * 512 + payloadOffset;
  const image = Buffer.alloc(start + payload.length + 4 + 100);
  image[0x1f1] = setupSectors;
  image.writeUInt32LE(0x53726448, 0x202);
  image.writeUInt32LE(payloadOffset, 0x248);
  image.writeUInt32LE(payload.length + 4, 0x24c); // Kbuild appends the 4-byte size
  payload.copy(image, start);
  image.writeUInt32LE(fakeElf.length, start + payload.length);
  return image;
}

function compressWith(tool: string, data: Buffer): Buffer {
  return execFileSync(tool, ['-c'], { input: data });
}

test('finds and names the payload of gzip, xz and zstd kernels', () => {
  const gz = gzipSync(fakeElf);
  const found = bzImagePayload(bzImage(gz));
  assert.is(found.format, 'gzip');
  assert.ok(found.data.equals(gz), 'the payload without the size trailer');
  assert.is(bzImagePayload(bzImage(compressWith('xz', fakeElf))).format, 'xz');
  assert.is(bzImagePayload(bzImage(compressWith('zstd', fakeElf))).format, 'zstd');
});

test('extracts the ELF kernel from each compression', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'usip-vmlinux-'));
  try {
    for (const [name, payload] of [
      ['gzip', gzipSync(fakeElf)],
      ['xz', compressWith('xz', fakeElf)],
      ['zstd', compressWith('zstd', fakeElf)],
    ] as const) {
      writeFileSync(join(dir, `vmlinuz-${name}`), bzImage(payload));
      await extractVmlinux(join(dir, `vmlinuz-${name}`), join(dir, `vmlinux-${name}`));
      assert.ok(readFileSync(join(dir, `vmlinux-${name}`)).equals(fakeElf), name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses what is not a bzImage or not a kernel, saying why', async () => {
  assert.throws(() => bzImagePayload(Buffer.alloc(4096)), /not a bzImage \(no "HdrS" boot header at 0x202\)/);
  const truncated = bzImage(gzipSync(fakeElf)).subarray(0, 2100);
  assert.throws(() => bzImagePayload(truncated), /bzImage payload \(offset 64, length \d+\) lies outside the file/);
  const dir = mkdtempSync(join(tmpdir(), 'usip-vmlinux-'));
  try {
    writeFileSync(join(dir, 'vmlinuz'), bzImage(gzipSync(Buffer.from('not an elf file'))));
    await extractVmlinux(join(dir, 'vmlinuz'), join(dir, 'vmlinux')).then(
      () => assert.unreachable('a non-ELF payload must be refused'),
      (error: Error) => assert.match(error.message, /the decompressed payload is not an ELF file/),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
