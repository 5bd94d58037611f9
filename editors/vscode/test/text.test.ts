import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges, applyParallel, Change, diff, offsetAt, positionAt, protectCursors, toParallel } from '../src/text';

test('UTF-16 positions: surrogate pairs, CRLF, clamping', () => {
  const t = 'a😀b\r\nxé\rz\n';
  // line 0: "a😀b" (4 code units), line 1: "xé", line 2: "z", line 3: ""
  assert.equal(offsetAt(t, { line: 0, character: 3 }), 3); // before b
  assert.equal(offsetAt(t, { line: 0, character: 2 }), 1); // inside 😀: start of 😀
  assert.equal(offsetAt(t, { line: 0, character: 99 }), 4); // clamps to end of line (before \r\n)
  assert.equal(offsetAt(t, { line: 1, character: 1 }), 7);
  assert.equal(offsetAt(t, { line: 2, character: 0 }), 9);
  assert.equal(offsetAt(t, { line: 3, character: 5 }), 11);
  assert.equal(offsetAt(t, { line: 9, character: 0 }), t.length);
  assert.deepEqual(positionAt(t, 3), { line: 0, character: 3 });
  assert.deepEqual(positionAt(t, 6), { line: 1, character: 0 });
  assert.deepEqual(positionAt(t, 10), { line: 2, character: 1 });
  assert.deepEqual(positionAt(t, 99), { line: 3, character: 0 });
  for (let o = 0; o <= t.length; o++) {
    const p = positionAt(t, o);
    const back = offsetAt(t, p);
    assert.ok(back === o || back === o - 1, `offset ${o} -> ${JSON.stringify(p)} -> ${back}`);
  }
});

test('sequential changes apply like the sidecar describes them', () => {
  const r = (l: number, c: number, l2: number, c2: number) => ({
    start: { line: l, character: c },
    end: { line: l2, character: c2 },
  });
  const out = applyChanges('hello\nworld', [
    { range: r(0, 5, 0, 5), text: '!' },
    { range: r(1, 0, 1, 5), text: 'there' },
    { range: r(0, 0, 0, 0), text: '😀' },
  ]);
  assert.equal(out, '😀hello!\nthere');
  assert.equal(applyChanges('x', [{ text: 'whole' }]), 'whole');
});

test('diff never splits a surrogate pair or a CRLF', () => {
  assert.deepEqual(diff('a😀b', 'a😁b'), { start: 1, end: 3, text: '😁' });
  assert.deepEqual(diff('a\r\nb', 'a\nb'), { start: 1, end: 3, text: '\n' });
  assert.equal(diff('same', 'same'), null);
  assert.deepEqual(diff('aaa', 'aaaa'), { start: 3, end: 3, text: 'a' });
});

test('toParallel: forward and backward sequences map exactly, touching edits merge', () => {
  const r = (c: number, c2: number) => ({ start: { line: 0, character: c }, end: { line: 0, character: c2 } });
  const t = '0123456789';
  assert.deepEqual(toParallel(t, [{ range: r(1, 2), text: 'ab' }, { range: r(5, 6), text: '' }]), [
    { start: 1, end: 2, text: 'ab' },
    { start: 4, end: 5, text: '' },
  ]);
  assert.deepEqual(toParallel(t, [{ range: r(8, 8), text: 'X' }, { range: r(2, 3), text: 'Y' }]), [
    { start: 2, end: 3, text: 'Y' },
    { start: 8, end: 8, text: 'X' },
  ]);
  // typing "ab" at 3 as two inserts: one edit
  assert.deepEqual(toParallel(t, [{ range: r(3, 3), text: 'a' }, { range: r(4, 4), text: 'b' }]), [
    { start: 3, end: 3, text: 'ab' },
  ]);
  // replacing a char by itself is no edit at all
  assert.deepEqual(toParallel(t, [{ range: r(3, 4), text: '3' }]), []);
});

test('toParallel equals sequential application on random edit sequences', () => {
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pool = ['a', '😀', '\n', 'é', 'xy', '\r\n', '', '日本'];
  for (let iter = 0; iter < 3000; iter++) {
    const base = Array.from({ length: rnd(12) }, () => pool[rnd(pool.length)]).join('');
    let cur = base;
    const changes: Change[] = [];
    for (let k = 0, n = 1 + rnd(4); k < n; k++) {
      const a = rnd(cur.length + 1);
      const b = a + rnd(cur.length - a + 1);
      const change = { range: { start: positionAt(cur, a), end: positionAt(cur, b) }, text: pool[rnd(pool.length)] };
      changes.push(change);
      cur = applyChanges(cur, [change]);
    }
    const par = toParallel(base, changes);
    for (let i = 1; i < par.length; i++) assert.ok(par[i - 1].end < par[i].start, 'sorted, apart');
    assert.equal(applyParallel(base, par), cur, JSON.stringify({ base, changes, par }));
  }
});

test('protectCursors: an insert at a cursor becomes a replacement ending (or starting) there', () => {
  const t = 'ab😀cd';
  // insert at 4 (after 😀, a cursor there): widened over the emoji before it
  assert.deepEqual(protectCursors(t, [{ start: 4, end: 4, text: 'X' }], [4]), [{ start: 2, end: 4, text: '😀X' }]);
  // at the start of the text: widened over the next character
  assert.deepEqual(protectCursors(t, [{ start: 0, end: 0, text: 'X' }], [0]), [{ start: 0, end: 1, text: 'Xa' }]);
  // not at a cursor, or not a pure insertion: unchanged
  assert.deepEqual(protectCursors(t, [{ start: 1, end: 1, text: 'X' }], [4]), [{ start: 1, end: 1, text: 'X' }]);
  assert.deepEqual(protectCursors(t, [{ start: 1, end: 2, text: 'X' }], [1]), [{ start: 1, end: 2, text: 'X' }]);
  // never overlaps or touches the neighbours; same result either way
  const edits = [{ start: 0, end: 1, text: '' }, { start: 1, end: 1, text: 'Y' }, { start: 2, end: 2, text: 'Z' }];
  const out = protectCursors(t, edits, [1, 2]);
  for (let i = 1; i < out.length; i++) assert.ok(out[i - 1].end <= out[i].start);
  assert.equal(applyParallel(t, out), applyParallel(t, edits));
  assert.equal(applyParallel(t, protectCursors(t, [{ start: 4, end: 4, text: 'X' }], [4])), 'ab😀Xcd');
});
