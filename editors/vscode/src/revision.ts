// The revision protocol for one document, as in the Neovim plugin (sidecar/src/proto.rs),
// with no dependency on the `vscode` module (unit-tested by test/revision.test.ts).
//
// * Local changes go out as `dist-space/change {uri, seen, changes}`; each message is one
//   editor revision (`sent` counts them); `seen` is the `rev` of the last remote edit applied.
// * A remote edit `dist-space/edit {uri, rev, editorRev, edits}` is applied only when
//   `editorRev === sent`; otherwise it is stale (based on fewer of our changes than we sent)
//   and dropped: the sidecar re-sends it transformed once our newer change arrives.
//
// VS Code specifics. Remote edits are applied with a *versioned* edit (`TextEditor.edit`):
// VS Code applies it only if the document is still at the version the extension host saw
// (else it resolves `false`, e.g. when the user typed in the meantime). The application is
// asynchronous and produces its own change event, which must not be echoed. While an
// application is in flight, local change events are held back; when it resolves:
//   - applied: the first change event with a version above the one it was made at is ours
//     (the document was at that version when it was applied, so nothing came in between);
//     it is skipped, `seen` becomes its `rev`, the held events are sent (they came after it);
//   - rejected: every held event is a local change made before it; they are sent with the old
//     `seen`, and the sidecar re-sends the edit transformed over them. If no local change
//     explains the rejection, the edit is retried (a few times, then the document is reopened).
// Remote edits are applied strictly one after another (a queue).
//
// Reopening (sidecar/src/reopen.rs): the daemon's wire version (agent -> seq) of the buffer once
// a notice is applied comes as changes (`baseDelta`), merged into `wire` for every notice
// (applied or dropped: the versions only grow); `base` keeps `wire` as of the last applied
// notice, and
// `agents` the engine agents of our connections (from `dist-space/info`, the last 16). Both
// survive reconnections; `reopenHints` turns them into `initializationOptions.reopen`, so the
// daemon merges our text at exactly that version after a reconnect or a daemon restart.

import { Change, OffsetEdit, applyParallel, toParallel } from './text';

export interface EditNotice {
  uri: string;
  rev: number;
  editorRev: number;
  edits: Change[];
  /** Changed entries of the buffer's wire version after this edit (absent from older daemons). */
  baseDelta?: WireVersion;
}

/** An engine wire version: agent name -> highest seq. */
export type WireVersion = Record<string, number>;

/** What `initializationOptions.reopen[uri]` says about one document. */
export interface ReopenHint {
  base: WireVersion;
  agents: string[];
}

export const MAX_AGENTS = 16;

function isWireVersion(v: unknown): v is WireVersion {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'number');
}

/** `initializationOptions.reopen` for these documents (`undefined` when none has a base). */
export function reopenHints(docs: Iterable<DocSync>): Record<string, ReopenHint> | undefined {
  const out: Record<string, ReopenHint> = {};
  let any = false;
  for (const d of docs) {
    const h = d.reopenHint();
    if (h) {
      out[d.uri] = h;
      any = true;
    }
  }
  return any ? out : undefined;
}

export interface ChangeMessage {
  uri: string;
  seen: number;
  changes: Change[];
}

/** What the bookkeeping needs from the editor (the extension wires VS Code in). */
export interface DocHost {
  /** The document's text and version as the extension host sees them now. */
  text(): string;
  version(): number;
  /** Send `dist-space/change`. */
  send(msg: ChangeMessage): void;
  /** Apply edits (on the text at `version`) only if the document is still at `version`. */
  apply(edits: OffsetEdit[], version: number): Promise<boolean>;
  /** Give up on incremental sync: close and reopen the document with the sidecar. */
  reopen(): void;
  /** Retry later (default: setTimeout). */
  later?(fn: () => void, ms: number): void;
  /** Debug trace of every decision (tests). */
  trace?(line: string): void;
}

export const MAX_RETRIES = 20;

export class DocSync {
  /** Change messages sent since the document was (re)opened with the sidecar. */
  sent = 0;
  /** `rev` of the last remote edit applied. */
  seen = 0;
  /** Counters (status, tests). */
  applied = 0;
  dropped = 0;
  rejected = 0;
  /** Wire version of the last remote edit applied (kept across reconnections). */
  base: WireVersion | undefined;
  /** Every notice's `baseDelta` merged, since the document was (re)opened. */
  private wire: WireVersion = {};
  /** Engine agents of our connections, oldest first (kept across reconnections). */
  agents: string[] = [];
  private open = false;
  /** Queued notices, each with the wire version its application brings the buffer to. */
  private queue: (EditNotice & { base?: WireVersion })[] = [];
  private inFlight: { version: number; rev: number; text: string; base?: WireVersion } | null = null;
  /** Change events that came while an application was in flight (`asApplied`: the text
   *  right after the event was what the application produces). */
  private held: { version: number; changes: Change[]; asApplied: boolean }[] = [];
  /** After an application succeeded: the next change event with a version above `above` that
   *  leaves the document at `text` is its own event. */
  private own: { above: number; text: string } | null = null;
  private retries = 0;
  private retryTimer = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly uri: string,
    private host: DocHost,
  ) {}

  /** The document was (re)opened with the sidecar (didOpen sent with the current text). */
  opened(): void {
    this.open = true;
    this.sent = 0;
    this.seen = 0;
    this.queue = [];
    this.retries = 0;
    this.wire = {};
  }

  /** A connection's engine agent (from `dist-space/info`). */
  addAgent(agent: unknown): void {
    if (typeof agent !== 'string' || this.agents[this.agents.length - 1] === agent) return;
    this.agents.push(agent);
    if (this.agents.length > MAX_AGENTS) this.agents.splice(0, this.agents.length - MAX_AGENTS);
  }

  /** What to tell a new connection about this buffer (`undefined`: no remote edit applied). */
  reopenHint(): ReopenHint | undefined {
    if (!this.base || Object.keys(this.base).length === 0) return undefined;
    return { base: { ...this.base }, agents: [...this.agents] };
  }

  private mergeWire(d: unknown): void {
    if (isWireVersion(d)) Object.assign(this.wire, d);
  }

  /** The connection went away: nothing is sent until `opened` again. */
  closed(): void {
    this.open = false;
    this.queue = [];
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** No remote edit is being applied (a didOpen may be sent now). */
  get idle(): boolean {
    return this.inFlight === null;
  }

  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** A change event of the document: `version` is the document version right after it. */
  private t(line: string): void {
    this.host.trace?.(`${line} [sent ${this.sent} seen ${this.seen}${this.inFlight ? ` inflight@${this.inFlight.version}/${this.inFlight.rev}` : ''}${this.own ? ` own>${this.own.above}` : ''}]`);
  }

  localChange(version: number, changes: Change[]): void {
    this.t(`local v${version} ${JSON.stringify(changes)}`);
    if (this.inFlight) {
      this.held.push({ version, changes, asApplied: this.host.text() === this.inFlight.text });
      return;
    }
    this.handle(version, changes, () => this.host.text());
  }

  private handle(version: number, changes: Change[], text: () => string | boolean): void {
    if (this.own && version > this.own.above) {
      const t = text();
      const mine = t === true || t === this.own.text;
      this.own = null;
      this.t(`v${version} ${mine ? 'is our own edit: skipped' : 'is not our edit'}`);
      if (mine) return; // the event of our applied remote edit
    }
    if (!this.open || changes.length === 0) return;
    this.sent++;
    this.host.send({ uri: this.uri, seen: this.seen, changes });
  }

  /** `dist-space/edit` from the sidecar. */
  remoteEdit(n: EditNotice): void {
    this.t(`remote rev ${n.rev} editorRev ${n.editorRev} ${JSON.stringify(n.edits)}`);
    if (!this.open) return;
    this.mergeWire(n.baseDelta);
    this.queue.push({ ...n, base: { ...this.wire } });
    this.pump();
  }

  private pump(): void {
    while (this.open && !this.inFlight && this.queue.length > 0) {
      const n = this.queue[0];
      if (n.editorRev !== this.sent) {
        this.queue.shift();
        this.dropped++;
        this.retries = 0;
        continue;
      }
      const version = this.host.version();
      const text = this.host.text();
      let edits: OffsetEdit[];
      try {
        edits = toParallel(text, n.edits);
      } catch {
        edits = [];
      }
      if (edits.length === 0) {
        this.queue.shift();
        this.seen = n.rev;
        this.base = n.base;
        this.applied++;
        continue;
      }
      this.inFlight = { version, rev: n.rev, text: applyParallel(text, edits), base: n.base };
      this.host.apply(edits, version).then(
        (ok) => this.settle(ok),
        () => this.settle(false),
      );
    }
  }

  private settle(ok: boolean): void {
    const f = this.inFlight;
    if (!f) return;
    this.t(`apply of rev ${f.rev} at v${f.version}: ${ok ? 'applied' : 'refused'}`);
    this.inFlight = null;
    const held = this.held;
    this.held = [];
    if (ok) {
      if (this.open && this.queue[0]?.rev === f.rev) this.queue.shift();
      this.seen = f.rev;
      if (f.base) this.base = f.base;
      this.applied++;
      this.retries = 0;
      this.own = { above: f.version, text: f.text };
    } else {
      this.rejected++;
    }
    for (const h of held) this.handle(h.version, h.changes, () => h.asApplied);
    for (const w of this.idleWaiters.splice(0)) w();
    if (!ok && this.open && held.length === 0 && this.queue.length > 0) {
      // Rejected with no local change seen yet: one is probably on its way (it makes the
      // edit stale); else retry the same edit shortly.
      if (++this.retries > MAX_RETRIES) {
        this.retries = 0;
        this.queue = [];
        this.host.reopen();
        return;
      }
      if (!this.retryTimer) {
        this.retryTimer = true;
        const retry = () => {
          this.retryTimer = false;
          this.pump();
        };
        if (this.host.later) this.host.later(retry, 5 * this.retries);
        else setTimeout(retry, 5 * this.retries);
      }
      return;
    }
    this.pump();
  }
}
