import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeBinary, MIN_SIDECAR, parseVersion } from '../src/version';
import { PALETTE, PeerTable } from '../src/peers';

test('binary check: missing, too old, no --version, good', () => {
  const missing = judgeBinary('/nope/dist-space', 'ENOENT', null, '', '');
  assert.equal(missing.ok, false);
  assert.ok(!missing.ok && missing.problem === 'missing' && /distSpace\.binaryPath/.test(missing.message));
  const old = judgeBinary('dist-space', undefined, 0, 'dist-space 0.0.9\n', '');
  assert.ok(!old.ok && old.problem === 'too-old' && old.message.includes(MIN_SIDECAR));
  const noflag = judgeBinary('dist-space', undefined, 2, '', "error: unexpected argument '--version' found\n");
  assert.ok(!noflag.ok && noflag.problem === 'too-old' && noflag.message.includes('unexpected argument'));
  const good = judgeBinary('dist-space', undefined, 0, 'dist-space 0.1.3\n', '');
  assert.deepEqual(good, { ok: true, version: '0.1.3' });
  assert.deepEqual(parseVersion('dist-space 1.20.3-beta'), [1, 20, 3]);
  assert.ok(judgeBinary('d', undefined, 0, 'dist-space 1.0.0', '').ok);
});

test('peers get distinct colours while present; leaving frees the colour', () => {
  const t = new PeerTable();
  const cur = [{ anchor: { line: 0, character: 0 }, head: { line: 0, character: 1 } }];
  const a = t.update({ id: 7, name: 'Alice', uri: 'file:///a', cursors: cur });
  const b = t.update({ id: 3, name: 'Bob', uri: 'file:///a', cursors: cur });
  assert.notEqual(a.color, b.color);
  assert.equal(t.update({ id: 7, name: 'Alice', uri: 'file:///b', cursors: cur }).color, a.color, 'stable');
  assert.equal(t.find('Bo')?.id, 3);
  assert.deepEqual(t.inDocument('file:///a').map((p) => p.name), ['Bob']);
  t.update({ id: 7, name: 'Alice', uri: null });
  assert.equal(t.get(7), undefined);
  const c = t.update({ id: 9, name: 'Carol', uri: 'file:///a', cursors: cur });
  assert.equal(c.color, a.color, "Alice's colour is free again");
  const colours = new Set<string>();
  const u = new PeerTable();
  for (let i = 0; i < PALETTE.length; i++) colours.add(u.update({ id: i, name: `p${i}`, uri: 'file:///x', cursors: cur }).color);
  assert.equal(colours.size, PALETTE.length);
});
