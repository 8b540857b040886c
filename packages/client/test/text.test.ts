// The text helpers usip and usip-agent share: device numbers as the kernel encodes them, JSON
// with exact 64-bit values, and names quoted for people.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeDev, encodeDev, quote, toJson } from '../src/text.js';

test('encodeDev/decodeDev are new_encode_dev/new_decode_dev: small and large numbers round-trip', () => {
  assert.is(encodeDev(8, 1), 0x801);
  assert.is(decodeDev(0x801), '8:1');
  // A minor above 255 goes to the high bits, as in the kernel (259:65536 is an NVMe partition range).
  assert.is(encodeDev(259, 0x12345), 0x12310345);
  for (const [major, minor] of [[0, 0], [7, 255], [259, 256], [4095, 0xfffff]] as const) {
    assert.is(decodeDev(encodeDev(major, minor)), `${major}:${minor}`);
  }
});

test('toJson writes bigints as exact decimal strings, and indents on request', () => {
  assert.is(toJson({ seq: 18446744073709551615n, n: 1 }), '{"seq":"18446744073709551615","n":1}');
  assert.is(toJson([1n], 2), '[\n  "1"\n]');
});

test('quote: plain names as they are; others JSON-quoted, or single-quoted for the shell style', () => {
  assert.is(quote('/mnt/a,b=c'), '/mnt/a,b=c');
  assert.is(quote('/mnt/a b'), '"/mnt/a b"');
  assert.is(quote('/mnt/a\nb\\'), '"/mnt/a\\nb\\\\"');
  assert.is(quote('/mnt/x', 'shell'), '/mnt/x');
  assert.is(quote("/it's here", 'shell'), "'/it'\\''s here'");
});

test.run();
