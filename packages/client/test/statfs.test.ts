// statfs replies as the module sends them (attribute bytes built with the real codec and the
// generated tables, the bytes statfs() and statfsAll() get from the socket), decoded by
// decodeStatfs(); and statfs()'s arguments, checked before anything is sent, as the request
// attributes they become. The operation itself runs against the real module in the VM
// (packages/cli/test/vm-df.test.ts, through `usip df`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { STATFS_ATTRIBUTE_SET, StatfsAttribute, StatfsFlags, type StatfsAttributes } from '../src/generated/usip.js';
import { UsipArgumentError, UsipProtocolError } from '../src/errors.js';
import { decodeAttributes, encodeAttributes } from '../src/netlink/attributes.js';
import { statfsOptions, statfsRequest } from '../src/options.js';
import { decodeStatfs, statfsError } from '../src/statfs.js';
import { decodeStatfs as exported, statfsError as exportedError } from '../src/index.js';

const encode = (reply: StatfsAttributes): Buffer => encodeAttributes(STATFS_ATTRIBUTE_SET, reply);

const mount: StatfsAttributes = {
  mountId: 41,
  uniqueId: 2_147_483_690n,
  mountPoint: '/srv/data dir',
  fsType: 'tmpfs',
  source: 'tmpfs',
  devMajor: 0,
  devMinor: 31,
  mntNs: 4_026_531_841,
};

const numbers: StatfsAttributes = {
  bsize: 4096n,
  frsize: 4096n,
  blocks: 1024n,
  blocksFree: 939n,
  blocksAvailable: 900n,
  files: 1000n,
  filesFree: 987n,
  fsid: 0x1234_5678_9abc_def0n,
  nameMax: 255,
  flags: StatfsFlags.valid | StatfsFlags.rdonly | StatfsFlags.relatime,
};

test('a reply with numbers: the mount, and its usage with every field and the flags by name', () => {
  const info = decodeStatfs('usip statfs', encode({ ...mount, ...numbers }));
  assert.equal(info, {
    id: 41,
    uniqueId: 2_147_483_690n,
    mountPoint: '/srv/data dir',
    fsType: 'tmpfs',
    source: 'tmpfs',
    major: 0,
    minor: 31,
    mntNs: 4_026_531_841,
    usage: {
      bsize: 4096n,
      frsize: 4096n,
      blocks: 1024n,
      blocksFree: 939n,
      blocksAvailable: 900n,
      files: 1000n,
      filesFree: 987n,
      fsid: 0x1234_5678_9abc_def0n,
      nameMax: 255,
      flags: 0x1021,
      flagNames: ['rdonly', 'valid', 'relatime'],
    },
  });
  assert.is(info.error, undefined);
});

test('a mount that timed out: error ETIMEDOUT with strerror\'s text, and no usage', () => {
  const info = decodeStatfs('usip statfs', encode({ ...mount, error: 110 }));
  assert.equal(info.error, { errno: 110, code: 'ETIMEDOUT', message: 'Connection timed out' });
  assert.is(info.usage, undefined);
  assert.equal(statfsError(107), { errno: 107, code: 'ENOTCONN', message: 'Transport endpoint is not connected' });
  assert.equal(statfsError(2), { errno: 2, code: 'ENOENT', message: 'No such file or directory' });
  assert.equal(statfsError(4095), { errno: 4095, code: 'E4095', message: 'Unknown error 4095' });
});

test('a kernel without unique ids, a source too long to show: those keys are absent', () => {
  const { uniqueId: _, source: __, ...older } = mount;
  const info = decodeStatfs('usip statfs', encode({ ...older, ...numbers }));
  assert.not.ok('uniqueId' in info);
  assert.not.ok('source' in info);
  assert.is(info.usage?.blocks, 1024n);
});

test('replies this client cannot use are refused, naming what is wrong', () => {
  const refused = (reply: StatfsAttributes | Buffer, message: RegExp) =>
    assert.throws(
      () => decodeStatfs('usip statfs', Buffer.isBuffer(reply) ? reply : encode(reply)),
      (e: unknown) => e instanceof UsipProtocolError && message.test(e.message),
      String(message),
    );
  refused({ ...mount, ...numbers, error: 110 }, /^usip statfs: mount 41 has an error \(110\) and numbers \(bsize, .*flags\)$/);
  const { blocksFree: _, files: __, ...partial } = numbers;
  refused({ ...mount, ...partial }, /^usip statfs: mount 41 has neither an error nor blocksFree, files$/);
  const { mountPoint: ___, devMinor: ____, ...anonymous } = mount;
  refused({ ...anonymous, ...numbers }, /^usip statfs: the reply lacks mountPoint, devMinor$/);
  // A u64 attribute of 4 bytes.
  const bad = Buffer.alloc(8);
  bad.writeUInt16LE(8, 0);
  bad.writeUInt16LE(StatfsAttribute.blocks, 2);
  refused(Buffer.concat([encode({ ...mount, ...numbers }), bad]), /^usip statfs: malformed reply from the module: statfs\.blocks/);
});

test('statfs targets: a mount id (number or bigint), a unique id, a path; with or without timeoutMs', () => {
  const op = 'usip statfs';
  assert.equal(statfsRequest(op, { mountId: 41 }, {}), { mountId: 41, timeoutMs: undefined });
  assert.equal(statfsRequest(op, { mountId: 41 }, undefined), { mountId: 41, timeoutMs: undefined });
  assert.equal(statfsRequest(op, { uniqueId: 2_147_483_690n }, { timeoutMs: 250 }), { uniqueId: 2_147_483_690n, timeoutMs: 250 });
  assert.equal(statfsRequest(op, { path: 'relative/dir' }, { timeoutMs: 60_000 }), { path: 'relative/dir', timeoutMs: 60_000 });
  // The request's bytes carry exactly those attributes.
  const bytes = encodeAttributes(STATFS_ATTRIBUTE_SET, statfsRequest(op, { path: '/mnt/x' }, { timeoutMs: 1 }));
  assert.equal(decodeAttributes(STATFS_ATTRIBUTE_SET, bytes), { path: '/mnt/x', timeoutMs: 1 });
  assert.is(statfsOptions(op, undefined), undefined);
});

test('bad statfs arguments throw UsipArgumentError naming the field, before anything is sent', () => {
  const op = 'usip statfs';
  const cases: [unknown, unknown, string, RegExp][] = [
    [{}, {}, 'target', /exactly one of mountId, uniqueId or path, got none/],
    [{ mountId: 1, path: '/' }, {}, 'target', /exactly one of mountId, uniqueId or path, got mountId and path/],
    [{ mountId: -1 }, {}, 'target.mountId', /expected an integer from 0 to 2147483647, got number -1/],
    [{ mountId: 2 ** 31 }, {}, 'target.mountId', /from 0 to 2147483647, got number 2147483648/],
    [{ mountId: 1.5 }, {}, 'target.mountId', /got number 1.5/],
    [{ mountId: '3' }, {}, 'target.mountId', /got "3"/],
    [{ uniqueId: 5 }, {}, 'target.uniqueId', /expected a bigint \(e\.g\. 5n\)/],
    [{ path: 'a\0b' }, {}, 'target.path', /contains a NUL character/],
    [{ path: 'x'.repeat(4096) }, {}, 'target.path', /4096 bytes long, longer than the maximum of 4095/],
    [{ path: '' }, {}, 'target.path', /is empty/],
    [{ path: 7 }, {}, 'target.path', /expected a string, got number 7/],
    [{ mountPoint: '/' }, {}, 'target.mountPoint', /unknown option; the options are mountId, uniqueId, path/],
    ['/mnt', {}, 'target', /expected an object, got "\/mnt"/],
    [{ mountId: 1 }, { timeoutMs: 0 }, 'timeoutMs', /expected an integer from 1 to 60000, got number 0/],
    [{ mountId: 1 }, { timeoutMs: 60_001 }, 'timeoutMs', /from 1 to 60000, got number 60001/],
    [{ mountId: 1 }, { timeoutMs: '1000' }, 'timeoutMs', /got "1000"/],
    [{ mountId: 1 }, { timeout: 5 }, 'timeout', /unknown option; the options are timeoutMs/],
  ];
  for (const [target, options, field, message] of cases) {
    assert.throws(
      () => statfsRequest(op, target, options),
      (e: unknown) => e instanceof UsipArgumentError && e.field === field && e.message.startsWith(`${op}: ${field}: `) && message.test(e.message),
      `${JSON.stringify(target)} ${JSON.stringify(options)}`,
    );
  }
});

test('decodeStatfs and statfsError are exported by the package', () => {
  assert.is(exported, decodeStatfs);
  assert.is(exportedError, statfsError);
});

test.run();
