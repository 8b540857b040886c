// Parser and validator: every bad spec gets an error naming the file, the place and the rule.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpecError, loadSpecText, type SpecProblem } from '../src/index.js';

const MINIMAL = readFileSync(fileURLToPath(new URL('./fixtures/minimal.yaml', import.meta.url)), 'utf8');
const FULL = readFileSync(fileURLToPath(new URL('./fixtures/full.yaml', import.meta.url)), 'utf8');

function problemsOf(text: string): SpecProblem[] {
  try {
    loadSpecText(text, { file: 'bad.yaml' });
  } catch (err) {
    assert.instance(err, SpecError);
    return [...(err as SpecError).problems];
  }
  assert.unreachable('the spec was accepted');
  return [];
}

/** Asserts one problem at `pointer` with `rule` whose message matches, and returns it. */
function expectProblem(text: string, pointer: string, rule: string, message: RegExp): SpecProblem {
  const problems = problemsOf(text);
  const found = problems.find((p) => p.pointer === pointer && p.rule === rule);
  if (found === undefined) {
    assert.unreachable(`no problem at ${pointer} (${rule}); got:\n${problems.map((p) => `${p.pointer} (${p.rule}): ${p.message}`).join('\n')}`);
    throw new Error('unreachable');
  }
  assert.match(found.message, message);
  assert.is(found.file, 'bad.yaml');
  return found;
}

const edit = (from: string, to: string, text = MINIMAL): string => {
  assert.ok(text.includes(from), `fixture lacks ${JSON.stringify(from)}`);
  return text.replace(from, to);
};

test('the fixtures are valid', () => {
  assert.is(loadSpecText(MINIMAL, { file: 'minimal.yaml' }).name, 'mini');
  assert.is(loadSpecText(FULL, { file: 'full.yaml' }).name, 'full');
});

test('an unknown key is named with its JSON pointer, line and the keys allowed there', () => {
  const p = expectProblem(edit('        type: u32\n', '        type: u32\n        tpye: u64\n'), '/attribute-sets/0/attributes/0/tpye', 'additionalProperties', /unknown key "tpye"; allowed here: name, type, doc/);
  assert.is(p.line, 12);
  assert.ok((p.column ?? 0) > 0);
});

test('the error message says file:line:col, pointer, message and rule', () => {
  try {
    loadSpecText(edit('protocol: genetlink', 'protocol: genetlink-legacy'), { file: 'x/bad.yaml' });
    assert.unreachable('accepted');
  } catch (err) {
    assert.match((err as Error).message, /^x\/bad\.yaml:2:11: \/protocol: "genetlink-legacy" must be "genetlink" \(rule: const\)$/);
  }
});

test('a bad attribute type lists the types we support', () => {
  expectProblem(edit('type: u32', 'type: u128'), '/attribute-sets/0/attributes/0/type', 'enum', /"u128" is not one of: pad, flag, binary, u8/);
  // uint/sint need NLA_UINT, which Linux 6.1 does not have.
  expectProblem(edit('type: u32', 'type: uint'), '/attribute-sets/0/attributes/0/type', 'enum', /"uint" is not one of/);
});

test('missing required keys are named', () => {
  expectProblem(edit('        doc: A number.\n', ''), '/attribute-sets/0/attributes/0', 'required', /missing required key "doc"/);
  expectProblem(edit('doc: The smallest useful family.\n', ''), '', 'required', /missing required key "doc"/);
});

test('names must be lower-case-with-dashes, and the family name fits GENL_NAMSIZ', () => {
  expectProblem(edit('name: value', 'name: Value_1'), '/attribute-sets/0/attributes/0/name', 'pattern', /"Value_1" does not match/);
  expectProblem(edit('name: mini', 'name: a-very-long-family-name'), '/name', 'maxLength', /must NOT have more than 15 characters/);
});

test('wrong value types are reported with the value', () => {
  expectProblem(edit('        doc: A number.\n', '        doc: A number.\n        multi-attr: "yes"\n'), '/attribute-sets/0/attributes/0/multi-attr', 'type', /"yes" must be of type boolean/);
  expectProblem(edit('        doc: A number.\n', '        doc: A number.\n        checks:\n          max: u33-max\n'), '/attribute-sets/0/attributes/0/checks/max', 'reference', /"u33-max" is neither a type limit \(such as u32-max\) nor a const definition/);
});

test('YAML syntax errors and duplicate keys carry a line', () => {
  const syntax = problemsOf('name: x\n  bad: [\n');
  assert.is(syntax[0]?.rule, 'yaml');
  assert.ok((syntax[0]?.line ?? 0) >= 1);
  const dup = problemsOf(edit('protocol: genetlink\n', 'protocol: genetlink\nprotocol: genetlink\n'));
  assert.is(dup[0]?.rule, 'yaml');
  assert.is(dup[0]?.line, 3);
  assert.match(dup[0]?.message ?? '', /unique/i);
});

test('all problems are reported at once', () => {
  const text = edit('type: u32', 'type: u128', edit('name: get', 'name: Get', MINIMAL));
  const problems = problemsOf(text);
  assert.ok(problems.some((p) => p.pointer === '/attribute-sets/0/attributes/0/type'));
  assert.ok(problems.some((p) => p.pointer === '/operations/list/0/name'));
});

test('references: unknown attributes, sets, enums, groups and notify targets', () => {
  expectProblem(edit('attributes: [ value ]', 'attributes: [ value, colour ]'), '/operations/list/0/do/reply/attributes/1', 'reference', /"colour" is not an attribute of set "main"/);
  expectProblem(edit('attribute-set: main', 'attribute-set: other'), '/operations/list/0/attribute-set', 'reference', /"other" is not an attribute set/);
  expectProblem(edit('name: peers\n        type: nest\n        multi-attr: true\n        nested-attributes: endpoint', 'name: peers\n        type: nest\n        multi-attr: true\n        nested-attributes: nowhere', FULL), '/attribute-sets/1/attributes/13/nested-attributes', 'reference', /"nowhere" is not an attribute set/);
  expectProblem(edit('enum: colour', 'enum: name-len', FULL), '/attribute-sets/1/attributes/2/enum', 'reference', /"name-len" is not an enum or flags definition/);
  expectProblem(edit('flags-mask: opt', 'flags-mask: colour', FULL), '/attribute-sets/1/attributes/3/checks/flags-mask', 'reference', /"colour" is an enum; a flags-mask needs a flags definition/);
  expectProblem(edit('mcgrp: events\n    -', 'mcgrp: nope\n    -', FULL), '/operations/list/3/mcgrp', 'reference', /"nope" is not a multicast group/);
  expectProblem(edit('notify: get', 'notify: set', FULL), '/operations/list/4/notify', 'reference', /"set" is not an operation with a reply to share/);
  expectProblem(edit('max-len: name-len', 'max-len: no-such', FULL), '/attribute-sets/0/attributes/1/checks/max-len', 'reference', /"no-such" is not a const definition/);
});

test('unique names and values', () => {
  expectProblem(edit('    -\n      name: list\n', '    -\n      name: get\n', FULL), '/operations/list/2/name', 'unique-name', /operation "get" is already defined at \/operations\/list\/0/);
  expectProblem(edit('value: 10\n', 'value: 3\n', FULL), '/attribute-sets/1/attributes/7', 'unique-value', /attribute "note" has id 3, already used by "colour"/);
  expectProblem(edit('      value: 5\n', '      value: 1\n', FULL), '/operations/list/1', 'unique-value', /operation "set" has command 1, already used by "get"/);
  expectProblem(edit('{ name: blue, value: 7', '{ name: blue, value: 2', FULL), '/definitions/1/entries/2', 'unique-value', /entry "blue" has the value 2 of entry 1/);
});

test('checks must fit the attribute type', () => {
  expectProblem(edit('        doc: A number.\n', '        doc: A number.\n        checks:\n          max-len: 4\n'), '/attribute-sets/0/attributes/0/checks/max-len', 'checks', /"max-len" applies to string and binary attributes, not to u32 attribute "value"/);
  expectProblem(edit('        doc: A number.\n', '        doc: A number.\n        checks:\n          min: 5\n          max: 4\n'), '/attribute-sets/0/attributes/0/checks', 'checks', /min 5 is larger than max 4/);
  expectProblem(edit('        doc: A number.\n', '        doc: A number.\n        checks:\n          max: u64-max\n'), '/attribute-sets/0/attributes/0/checks/max', 'checks', /max u64-max is outside the range of u32/);
  expectProblem(edit('exact-len: 32', 'exact-len: 32\n          min-len: 1', FULL), '/attribute-sets/1/attributes/5/checks/exact-len', 'checks', /cannot be combined/);
  expectProblem(edit('name: small\n        type: s8', 'name: small\n        type: s8\n        enum: colour', FULL), '/attribute-sets/1/attributes/9/enum', 'enum', /only unsigned integer attributes can use an enum/);
});

test('64-bit attributes need a pad attribute, and one pad is enough', () => {
  const noPad = edit('      -\n        name: pad\n        type: pad\n        doc: Padding.\n', '', FULL);
  expectProblem(noPad, '/attribute-sets/1', 'u64-needs-pad', /has the 64-bit attribute "id" but no pad attribute/);
  const twoPads = edit('        name: raw\n', '        name: pad2\n        type: pad\n        doc: More padding.\n      -\n        name: raw\n', FULL);
  expectProblem(twoPads, '/attribute-sets/1', 'pad', /has 2 pad attributes/);
  expectProblem(edit('attributes: [ id ]\n', 'attributes: [ id, pad ]\n', FULL), '/operations/list/2/dump/reply/attributes/1', 'reference', /"pad" is a pad attribute/);
});

test('nests: a nest needs its set, others may not have one, cycles are refused', () => {
  expectProblem(edit('        type: u32\n', '        type: nest\n'), '/attribute-sets/0/attributes/0', 'nested-attributes', /nest "value" needs "nested-attributes"/);
  expectProblem(edit('        type: u32\n', '        type: u32\n        nested-attributes: main\n'), '/attribute-sets/0/attributes/0/nested-attributes', 'nested-attributes', /only nest attributes have nested attributes/);
  const cycle = edit('        name: host\n        type: string\n        doc: Host name.\n        checks:\n          max-len: name-len\n', '        name: back\n        type: nest\n        nested-attributes: item\n        doc: Back to item.\n', FULL);
  const problems = problemsOf(cycle);
  assert.ok(problems.some((p) => p.rule === 'nest-cycle' && /(item → endpoint → item|endpoint → item → endpoint)/.test(p.message)), problems.map((p) => p.message).join('\n'));
});

test('definitions: const needs a value and takes no entries; flags fit in 32 bits', () => {
  expectProblem(edit('    value: 16\n', '', FULL), '/definitions/0', 'const-value', /const "name-len" needs a value/);
  expectProblem(edit('    value: 16\n', '    value: 16\n    entries: [ a ]\n', FULL), '/definitions/0/entries', 'const-keys', /"entries" is for enum and flags definitions/);
  expectProblem(edit('{ name: high, value: 31 }', '{ name: high, value: 32 }', FULL), '/definitions/2/entries/2', 'flag-bit', /would be bit 32/);
  expectProblem(edit('    render-max: true\n    entries: [ read, write ]', '    render-max: true\n    value: 3', FULL), '/definitions/3', 'enum-entries', /flags "mode" needs "entries"/);
});

test('operations: kinds, permissions and multicast groups must make sense', () => {
  expectProblem(edit('      do:\n        reply:\n          attributes: [ value ]\n', ''), '/operations/list/0', 'operation-kind', /needs "do", "dump", "event" or "notify"/);
  expectProblem(edit('      attribute-set: main\n', ''), '/operations/list/0', 'attribute-set', /has messages and needs an "attribute-set"/);
  expectProblem(edit('      notify: get\n', '      notify: get\n      flags: [ admin-perm ]\n', FULL), '/operations/list/4/flags', 'flags', /permission flags apply to requests/);
  expectProblem(edit('      attribute-set: main\n', '      attribute-set: main\n      mcgrp: x\n'), '/operations/list/0/mcgrp', 'mcgrp', /only notifications/);
  expectProblem(edit('      flags: [ admin-perm ]\n', '      flags: [ root ]\n', FULL), '/operations/list/0/flags/0', 'enum', /"root" is not one of: admin-perm, uns-admin-perm/);
  expectProblem(edit('big-endian', 'little-endian', edit('        name: modes\n        type: u8\n', '        name: modes\n        type: u8\n        byte-order: big-endian\n', FULL)), '/attribute-sets/1/attributes/4/byte-order', 'byte-order', /big-endian is supported for u16 and u32 only/);
});

test("multicast groups: only the kernel schema's name and flags [admin-perm], and each carries an operation", () => {
  // The kernel's genetlink.yaml has no doc on a group: the docs of the operations sent to it say
  // what it carries.
  const doc = expectProblem(edit('      name: events\n', '      name: events\n      doc: Item events.\n', FULL), '/mcast-groups/list/0/doc', 'additionalProperties', /^unknown key "doc"; allowed here: name, flags$/);
  assert.is(doc.line, 219);
  // Its flags take admin-perm only (which becomes GENL_MCAST_CAP_SYS_ADMIN), not a capability name.
  expectProblem(edit('name: other\n      flags: [ admin-perm ]', 'name: other\n      flags: [ cap-sys-admin ]', FULL), '/mcast-groups/list/1/flags/0', 'enum', /"cap-sys-admin" is not one of: admin-perm$/);
  expectProblem(edit('name: other\n      flags: [ admin-perm ]', 'name: other\n      flags: [ uns-admin-perm ]', FULL), '/mcast-groups/list/1/flags/0', 'enum', /"uns-admin-perm" is not one of: admin-perm$/);
  // A group no event or notification is sent to would say nothing about itself.
  expectProblem(edit('      mcgrp: other\n', '      mcgrp: events\n', FULL), '/mcast-groups/list/1', 'mcgrp-unused', /multicast group "other" carries no operation: name it in the "mcgrp" of the events or notifications sent to it/);
});

test('dump hooks: pre/post take YNL names, are not generated handlers, and are refused on do', () => {
  // A name in YNL's dash style: lower-case letters, digits and dashes, starting with a letter.
  const badName = expectProblem(edit('pre: full-nl-list-start', 'pre: Full_nl_list_start', FULL), '/operations/list/2/dump/pre', 'pattern', /"Full_nl_list_start" does not match/);
  assert.is(badName.line, 199);
  expectProblem(edit('pre: full-nl-list-start', 'pre: 1st-start', FULL), '/operations/list/2/dump/pre', 'pattern', /"1st-start" does not match/);
  expectProblem(edit('pre: full-nl-list-start', 'pre: full-nl-list-start-', FULL), '/operations/list/2/dump/pre', 'pattern', /does not match/);
  expectProblem(edit('post: full-nl-dump-done\n        reply', 'post: [ done ]\n        reply', FULL), '/operations/list/2/dump/post', 'type', /must be of type string/);
  // Its C name would be a handler with another prototype.
  expectProblem(edit('pre: full-nl-list-start', 'pre: full-nl-get-dumpit', FULL), '/operations/list/2/dump/pre', 'hook-name', /"full_nl_get_dumpit" is the generated handler of operation "get"/);
  // On a do, pre/post would be per-op pre_doit/post_doit, which struct genl_ops lacks on 6.1.
  const onDo = edit('      do:\n        reply:\n', '      do:\n        pre: mini-pre-doit\n        post: mini-post-doit\n        reply:\n');
  const pre = expectProblem(onDo, '/operations/list/0/do/pre', 'do-pre-post', /^"pre" is supported on "dump" only \(where it becomes the op's \.start\): struct genl_ops has no per-op pre_doit\/post_doit on Linux 6\.1/);
  assert.is(pre.line, 20);
  expectProblem(onDo, '/operations/list/0/do/post', 'do-pre-post', /"post" is supported on "dump" only/);
  // Notifications have no hooks at all.
  expectProblem(edit('      notify: get\n', '      notify: get\n      pre: x\n', FULL), '/operations/list/4/pre', 'additionalProperties', /unknown key "pre"/);
});

test('YAML anchors and aliases: an aliased message is read, and errors in it point at the anchor', () => {
  const anchored = edit('        reply:\n          attributes: [ id, colour ]\n', '        reply: &dump-reply\n          attributes: [ id, colour ]\n', FULL);
  const aliased = edit('        reply:\n          attributes: [ id ]\n', '        reply: *dump-reply\n', anchored);
  const family = loadSpecText(aliased, { file: 'aliased.yaml' });
  assert.equal(family.operations.find((op) => op.name === 'list')?.dump?.reply?.map((a) => a.name), ['id', 'colour']);
  const bad = edit('attributes: [ id, colour ]\n', 'attributes: [ id, colour, nope ]\n', aliased);
  const problems = problemsOf(bad);
  const direct = problems.find((p) => p.pointer === '/operations/list/0/dump/reply/attributes/2');
  const viaAlias = problems.find((p) => p.pointer === '/operations/list/2/dump/reply/attributes/2');
  assert.ok(direct !== undefined && viaAlias !== undefined, problems.map((p) => `${p.pointer}: ${p.message}`).join('\n'));
  assert.is(viaAlias?.line, direct?.line);
  assert.is(viaAlias?.column, direct?.column);
});


test('limits: a check may name a const (uapi scope), and a 64-bit value bounded below 2^53 is a safe number', () => {
  const withConst = (value: string, scope = ''): string =>
    edit(
      'attribute-sets:\n',
      `definitions:\n  -\n    type: const\n    name: id-max\n    value: ${value}\n    doc: The largest id.\n${scope}attribute-sets:\n`,
      edit('        type: u32\n        doc: A number.\n', '        type: u64\n        doc: A number.\n        checks:\n          max: id-max\n      -\n        name: pad\n        type: pad\n        doc: Padding.\n'),
    );
  const family = loadSpecText(withConst('2147483647'), { file: 'ok.yaml' });
  const attr = family.attributeSets[0]?.attributes[0];
  assert.is(attr?.checks.max?.value, 2147483647n);
  assert.is(attr?.checks.max?.define?.cName, 'MINI_ID_MAX');
  assert.is(attr?.safeNumber, true);
  // 2^53 itself no longer fits a double exactly.
  assert.is(loadSpecText(withConst('9007199254740992'), { file: 'ok.yaml' }).attributeSets[0]?.attributes[0]?.safeNumber, false);
  assert.is(loadSpecText(withConst('9007199254740991'), { file: 'ok.yaml' }).attributeSets[0]?.attributes[0]?.safeNumber, true);
  expectProblem(withConst('1', '    scope: user\n'), '/attribute-sets/0/attributes/0/checks/max', 'reference', /must be in the uapi header/);
  expectProblem(
    edit('        doc: A number.\n', '        doc: A number.\n        checks:\n          max: no-such-const\n'),
    '/attribute-sets/0/attributes/0/checks/max',
    'reference',
    /"no-such-const" is neither a type limit/,
  );
});

test('actions of each type: an enum <type>-action per event type, a subset of action with its values', () => {
  const spec = (mtab: string, storage: string | undefined): string =>
    edit(
      'attribute-sets:\n',
      [
        'definitions:',
        '  - { type: enum, name: event-type, doc: Types., value-start: 1, entries: [ mtab, storage ] }',
        '  - { type: enum, name: action, doc: Actions., value-start: 1, entries: [ mount, umount, enospc ] }',
        `  - { type: enum, name: mtab-action, scope: user, doc: Mtab actions., value-start: 1, entries: ${mtab} }`,
        ...(storage === undefined ? [] : [`  - { type: enum, name: storage-action, scope: user, doc: Storage actions., value-start: 3, entries: ${storage} }`]),
        'attribute-sets:',
        '',
      ].join('\n'),
    );
  const family = loadSpecText(spec('[ mount, umount ]', '[ enospc ]'), { file: 'ok.yaml' });
  assert.equal(
    family.actionsOfType.map(({ type, actions }) => [type.name, actions.map((a) => a.name)]),
    [
      ['mtab', ['mount', 'umount']],
      ['storage', ['enospc']],
    ],
  );
  expectProblem(spec('[ mount, umount ]', undefined), '/definitions', 'actions-of-type', /event type "storage" needs an enum definition "storage-action"/);
  expectProblem(spec('[ mount, remount ]', '[ enospc ]'), '/definitions/2/entries/1', 'actions-of-type', /"remount" is not an entry of the enum "action"/);
  expectProblem(spec('[ umount, mount ]', '[ enospc ]'), '/definitions/2/entries/0', 'actions-of-type', /"umount" is 1 here but 2 in the enum "action"/);
  expectProblem(spec('[ mount ]', '[ enospc ]'), '/definitions', 'actions-of-type', /action "umount" belongs to no event type/);
});

test.run();
