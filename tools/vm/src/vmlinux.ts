// Extracts the uncompressed kernel (an ELF with a PVH entry note) from a bzImage. QEMU can boot
// it directly with -kernel, which skips the firmware's real-mode boot and the in-guest
// decompression: under TCG that saves about 4 s per boot.
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface BzImagePayload {
  format: 'gzip' | 'xz' | 'zstd' | 'unknown';
  /** The compressed kernel, without the 4-byte size trailer Kbuild appends. */
  data: Buffer;
}

/** Finds the compressed payload through the x86 boot protocol header (payload_offset/length). */
export function bzImagePayload(image: Buffer): BzImagePayload {
  if (image.length < 0x250 || image.readUInt32LE(0x202) !== 0x53726448 /* "HdrS" */) {
    throw new Error('not a bzImage (no "HdrS" boot header at 0x202)');
  }
  const setupSectors = image[0x1f1] || 4;
  const protectedModeStart = (setupSectors + 1) * 512;
  const offset = image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  const start = protectedModeStart + offset;
  if (length <= 4 || start + length > image.length) {
    throw new Error(`bzImage payload (offset ${offset}, length ${length}) lies outside the file`);
  }
  const data = image.subarray(start, start + length - 4);
  let format: BzImagePayload['format'] = 'unknown';
  if (data[0] === 0x1f && data[1] === 0x8b) format = 'gzip';
  else if (data.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) format = 'xz';
  else if (data.readUInt32LE(0) === 0xfd2fb528) format = 'zstd';
  return { format, data };
}

function decompressWith(command: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', (e) => reject(new Error(`cannot run ${command}: ${e.message}`)));
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${command} failed (${code}): ${err.trim()}`)),
    );
    child.stdin.end(input);
  });
}

/** Writes the uncompressed ELF kernel of bzImage `vmlinuz` to `out`; throws if it cannot. */
export async function extractVmlinux(vmlinuz: string, out: string): Promise<void> {
  const payload = bzImagePayload(readFileSync(vmlinuz));
  let elf: Buffer;
  switch (payload.format) {
    case 'gzip':
      elf = gunzipSync(payload.data);
      break;
    case 'xz':
      elf = await decompressWith('xz', ['-dc', '--single-stream'], payload.data);
      break;
    case 'zstd':
      elf = await decompressWith('zstd', ['-dcq'], payload.data);
      break;
    default:
      throw new Error(`${vmlinuz}: unsupported payload compression`);
  }
  if (!elf.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    throw new Error(`${vmlinuz}: the decompressed payload is not an ELF file`);
  }
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, elf);
  renameSync(tmp, out);
}
