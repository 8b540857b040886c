// Events as the agent hands them on, notifier matching and what a file registers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventItem, protocol, type ListenerEvent } from '@usip/client';
import {
  decodeDev,
  environmentName,
  eventEnvironment,
  eventJson,
  notifierMatches,
  parseNotifierFile,
  pathWithin,
  registerOptions,
  toJsonText,
} from '../src/index.js';

/** An event as the client decodes it from the module's attributes. */
function decoded(operation: 'mtab-event' | 'storage-event', attributes: protocol.EventAttributes): ListenerEvent {
  const item = eventItem(operation, attributes, true);
  if (item.kind === 'unknown-event') throw new Error('unknown event');
  return item;
}

const lowSpace = decoded('storage-event', {
  listenerId: 9,
  seq: 18446744073709551615n,
  missed: 2,
  type: protocol.EventType.storage,
  action: protocol.Action.lowSpace,
  timestamp: 1n,
  mntNs: 4026531841,
  mountId: 5,
  path: '/srv',
  dev: 0x10082c,
  count: 3,
  spaceState: protocol.SpaceState.mountGone,
});

test('eventJson: spec names for type, action and space state, 64-bit counters as exact strings', () => {
  const json = eventJson(lowSpace);
  assert.equal(json, {
    kind: 'storage-event',
    listenerId: 9,
    seq: '18446744073709551615',
    missed: 2,
    type: 'storage',
    action: 'low-space',
    timestamp: '1',
    mntNs: 4026531841,
    mountId: 5,
    path: '/srv',
    dev: 0x10082c,
    count: 3,
    spaceState: 'mount-gone',
  });
  assert.is(toJsonText({ a: 2n ** 64n }), '{"a":"18446744073709551616"}');
});

test('eventEnvironment: one USIP_EVENT_ variable per attribute, the device as MAJOR:MINOR', () => {
  assert.equal(eventEnvironment(eventJson(lowSpace)), {
    USIP_EVENT_KIND: 'storage-event',
    USIP_EVENT_LISTENER_ID: '9',
    USIP_EVENT_SEQ: '18446744073709551615',
    USIP_EVENT_MISSED: '2',
    USIP_EVENT_TYPE: 'storage',
    USIP_EVENT_ACTION: 'low-space',
    USIP_EVENT_TIMESTAMP: '1',
    USIP_EVENT_MNT_NS: '4026531841',
    USIP_EVENT_MOUNT_ID: '5',
    USIP_EVENT_PATH: '/srv',
    USIP_EVENT_DEV: '8:300',
    USIP_EVENT_COUNT: '3',
    USIP_EVENT_SPACE_STATE: 'mount-gone',
  });
  assert.is(environmentName('nsSeq'), 'USIP_EVENT_NS_SEQ');
  assert.is(decodeDev(0x803), '8:3');
});

test('pathWithin: whole path components, like the module', () => {
  assert.ok(pathWithin('/mnt', '/mnt'));
  assert.ok(pathWithin('/mnt/a', '/mnt'));
  assert.ok(pathWithin('/mnt/a', '/mnt/'));
  assert.not.ok(pathWithin('/mnta', '/mnt'));
  assert.not.ok(pathWithin('/', '/mnt'));
  assert.ok(pathWithin('/anything', '/'));
});

test('notifierMatches: type, action (spec spelling in files) and path prefix', () => {
  const mount = decoded('mtab-event', {
    listenerId: 1,
    seq: 1n,
    missed: 0,
    type: protocol.EventType.mtab,
    action: protocol.Action.mount,
    timestamp: 1n,
    mntNs: 1,
    pid: 1,
    uid: 0,
    path: '/srv/a',
  });
  assert.ok(notifierMatches({ type: 'mtab', action: 'mount' }, mount));
  assert.ok(notifierMatches({ type: 'mtab', action: 'mount', pathPrefix: '/srv' }, mount));
  assert.not.ok(notifierMatches({ type: 'mtab', action: 'mount', pathPrefix: '/sr' }, mount));
  assert.not.ok(notifierMatches({ type: 'mtab', action: 'umount' }, mount));
  assert.not.ok(notifierMatches({ type: 'mtab', action: 'mount', notify: false, kernLog: true }, mount));
  assert.ok(notifierMatches({ type: 'storage', action: 'low-space' }, lowSpace));
  // A low-space event is for the one notifier whose threshold was crossed: its cmd is its index.
  const crossed = { ...(lowSpace as object), cmd: 1 } as unknown as ListenerEvent;
  assert.ok(notifierMatches({ type: 'storage', action: 'low-space', threshold: 5 }, crossed, 1));
  assert.not.ok(notifierMatches({ type: 'storage', action: 'low-space', threshold: 50 }, crossed, 0));
  const pathless = { ...mount, path: undefined } as unknown as ListenerEvent;
  assert.not.ok(notifierMatches({ type: 'mtab', action: 'mount', pathPrefix: '/' }, pathless), 'a path prefix needs a path');
});

test('registerOptions: the scope, and each notifier with its index as cmd', () => {
  const file = parseNotifierFile(
    '/etc/usip.d/x.json',
    JSON.stringify({
      scope: 'global',
      notifiers: [
        { type: 'storage', action: 'low-space', kernLog: true, notify: false, threshold: 10 },
        { type: 'storage', action: 'low-space', pathPrefix: '/var', thresholdBytes: 1 << 30, hysteresis: 0, intervalMs: 250 },
        { type: 'mtab', action: 'umount', pathPrefix: '/srv', run: ['logger', 'gone'], timeoutSeconds: 2 },
      ],
    }),
  );
  assert.equal(registerOptions(file), {
    global: true,
    notifiers: [
      { type: 'storage', action: 'low-space', cmd: 0, notify: false, kernLog: true, threshold: 10 },
      { type: 'storage', action: 'low-space', cmd: 1, pathPrefix: '/var', thresholdBytes: 1n << 30n, hysteresis: 0, intervalMs: 250 },
      { type: 'mtab', action: 'umount', cmd: 2, pathPrefix: '/srv' },
    ],
  });
  assert.is(registerOptions(parseNotifierFile('/y.json', '{"notifiers":[{"type":"mtab","action":"move"}]}')).global, false);
});

test.run();
