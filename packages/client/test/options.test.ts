// register()/inject()/watch() options: checked before anything is sent, with errors naming the
// caller's field, and encoded with the real codec and generated tables into the bytes the
// module parses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ACTION_VALUES,
  Action,
  EVENT_ATTRIBUTE_SET,
  EventType,
  LISTENER_ATTRIBUTE_SET,
  NotifierFlags,
} from '../src/generated/usip.js';
import { UsipArgumentError } from '../src/errors.js';
import { decodeAttributes, encodeAttributes } from '../src/netlink/attributes.js';
import {
  ACTIONS_OF_TYPE,
  actionFromName,
  renamedValue,
  injectRequest,
  listenerId,
  mountKey,
  mountWatcherOptions,
  registerRequest,
  watchOptions,
  type InjectOptions,
  type RegisterOptions,
} from '../src/options.js';

function rejects(fn: () => unknown, field: string, pattern: RegExp | string): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, UsipArgumentError);
    const e = error as UsipArgumentError;
    assert.is(e.field, field);
    assert.is(e.code, 'USIP_INVALID_ARGUMENT');
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(field), `the message names ${field}: ${e.message}`);
    return;
  }
  assert.unreachable(`expected a UsipArgumentError on ${field}`);
}

// Options whose type the compiler would refuse, as a JavaScript caller could pass them.
const loose = <T>(value: unknown): T => value as T;

test('a notifier is encoded with notify by default, its selectors and cmd', () => {
  const { request, receiveBufferSize } = registerRequest({
    notifiers: [
      { type: 'mtab', action: 'mount', cmd: 7, pathPrefix: '/mnt', mountId: 42 },
      { type: 'storage', action: 'low-space', kernLog: true, notify: false, threshold: 10 },
    ],
  });
  assert.is(receiveBufferSize, undefined);
  assert.is(request.flags, 0);
  // Through the wire format and back: what the module will see.
  const decoded = decodeAttributes(LISTENER_ATTRIBUTE_SET, encodeAttributes(LISTENER_ATTRIBUTE_SET, request));
  assert.equal(decoded, {
    flags: 0,
    notifier: [
      { type: EventType.mtab, action: Action.mount, cmd: 7, flags: NotifierFlags.notify, mountId: 42, pathPrefix: '/mnt' },
      { type: EventType.storage, action: Action.lowSpace, flags: NotifierFlags.kernLog, threshold: 10 },
    ],
  });
});

test('global sets the listener flag; kernLog with notify sets both bits; receiveBufferSize is passed on', () => {
  const { request, receiveBufferSize } = registerRequest({
    global: true,
    notifiers: [{ type: 'mtab', action: 'umount', kernLog: true }],
    receiveBufferSize: 4096,
  });
  assert.is(request.flags, 1);
  assert.is(request.notifier?.[0]?.flags, NotifierFlags.notify | NotifierFlags.kernLog);
  assert.is(receiveBufferSize, 4096);
});

test('an action of the other type is refused, naming the notifier and both lists', () => {
  rejects(
    () => registerRequest({ notifiers: [{ type: 'mtab', action: 'mount' }, loose({ type: 'mtab', action: 'enospc' })] }),
    'notifiers[1].action',
    '"enospc" is not an mtab action; mtab actions are mount, umount, move, remount',
  );
  rejects(
    () => registerRequest({ notifiers: [loose({ type: 'storage', action: 'mount' })] }),
    'notifiers[0].action',
    'is not a storage action; storage actions are enospc, edquot, low-space, quota',
  );
});

test('missing or unknown types and actions are named', () => {
  rejects(() => registerRequest({ notifiers: [loose({ action: 'mount' })] }), 'notifiers[0].type', 'is required: one of mtab, storage');
  rejects(() => registerRequest({ notifiers: [loose({ type: 'disk', action: 'mount' })] }), 'notifiers[0].type', 'got "disk"');
  rejects(() => registerRequest({ notifiers: [loose({ type: 'mtab' })] }), 'notifiers[0].action', 'is required');
  rejects(() => registerRequest({ notifiers: [loose({ type: 'mtab', action: 'mounted' })] }), 'notifiers[0].action', 'got "mounted"');
  // One spelling, the spec's: the old camelCase one is refused with the name it has now.
  rejects(() => registerRequest({ notifiers: [loose({ type: 'storage', action: 'lowSpace' })] }), 'notifiers[0].action', '"lowSpace" is now called "low-space"');
});

test('a listener needs notifiers, and each notifier must do something', () => {
  rejects(() => registerRequest({ notifiers: [] }), 'notifiers', 'at least one notifier');
  rejects(() => registerRequest(loose({})), 'notifiers', 'expected an array');
  rejects(() => registerRequest(loose({ notifiers: {} })), 'notifiers', 'expected an array of notifiers, got an object');
  rejects(
    () => registerRequest({ notifiers: [{ type: 'mtab', action: 'mount', notify: false }] }),
    'notifiers[0]',
    'notify and kernLog are both false',
  );
  rejects(() => registerRequest(loose({ notifiers: [null] })), 'notifiers[0]', 'expected an object, got null');
});

test('selectors and cmd are checked against the spec limits', () => {
  const one = (extra: object): RegisterOptions => loose({ notifiers: [{ type: 'storage', action: 'low-space', ...extra }] });
  rejects(() => registerRequest(one({ threshold: 101 })), 'notifiers[0].threshold', 'from 1 to 100, got number 101');
  rejects(() => registerRequest(one({ threshold: 1.5 })), 'notifiers[0].threshold', 'integer');
  rejects(() => registerRequest(one({ cmd: -1 })), 'notifiers[0].cmd', 'from 0 to 4294967295');
  rejects(() => registerRequest(one({ cmd: 2 ** 32 })), 'notifiers[0].cmd', 'from 0 to 4294967295');
  // Mount ids are numbers, bounded by the spec's mount-id-max (the kernel's ids are ints).
  rejects(() => registerRequest(one({ mountId: 42n })), 'notifiers[0].mountId', 'expected an integer from 0 to 2147483647, got 42n');
  rejects(() => registerRequest(one({ mountId: -1 })), 'notifiers[0].mountId', 'from 0 to 2147483647');
  rejects(() => registerRequest(one({ mountId: 2 ** 31 })), 'notifiers[0].mountId', 'from 0 to 2147483647, got number 2147483648');
  rejects(() => registerRequest(one({ pathPrefix: 'mnt' })), 'notifiers[0].pathPrefix', 'must be an absolute path');
  rejects(() => registerRequest(one({ pathPrefix: '/a\0b' })), 'notifiers[0].pathPrefix', 'NUL');
  rejects(() => registerRequest(one({ pathPrefix: `/${'a'.repeat(4095)}` })), 'notifiers[0].pathPrefix', '4096 bytes long, longer than the maximum of 4095');
  rejects(() => registerRequest(one({ notify: 'yes' })), 'notifiers[0].notify', 'expected true or false, got "yes"');
  // The limits that pass are the spec's own.
  const { request } = registerRequest(one({ threshold: 100, cmd: 0xffffffff, mountId: 0x7fffffff, pathPrefix: `/${'a'.repeat(4094)}` }));
  assert.is(request.notifier?.[0]?.threshold, 100);
});

test('low-space notifiers: one threshold of three kinds, hysteresis and interval, encoded as the module reads them', () => {
  const { request } = registerRequest({
    notifiers: [
      { type: 'storage', action: 'low-space', thresholdBytes: 1n << 30n, hysteresis: 20, intervalMs: 500, pathPrefix: '/var' },
      { type: 'storage', action: 'low-space', thresholdInodes: 5 },
    ],
  });
  const decoded = decodeAttributes(LISTENER_ATTRIBUTE_SET, encodeAttributes(LISTENER_ATTRIBUTE_SET, request));
  assert.equal(decoded.notifier, [
    { type: EventType.storage, action: Action.lowSpace, flags: NotifierFlags.notify, pathPrefix: '/var', thresholdBytes: 1n << 30n, hysteresis: 20, intervalMs: 500 },
    { type: EventType.storage, action: Action.lowSpace, flags: NotifierFlags.notify, thresholdInodes: 5 },
  ]);
});

test('low-space rules, as the module has them: exactly one threshold, not 0, in range, on low-space notifiers only', () => {
  const low = (extra: object): RegisterOptions => loose({ notifiers: [{ type: 'storage', action: 'low-space', ...extra }] });
  rejects(() => registerRequest(low({})), 'notifiers[0]', 'needs exactly one of threshold, thresholdInodes, thresholdBytes');
  rejects(() => registerRequest(low({ threshold: 5, thresholdBytes: 1n })), 'notifiers[0]', 'got threshold and thresholdBytes');
  rejects(() => registerRequest(low({ threshold: 0 })), 'notifiers[0].threshold', 'a threshold of 0 can never be crossed');
  rejects(() => registerRequest(low({ thresholdBytes: 0n })), 'notifiers[0].thresholdBytes', 'a threshold of 0');
  rejects(() => registerRequest(low({ thresholdInodes: 101 })), 'notifiers[0].thresholdInodes', 'from 1 to 100');
  rejects(() => registerRequest(low({ thresholdBytes: 5 })), 'notifiers[0].thresholdBytes', 'expected a bigint');
  rejects(() => registerRequest(low({ threshold: 5, hysteresis: 1001 })), 'notifiers[0].hysteresis', 'from 0 to 1000');
  rejects(() => registerRequest(low({ threshold: 5, intervalMs: 99 })), 'notifiers[0].intervalMs', 'from 100 to 3600000');
  rejects(() => registerRequest(low({ threshold: 5, intervalMs: 3_600_001 })), 'notifiers[0].intervalMs', 'from 100 to 3600000');
  rejects(
    () => registerRequest({ notifiers: [{ type: 'storage', action: 'enospc', threshold: 10 }] }),
    'notifiers[0].threshold',
    'only a low-space notifier takes',
  );
  rejects(
    () => registerRequest({ notifiers: [{ type: 'mtab', action: 'mount', intervalMs: 500 }] }),
    'notifiers[0].intervalMs',
    'only a low-space notifier takes',
  );
});

test('unknown options are refused by name (typos do not pass silently)', () => {
  rejects(() => registerRequest(loose({ notifiers: [{ type: 'mtab', action: 'mount', pathprefix: '/x' }] })), 'notifiers[0].pathprefix', 'unknown option');
  rejects(() => registerRequest(loose({ global: true, notifier: [] })), 'notifier', 'unknown option; the options are global, notifiers, receiveBufferSize, signal');
  rejects(() => registerRequest(loose({ global: 1, notifiers: [{ type: 'mtab', action: 'mount' }] })), 'global', 'expected true or false');
  rejects(() => registerRequest({ notifiers: [{ type: 'mtab', action: 'mount' }], receiveBufferSize: 0 }), 'receiveBufferSize', 'from 1 to');
});

test('register takes an AbortSignal as signal, and refuses anything else by name', () => {
  const { signal } = new AbortController();
  assert.is(registerRequest({ notifiers: [{ type: 'mtab', action: 'mount' }], signal }).signal, signal);
  assert.is(registerRequest({ notifiers: [{ type: 'mtab', action: 'mount' }] }).signal, undefined);
  rejects(() => registerRequest(loose({ notifiers: [{ type: 'mtab', action: 'mount' }], signal: { aborted: false } })), 'signal', 'usip listener-register: signal must be an AbortSignal');
});

test('inject: type and action, optional event fields, repeat bounds from the spec', () => {
  const request = injectRequest({ type: 'mtab', action: 'mount', path: '/mnt/a', mountId: 42, parentId: 1, fsType: 'tmpfs', source: 'none', dev: 0x1234, repeat: 3 });
  const decoded = decodeAttributes(EVENT_ATTRIBUTE_SET, encodeAttributes(EVENT_ATTRIBUTE_SET, request));
  assert.equal(decoded, { type: 1, action: 1, mountId: 42, parentId: 1, path: '/mnt/a', fsType: 'tmpfs', source: 'none', dev: 0x1234, repeat: 3 });
  assert.equal(injectRequest({ type: 'storage', action: 'enospc', count: 5 }), { type: 2, action: 5, count: 5 } as object);
  const inject = (o: object) => injectRequest(loose<InjectOptions>(o));
  rejects(() => inject({ type: 'mtab', action: 'enospc' }), 'action', '"enospc" is not an mtab action');
  rejects(() => inject({ type: 'mtab', action: 'mount', repeat: 0 }), 'repeat', 'from 1 to 65536, got number 0');
  rejects(() => inject({ type: 'mtab', action: 'mount', repeat: 65537 }), 'repeat', 'from 1 to 65536');
  rejects(() => inject({ type: 'storage', action: 'enospc', count: 0 }), 'count', 'from 1 to');
  rejects(() => inject({ type: 'mtab', action: 'mount', fsType: 'x'.repeat(64) }), 'fsType', 'longer than the maximum of 63');
  rejects(() => inject({ type: 'mtab', action: 'mount', listenerId: 3 }), 'listenerId', 'unknown option');
  assert.is(injectRequest({ type: 'mtab', action: 'mount', repeat: 65536 }).repeat, 65536);
  rejects(() => inject({ type: 'mtab', action: 'mount', parentId: 2 ** 31 }), 'parentId', 'from 0 to 2147483647');
  // A low-space event carries a space-state, which an injection cannot give it.
  rejects(() => inject({ type: 'storage', action: 'low-space' }), 'action', 'low-space events cannot be injected');
});

test('watch options and listener ids', () => {
  assert.equal(watchOptions('mtab', undefined), { group: 'mtab', receiveBufferSize: undefined, signal: undefined });
  assert.equal(watchOptions('storage', { receiveBufferSize: 1024 }), { group: 'storage', receiveBufferSize: 1024, signal: undefined });
  const { signal } = new AbortController();
  assert.is(watchOptions('mtab', { signal }).signal, signal);
  rejects(() => watchOptions('mtab', loose({ signal: 'later' })), 'signal', 'usip watch: signal must be an AbortSignal');
  rejects(() => watchOptions('events', {}), 'group', 'expected one of mtab, storage, got "events"');
  rejects(() => watchOptions('mtab', { bufferSize: 1 }), 'bufferSize', 'unknown option');
  assert.is(listenerId('op', 1), 1);
  rejects(() => listenerId('usip listener-unregister', 0), 'id', 'usip listener-unregister: id: expected a listener id');
  rejects(() => listenerId('op', '3'), 'id', 'got "3"');
});

test('mount(): a mount id or { uniqueId }, checked before anything is sent', () => {
  const op = 'usip mount-get';
  assert.equal(mountKey(op, 27), { mountId: 27 });
  assert.equal(mountKey(op, 0), { mountId: 0 });
  assert.equal(mountKey(op, { uniqueId: 0x80000001n }), { uniqueId: 0x80000001n });
  rejects(() => mountKey(op, -1), 'id', 'usip mount-get: id: expected an integer from 0 to 2147483647, got number -1');
  rejects(() => mountKey(op, 2 ** 31), 'id', 'got number 2147483648');
  rejects(() => mountKey(op, 1.5), 'id', 'got number 1.5');
  rejects(() => mountKey(op, loose('27')), 'id', 'expected a mount id (a number) or { uniqueId: bigint }, got "27"');
  rejects(() => mountKey(op, loose(27n)), 'id', 'got 27n');
  rejects(() => mountKey(op, loose({})), 'id.uniqueId', 'is required: a bigint');
  rejects(() => mountKey(op, loose({ uniqueId: 5 })), 'id.uniqueId', 'expected a bigint (e.g. 5n), got number 5');
  rejects(() => mountKey(op, loose({ uniqueId: 1n << 64n })), 'id.uniqueId', 'expected a value from 0 to 18446744073709551615');
  rejects(() => mountKey(op, loose({ uniqueId: 1n, mountId: 2 })), 'id.mountId', 'unknown option; the options are uniqueId');
});

test('watchMounts(): a 4 MiB receive buffer unless told otherwise, and nothing else', () => {
  assert.equal(mountWatcherOptions(undefined), { receiveBufferSize: 4 * 1024 * 1024 });
  assert.equal(mountWatcherOptions({ receiveBufferSize: 65536 }), { receiveBufferSize: 65536 });
  rejects(() => mountWatcherOptions({ receiveBufferSize: 0 }), 'receiveBufferSize', 'usip watch-mounts: receiveBufferSize: expected a number of bytes from 1');
  rejects(() => mountWatcherOptions({ global: true }), 'global', 'unknown option; the options are receiveBufferSize');
});

test('action names: each type has its own actions, and spec spellings map to keys', () => {
  const all = [...ACTIONS_OF_TYPE.mtab, ...ACTIONS_OF_TYPE.storage].sort();
  assert.equal(all, Object.keys(ACTION_VALUES).sort(), 'every action belongs to exactly one type');
  assert.is(actionFromName('low-space'), 'low-space');
  assert.is(actionFromName('lowSpace'), undefined);
  assert.is(actionFromName('mount'), 'mount');
  assert.is(actionFromName('Mount'), undefined);
  assert.is(actionFromName('toString'), undefined);
  assert.is(renamedValue('lowSpace', Object.keys(ACTION_VALUES)), 'low-space');
  assert.is(renamedValue('mntNs', ['mnt-ns', 'global']), 'mnt-ns');
  assert.is(renamedValue('mnt-ns', ['mnt-ns', 'global']), undefined);
  assert.is(renamedValue('mounted', Object.keys(ACTION_VALUES)), undefined);
});

test.run();
