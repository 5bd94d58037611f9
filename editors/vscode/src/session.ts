// One dist-space connection for one workspace folder: a vscode-languageclient running
// `dist-space lsp --root <folder>` (which connects to, or starts, the workspace daemon), the
// documents of that folder synced with the revision protocol (src/revision.ts), and the other
// participants' presence. When the connection ends (daemon restart, crash) a new client is
// started with backoff and every open document is re-sent with didOpen: the daemon reconciles
// the text as an edit, so what was typed meanwhile is kept.

import * as vscode from 'vscode';
import * as fs from 'node:fs';
import { CloseAction, ErrorAction, LanguageClient, LanguageClientOptions, ServerOptions, State } from 'vscode-languageclient/node';
import { Change, protectCursors } from './text';
import { DocSync, EditNotice, reopenHints } from './revision';
import { Cursor, Peer, PeerTable } from './peers';

export interface SessionEvents {
  changed(s: Session): void;
  presence(s: Session, p: Peer): void;
}

interface Tracked {
  doc: vscode.TextDocument;
  sync: DocSync;
}

export type SessionState = 'starting' | 'connected' | 'disconnected' | 'stopped';

export class Session {
  state: SessionState = 'starting';
  readonly peers = new PeerTable();
  /** From `dist-space/info` once connected. */
  root: string | undefined;
  me: number | undefined;
  /** This connection's engine agent (from `dist-space/info`). */
  agent: string | undefined;
  log: string | undefined;
  serverVersion: string | undefined;
  readonly docs = new Map<string, Tracked>();
  private client: LanguageClient | undefined;
  private generation = 0;
  private delay = 200;
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  private crlfWarned = new Set<string>();

  constructor(
    readonly folder: vscode.WorkspaceFolder,
    private readonly bin: string,
    private readonly name: string,
    private readonly out: vscode.LogOutputChannel,
    private readonly events: SessionEvents,
  ) {}

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Whether this session syncs `doc` (a file below the folder, not in `.dist-space/`). */
  wants(doc: vscode.TextDocument): boolean {
    if (doc.uri.scheme !== 'file') return false;
    const base = this.folder.uri.fsPath.replace(/\/+$/, '') + '/';
    const p = doc.uri.fsPath;
    return p.startsWith(base) && !p.includes('/.dist-space/');
  }

  start(): void {
    if (this.disposed) return;
    const gen = ++this.generation;
    this.state = 'starting';
    this.events.changed(this);
    const serverOptions: ServerOptions = {
      command: this.bin,
      args: ['lsp', '--root', this.folder.uri.fsPath],
      options: { cwd: this.folder.uri.fsPath },
    };
    const clientOptions: LanguageClientOptions = {
      // The extension syncs documents itself (revision protocol): no automatic didOpen/didChange.
      documentSelector: [],
      // `reopen`: what each buffer is based on, so the daemon merges it at that version.
      initializationOptions: { name: this.name, revisionProtocol: true, reopen: reopenHints([...this.docs.values()].map((t) => t.sync)) },
      outputChannel: this.out,
      connectionOptions: { maxRestartCount: 0 },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => {
          this.lost(gen, 'connection closed');
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new LanguageClient('distSpace', 'dist-space', serverOptions, clientOptions);
    this.client = client;
    client.onNotification('dist-space/edit', (p: EditNotice) => this.docs.get(p.uri)?.sync.remoteEdit(p));
    client.onNotification('dist-space/presence', (p: { id: number; name: string; uri: string | null; cursors: Cursor[] }) => {
      const peer = this.peers.update(p);
      this.events.presence(this, peer);
      this.events.changed(this);
    });
    client.onNotification('dist-space/resync', (p: { uri: string; text: string }) => {
      const t = this.docs.get(p.uri);
      if (t) {
        this.out.warn(`resync requested for ${p.uri}: reopening it`);
        void this.reopen(t);
      }
    });
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped && gen === this.generation) this.lost(gen, 'client stopped');
    });
    client.start().then(
      async () => {
        if (gen !== this.generation) return;
        this.serverVersion = client.initializeResult?.serverInfo?.version;
        // This connection's engine agent (for `initializationOptions.reopen`), known before
        // any didOpen; older daemons only answer it in `dist-space/info` (below).
        const exp = client.initializeResult?.capabilities?.experimental as { distSpace?: { agent?: unknown } } | undefined;
        if (typeof exp?.distSpace?.agent === 'string') {
          this.agent = exp.distSpace.agent;
          for (const t of this.docs.values()) t.sync.addAgent(this.agent);
        }
        try {
          const info = (await client.sendRequest('dist-space/info', {})) as { root: string; me: number; version?: string; agent?: string };
          this.root = info.root;
          this.me = info.me;
          if (!this.agent && typeof info.agent === 'string') {
            this.agent = info.agent;
            for (const t of this.docs.values()) t.sync.addAgent(info.agent);
          }
          this.log = `${info.root}/.dist-space/daemon.log`;
        } catch (e) {
          this.out.warn(`dist-space/info failed: ${e}`);
        }
        this.state = 'connected';
        this.delay = 200;
        this.out.info(`connected to the dist-space daemon of ${this.root ?? this.folder.uri.fsPath} (version ${this.serverVersion})`);
        for (const t of this.docs.values()) await this.openWithDaemon(t);
        for (const doc of vscode.workspace.textDocuments) this.track(doc);
        this.sendCursor(vscode.window.activeTextEditor);
        this.events.changed(this);
      },
      (e) => this.lost(gen, `start failed: ${e}`),
    );
  }

  /** The connection of generation `gen` ended: forget its state, reconnect with backoff. */
  private lost(gen: number, why: string): void {
    if (gen !== this.generation || this.state === 'disconnected' || this.disposed) return;
    this.generation++;
    this.out.warn(`dist-space: ${why}; reconnecting in ${this.delay} ms`);
    this.state = 'disconnected';
    this.agent = undefined;
    for (const t of this.docs.values()) t.sync.closed();
    for (const p of this.peers.all()) this.events.presence(this, { ...p, uri: null });
    this.peers.clear();
    this.events.changed(this);
    const old = this.client;
    this.client = undefined;
    if (old) void old.dispose(2000).catch(() => undefined);
    this.timer = setTimeout(() => this.start(), this.delay);
    this.delay = Math.min(this.delay * 2, 5000);
  }

  /** Drop the connection and start a new one now. */
  reconnect(): void {
    const gen = this.generation;
    this.delay = 0;
    this.lost(gen, 'reconnect requested');
    this.delay = 200;
  }

  private notify(method: string, params: unknown): void {
    const c = this.client;
    if (!c || !this.connected) return;
    c.sendNotification(method, params).catch((e) => this.out.warn(`${method}: ${e}`));
  }

  async request<T>(method: string, params: unknown): Promise<T | undefined> {
    const c = this.client;
    if (!c || !this.connected) return undefined;
    return (await c.sendRequest(method, params)) as T;
  }

  /** Start syncing `doc` if it belongs here. */
  track(doc: vscode.TextDocument): void {
    if (!this.wants(doc)) return;
    const key = doc.uri.toString();
    if (this.docs.has(key)) return;
    if (doc.eol === vscode.EndOfLine.CRLF) {
      if (!this.crlfWarned.has(key)) {
        this.crlfWarned.add(key);
        void vscode.window.showWarningMessage(`dist-space: ${vscode.workspace.asRelativePath(doc.uri)} uses CRLF line endings, which are not supported yet; it is not shared.`);
      }
      return;
    }
    const t: Tracked = {
      doc,
      sync: new DocSync(key, {
        text: () => doc.getText(),
        version: () => doc.version,
        send: (m) => this.notify('dist-space/change', m),
        apply: async (edits, version) => {
          if (doc.isClosed || doc.version !== version) return false;
          const ed0 = vscode.window.visibleTextEditors.find((x) => x.document === doc);
          if (ed0) {
            const cursors = ed0.selections.flatMap((s) => [doc.offsetAt(s.anchor), doc.offsetAt(s.active)]);
            edits = protectCursors(doc.getText(), edits, cursors);
          }
          const ranges = edits.map((e) => ({ range: new vscode.Range(doc.positionAt(e.start), doc.positionAt(e.end)), text: e.text }));
          // TextEditor.edit checks the version and applies in the same renderer task (atomic
          // with respect to typing). workspace.applyEdit checks it too, but awaits between the
          // check and the application: a keystroke or another extension's edit can slip in
          // (seen in the e2e test), so it is only used for documents not shown in an editor.
          const ed = vscode.window.visibleTextEditors.find((x) => x.document === doc);
          if (ed) return ed.edit((b) => ranges.forEach((r) => b.replace(r.range, r.text)));
          const we = new vscode.WorkspaceEdit();
          for (const r of ranges) we.replace(doc.uri, r.range, r.text);
          return vscode.workspace.applyEdit(we);
        },
        reopen: () => void this.reopen(t),
        trace: process.env.DIST_SPACE_TRACE ? (l) => fs.appendFileSync(process.env.DIST_SPACE_TRACE!, `${Date.now()} ${l}\n`) : undefined,
      }),
    };
    this.docs.set(key, t);
    if (this.agent) t.sync.addAgent(this.agent);
    if (this.connected) void this.openWithDaemon(t);
  }

  private async openWithDaemon(t: Tracked): Promise<void> {
    await t.sync.whenIdle();
    if (!this.connected || t.doc.isClosed) return;
    this.notify('textDocument/didOpen', {
      textDocument: { uri: t.sync.uri, languageId: t.doc.languageId, version: t.doc.version, text: t.doc.getText() },
    });
    t.sync.opened();
  }

  private async reopen(t: Tracked): Promise<void> {
    t.sync.closed();
    this.notify('textDocument/didClose', { textDocument: { uri: t.sync.uri } });
    await this.openWithDaemon(t);
  }

  untrack(doc: vscode.TextDocument): void {
    const key = doc.uri.toString();
    const t = this.docs.get(key);
    if (!t) return;
    this.docs.delete(key);
    t.sync.closed();
    this.notify('textDocument/didClose', { textDocument: { uri: key } });
  }

  /** A change event of a document (called synchronously from onDidChangeTextDocument). */
  changed(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0) return;
    const t = this.docs.get(e.document.uri.toString());
    if (!t) return;
    if (!e.document.isDirty && this.isDiskReload(e.document)) {
      // VS Code reloaded a clean document because the daemon wrote the file: not an edit of
      // ours (sending it would double the remote text). Re-share it: the daemon sees the
      // text equals the disk and sends what happened since.
      this.out.info(`${e.document.uri.fsPath} was reloaded from disk: re-sharing it`);
      void this.reopen(t);
      return;
    }
    const changes: Change[] = e.contentChanges.map((c) => ({
      range: {
        start: { line: c.range.start.line, character: c.range.start.character },
        end: { line: c.range.end.line, character: c.range.end.character },
      },
      text: c.text,
    }));
    t.sync.localChange(e.document.version, changes);
  }

  private isDiskReload(doc: vscode.TextDocument): boolean {
    try {
      return fs.readFileSync(doc.uri.fsPath, 'utf8') === doc.getText();
    } catch {
      return false;
    }
  }

  sendCursor(ed: vscode.TextEditor | undefined): void {
    if (!ed) return;
    const t = this.docs.get(ed.document.uri.toString());
    if (!t || !t.sync.isOpen || !t.sync.idle) return;
    const cursors = ed.selections.map((s) => ({
      anchor: { line: s.anchor.line, character: s.anchor.character },
      head: { line: s.active.line, character: s.active.character },
    }));
    this.notify('dist-space/cursor', { uri: t.sync.uri, cursors });
  }

  /** Ask the daemon to write every document now. */
  async save(): Promise<boolean> {
    const r = await this.request<{ ok: boolean }>('dist-space/save', {});
    return !!r?.ok;
  }

  dispose(): void {
    this.disposed = true;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.state = 'stopped';
    const c = this.client;
    this.client = undefined;
    if (c) void c.dispose(2000).catch(() => undefined);
  }
}
