// Runs inside the QEMU guest with usip.ko loaded (see ../vm.test.ts): exercises the usip family
// through this addon and writes what it saw to $USIP_VM_RESULTS/usip-probe.json. It reports
// facts and leaves judging them to the host test; it exits non-zero only if it cannot run.
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { GenlSocket, isNetlinkError } from '../../dist/index.js';

// From packages/kernel-module/include/uapi/linux/usip.h (generated from spec/usip.yaml).
const USIP_CMD_PING = 1;
const PING = { cookie: 1, protocolVersion: 2, moduleVersion: 3, features: 4, kernelRelease: 5 };
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function attribute(type, payload) {
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  if (LITTLE) {
    out.writeUInt16LE(4 + payload.length, 0);
    out.writeUInt16LE(type, 2);
  } else {
    out.writeUInt16BE(4 + payload.length, 0);
    out.writeUInt16BE(type, 2);
  }
  out.set(payload, 4);
  return out;
}

function u64(value) {
  const out = Buffer.alloc(8);
  if (LITTLE) out.writeBigUInt64LE(value);
  else out.writeBigUInt64BE(value);
  return out;
}

function decode(bytes) {
  const found = {};
  for (let offset = 0; offset + 4 <= bytes.length; ) {
    const length = LITTLE ? bytes.readUInt16LE(offset) : bytes.readUInt16BE(offset);
    const type = (LITTLE ? bytes.readUInt16LE(offset + 2) : bytes.readUInt16BE(offset + 2)) & 0x3fff;
    if (length < 4) throw new Error(`attribute at offset ${offset} has length ${length}`);
    const payload = bytes.subarray(offset + 4, offset + length);
    if (type === PING.cookie) found.cookie = String(LITTLE ? payload.readBigUInt64LE() : payload.readBigUInt64BE());
    if (type === PING.protocolVersion) found.protocolVersion = LITTLE ? payload.readUInt32LE() : payload.readUInt32BE();
    if (type === PING.features) found.features = LITTLE ? payload.readUInt32LE() : payload.readUInt32BE();
    if (type === PING.moduleVersion) found.moduleVersion = payload.toString('utf8').replace(/\0.*$/s, '');
    if (type === PING.kernelRelease) found.kernelRelease = payload.toString('utf8').replace(/\0.*$/s, '');
    offset += (length + 3) & ~3;
  }
  return found;
}

/** The outcome of a call: its value, or the fields of its NetlinkError. */
async function outcome(promise) {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    if (!isNetlinkError(error)) throw error;
    const { errno, code, extack, extackOffset, operation, message } = error;
    return { ok: false, error: { errno, code, extack, extackOffset, operation, message } };
  }
}

const socket = new GenlSocket();
const report = { guestRelease: release() };

report.family = await socket.resolveFamily('usip');
const family = report.family;

const cookie = 0x0123456789abcdefn;
const ping = await outcome(
  socket.request(family.id, USIP_CMD_PING, family.version, attribute(PING.cookie, u64(cookie)), {
    label: 'usip ping',
  }),
);
report.ping = ping.ok
  ? { ok: true, replies: ping.value.map((m) => ({ command: m.command, ...decode(m.attributes) })) }
  : ping;
report.sentCookie = String(cookie);

// A 4-byte cookie where the policy wants a u64.
report.shortCookie = await outcome(
  socket.request(family.id, USIP_CMD_PING, family.version, attribute(PING.cookie, Buffer.alloc(4)), {
    label: 'usip ping',
  }),
);
// An attribute type beyond the ping policy's maximum.
report.unknownAttribute = await outcome(
  socket.request(family.id, USIP_CMD_PING, family.version, attribute(99, u64(1n)), { label: 'usip ping' }),
);
// Ping has no dump handler.
report.dumpOfPing = await outcome(socket.dump(family.id, USIP_CMD_PING, family.version));

// Concurrent pings on one socket, each with its own cookie, must each get their own answer.
const cookies = Array.from({ length: 32 }, (_, index) => BigInt(index) * 0x10001n + 7n);
const echoed = await Promise.all(
  cookies.map((value) =>
    socket
      .request(family.id, USIP_CMD_PING, family.version, attribute(PING.cookie, u64(value)))
      .then((replies) => decode(replies[0].attributes).cookie),
  ),
);
report.concurrentPings = {
  sent: cookies.length,
  matched: echoed.filter((value, index) => value === String(cookies[index])).length,
};

socket.close();
report.afterClose = await outcome(socket.resolveFamily('usip'));

const out = process.env.USIP_VM_RESULTS;
if (!out) throw new Error('USIP_VM_RESULTS is not set: this script runs in the @usip/vm guest');
writeFileSync(join(out, 'usip-probe.json'), `${JSON.stringify(report, null, 2)}\n`);
