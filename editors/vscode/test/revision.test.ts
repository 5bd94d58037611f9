import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeMessage, DocHost, DocSync, EditNotice, MAX_AGENTS, reopenHints } from '../src/revision';
import { applyParallel, OffsetEdit, positionAt } from '../src/text';

/**
 * A model of how VS Code behaves around the extension: the document lives in the renderer
 * (`model`), the extension host sees it through change events (`deliver`), and a versioned
 * apply succeeds only if the renderer's version is still the one the host saw.
 */
class FakeVsCode implements DocHost {
  model = '';
  modelVersion = 1;
  hostText = '';
  hostVersion = 1;
  events: { version: number; text: string; change: { start: number; end: number; text: string } }[] = [];
  sentMsgs: ChangeMessage[] = [];
  applies: { edits: OffsetEdit[]; version: number; resolve: (ok: boolean) => void }[] = [];
  reopened = 0;
  sync!: DocSync;
  timers: (() => void)[] = [];

  constructor(text: string) {
    this.model = this.hostText = text;
  }
  text() {
    return this.hostText;
  }
  version() {
    return this.hostVersion;
  }
  send(m: ChangeMessage) {
    this.sentMsgs.push(m);
  }
  apply(edits: OffsetEdit[], version: number) {
    return new Promise<boolean>((resolve) => this.applies.push({ edits, version, resolve }));
  }
  reopen() {
    this.reopened++;
  }
  later(fn: () => void) {
    this.timers.push(fn);
  }
  /** The user types in the renderer. */
  type(at: number, text: string, del = 0) {
    const change = { start: at, end: at + del, text };
    this.model = this.model.slice(0, at) + text + this.model.slice(at + del);
    this.modelVersion++;
    this.events.push({ version: this.modelVersion, text: this.model, change });
  }
  /** The renderer processes the oldest pending apply; the result is sent after its event. */
  runApply(): boolean {
    const a = this.applies.shift()!;
    const ok = a.version === this.modelVersion;
    if (ok) {
      const before = this.model;
      this.model = applyParallel(this.model, a.edits);
      this.modelVersion++;
      const e = a.edits[0];
      this.events.push({ version: this.modelVersion, text: this.model, change: { start: e.start, end: e.end, text: e.text } });
      void before;
    }
    this.pendingResults.push(() => a.resolve(ok));
    return ok;
  }
  pendingResults: (() => void)[] = [];
  /** Deliver one change event to the extension host. */
  deliver() {
    const e = this.events.shift()!;
    const before = this.hostText;
    this.hostText = e.text;
    this.hostVersion = e.version;
    const range = { start: positionAt(before, e.change.start), end: positionAt(before, e.change.end) };
    this.sync.localChange(e.version, [{ range, text: e.change.text }]);
  }
  async result() {
    this.pendingResults.shift()!();
    await new Promise((r) => setImmediate(r));
  }
}

function setup(text: string) {
  const vs = new FakeVsCode(text);
  const sync = new DocSync('file:///f', vs);
  vs.sync = sync;
  sync.opened();
  return { vs, sync };
}

const ins = (line: number, character: number, text: string) => ({
  range: { start: { line, character }, end: { line, character } },
  text,
});
const edit = (rev: number, editorRev: number, edits = [ins(0, 0, 'R')]): EditNotice => ({
  uri: 'file:///f',
  rev,
  editorRev,
  edits,
});

test('local changes are sent in order with the last applied rev', () => {
  const { vs, sync } = setup('abc');
  vs.type(3, 'd');
  vs.deliver();
  vs.type(4, 'e');
  vs.deliver();
  assert.equal(sync.sent, 2);
  assert.deepEqual(
    vs.sentMsgs.map((m) => [m.seen, m.changes[0].text]),
    [
      [0, 'd'],
      [0, 'e'],
    ],
  );
});

test('a remote edit is applied once, its own change event is not echoed', async () => {
  const { vs, sync } = setup('abc');
  sync.remoteEdit(edit(1, 0, [ins(0, 1, 'X😀')]));
  assert.equal(vs.applies.length, 1);
  assert.ok(vs.runApply());
  vs.deliver(); // our own event arrives before the apply resolves: held, then skipped
  await vs.result();
  assert.equal(vs.hostText, 'aX😀bc');
  assert.equal(vs.sentMsgs.length, 0, 'no echo');
  assert.equal(sync.seen, 1);
  vs.type(0, '>');
  vs.deliver();
  assert.deepEqual(vs.sentMsgs[0], { uri: 'file:///f', seen: 1, changes: [ins(0, 0, '>')] });
});

test('the own event may also arrive after the apply resolved', async () => {
  const { vs, sync } = setup('abc');
  sync.remoteEdit(edit(1, 0));
  vs.runApply();
  await vs.result();
  vs.deliver();
  assert.equal(vs.sentMsgs.length, 0);
  vs.type(1, 'u');
  vs.deliver();
  assert.equal(vs.sentMsgs.length, 1);
  assert.equal(vs.sentMsgs[0].seen, 1);
  assert.equal(sync.applied, 1);
});

test('typing while a remote edit is in flight: the edit is rejected, nothing is lost or doubled', async () => {
  const { vs, sync } = setup('abc');
  sync.remoteEdit(edit(1, 0));
  vs.type(3, 'k'); // the user types first in the renderer
  assert.equal(vs.runApply(), false);
  vs.deliver(); // held while the apply is in flight
  assert.equal(vs.sentMsgs.length, 0);
  await vs.result();
  assert.equal(sync.rejected, 1);
  // the keystroke went out based on rev 0: the sidecar transforms and re-sends the edit
  assert.deepEqual(
    vs.sentMsgs.map((m) => [m.seen, m.changes[0].text]),
    [[0, 'k']],
  );
  assert.equal(vs.applies.length, 0, 'the stale edit is dropped, not applied');
  assert.equal(sync.dropped, 1);
  // the re-sent edit names editorRev 1 and applies
  sync.remoteEdit(edit(2, 1));
  assert.ok(vs.runApply());
  await vs.result();
  vs.deliver();
  assert.equal(vs.hostText, 'Rabck');
  assert.equal(sync.seen, 2);
  assert.equal(vs.sentMsgs.length, 1);
});

test('typing right after an applied edit: only the keystroke is sent, with the new rev', async () => {
  const { vs, sync } = setup('abc');
  sync.remoteEdit(edit(1, 0));
  assert.ok(vs.runApply());
  vs.type(4, 'z'); // after our edit in the renderer
  vs.deliver();
  vs.deliver();
  await vs.result();
  assert.deepEqual(
    vs.sentMsgs.map((m) => [m.seen, m.changes[0].text]),
    [[1, 'z']],
  );
  assert.equal(vs.hostText, 'Rabcz');
});

test('stale edits are dropped; queued edits apply one after another', async () => {
  const { vs, sync } = setup('abc');
  vs.type(0, 'q');
  vs.deliver();
  sync.remoteEdit(edit(1, 0)); // computed before our change arrived
  assert.equal(vs.applies.length, 0);
  assert.equal(sync.dropped, 1);
  sync.remoteEdit(edit(2, 1, [ins(0, 4, '1')]));
  sync.remoteEdit(edit(3, 1, [ins(0, 5, '2')]));
  assert.equal(vs.applies.length, 1, 'one at a time');
  vs.runApply();
  vs.deliver();
  await vs.result();
  assert.equal(vs.applies.length, 1);
  vs.runApply();
  vs.deliver();
  await vs.result();
  assert.equal(vs.hostText, 'qabc12');
  assert.equal(sync.seen, 3);
  assert.equal(vs.sentMsgs.length, 1);
});

test('a rejection no local change explains is retried, then the document is reopened', async () => {
  const { vs, sync } = setup('abc');
  sync.remoteEdit(edit(1, 0));
  vs.applies[0].version = -1; // make the renderer refuse it
  vs.runApply();
  await vs.result();
  assert.equal(vs.timers.length, 1);
  vs.timers.shift()!();
  assert.equal(vs.applies.length, 1, 'retried');
  assert.ok(vs.runApply());
  vs.deliver();
  await vs.result();
  assert.equal(vs.hostText, 'Rabc');
  // persistent refusal
  sync.remoteEdit(edit(2, 0));
  for (let i = 0; i < 100 && vs.applies.length + vs.timers.length > 0; i++) {
    if (vs.applies.length) {
      vs.applies[0].version = -1;
      vs.runApply();
      await vs.result();
    } else vs.timers.shift()!();
  }
  assert.equal(vs.reopened, 1);
});

test('reopening resets the revision counters; nothing is sent while closed', async () => {
  const { vs, sync } = setup('abc');
  vs.type(0, 'a');
  vs.deliver();
  sync.closed();
  vs.type(0, 'b');
  vs.deliver();
  assert.equal(vs.sentMsgs.length, 1);
  sync.remoteEdit(edit(1, 1));
  assert.equal(vs.applies.length, 0);
  await sync.whenIdle();
  sync.opened();
  assert.equal(sync.sent, 0);
  vs.type(0, 'c');
  vs.deliver();
  assert.deepEqual(vs.sentMsgs[1], { uri: 'file:///f', seen: 0, changes: [ins(0, 0, 'c')] });
});

// ---------------------------------------------------------------- reopen hints (base, agents)

const withBase = (n: EditNotice, baseDelta: Record<string, number>): EditNotice => ({ ...n, baseDelta });

test('base: the wire version of the last applied edit, not of refused or stale ones', async () => {
  const { vs, sync } = setup('abc');
  assert.equal(sync.reopenHint(), undefined, 'no remote edit applied: no hint');
  sync.remoteEdit(withBase(edit(1, 0), { 'agent#r-1': 4 }));
  assert.ok(vs.runApply());
  assert.equal(sync.base, undefined, 'not before the apply resolved');
  await vs.result();
  vs.deliver();
  assert.deepEqual(sync.base, { 'agent#r-1': 4 });
  // Refused (the user typed first): the base stays.
  sync.remoteEdit(withBase(edit(2, 0), { 'agent#r-1': 5 }));
  vs.type(0, 'k');
  assert.equal(vs.runApply(), false);
  vs.deliver();
  await vs.result();
  assert.deepEqual(sync.base, { 'agent#r-1': 4 });
  // Stale (names fewer of our changes than we sent): dropped, the base stays.
  sync.remoteEdit(withBase(edit(3, 0), { 'agent#r-1': 6 }));
  assert.deepEqual(sync.base, { 'agent#r-1': 4 });
  // Notices carry only what changed (baseDelta), dropped ones included: an edit with nothing
  // to change still moves the base, to everything merged so far.
  sync.remoteEdit(withBase(edit(4, 1, []), { 'Ann#r-2': 0 }));
  assert.deepEqual(sync.base, { 'agent#r-1': 6, 'Ann#r-2': 0 });
  // A malformed delta is ignored.
  sync.remoteEdit({ ...edit(5, 1, []), baseDelta: [1, 2] as unknown as Record<string, number> });
  assert.deepEqual(sync.base, { 'agent#r-1': 6, 'Ann#r-2': 0 });
  // Reopened (a new connection): the running map restarts, the applied base stays.
  sync.closed();
  sync.opened();
  assert.deepEqual(sync.base, { 'agent#r-1': 6, 'Ann#r-2': 0 });
  sync.remoteEdit(withBase(edit(1, 0, []), { 'agent#r-1': 7 }));
  assert.deepEqual(sync.base, { 'agent#r-1': 7 }, 'the first notice after didOpen is complete');
});

test('base and agents survive reconnections and become initializationOptions.reopen', async () => {
  const { vs, sync } = setup('abc');
  const other = new DocSync('file:///g', vs);
  sync.addAgent('Me#run1-1');
  sync.remoteEdit(withBase(edit(1, 0), { 'agent#run1-9': 2, 'Me#run1-1': 0 }));
  assert.ok(vs.runApply());
  await vs.result();
  sync.closed(); // the daemon was killed
  sync.addAgent('Me#run2-1'); // a new connection
  sync.addAgent('Me#run2-1'); // reported twice (one info per connection): kept once
  sync.opened();
  assert.equal(sync.seen, 0, 'revision counters restart');
  assert.deepEqual(reopenHints([sync, other]), {
    'file:///f': { base: { 'agent#run1-9': 2, 'Me#run1-1': 0 }, agents: ['Me#run1-1', 'Me#run2-1'] },
  });
  assert.equal(reopenHints([other]), undefined, 'a plain client state sends no reopen at all');
  for (let i = 0; i < 40; i++) sync.addAgent(`Me#r-${i}`);
  assert.equal(sync.agents.length, MAX_AGENTS);
  assert.equal(sync.agents[MAX_AGENTS - 1], 'Me#r-39', 'the newest are kept');
  // The hint is a copy: later edits do not change what was sent.
  const h = sync.reopenHint()!;
  h.base['x'] = 1;
  assert.equal(sync.base!['x'], undefined);
});
