// dist-space for VS Code: entry point. Wires sessions (src/session.ts, one per workspace
// folder that is a dist-space workspace) to VS Code's events, draws the other participants'
// cursors, and provides the status bar item and the commands.

import * as vscode from 'vscode';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { Session } from './session';
import { Peer } from './peers';
import { judgeBinary } from './version';
import { runSelfTest } from './selftest';

let ext: Extension | undefined;

export async function activate(ctx: vscode.ExtensionContext): Promise<Extension> {
  ext = new Extension(ctx);
  await ext.init();
  return ext;
}

export function deactivate(): void {
  ext?.dispose();
  ext = undefined;
}

/** The decorations of one participant (one set of types per colour). */
interface PeerLook {
  caret: vscode.TextEditorDecorationType;
  labelAbove: vscode.TextEditorDecorationType;
  labelBelow: vscode.TextEditorDecorationType;
  selection: vscode.TextEditorDecorationType;
}

export class Extension {
  readonly out: vscode.LogOutputChannel;
  readonly sessions = new Map<string, Session>();
  private status: vscode.StatusBarItem;
  private looks = new Map<string, PeerLook>();
  private following: { session: Session; id: number } | undefined;
  private disposables: vscode.Disposable[] = [];
  private binaryProblem: string | undefined;

  constructor(readonly ctx: vscode.ExtensionContext) {
    this.out = vscode.window.createOutputChannel('dist-space', { log: true });
    this.status = vscode.window.createStatusBarItem('distSpace.status', vscode.StatusBarAlignment.Left, 100);
    this.status.name = 'dist-space';
    this.status.command = 'distSpace.participants';
  }

  async init(): Promise<void> {
    const d = this.disposables;
    d.push(this.out, this.status);
    const cmd = (id: string, fn: (...a: unknown[]) => unknown) => d.push(vscode.commands.registerCommand(id, fn));
    cmd('distSpace.participants', () => this.pickParticipant('Participants'));
    cmd('distSpace.jump', (name?: unknown) => this.jumpCommand(typeof name === 'string' ? name : undefined));
    cmd('distSpace.follow', (name?: unknown) => this.followCommand(typeof name === 'string' ? name : undefined));
    cmd('distSpace.stopFollowing', () => this.stopFollowing('stopped'));
    cmd('distSpace.showLog', () => this.showLog());
    cmd('distSpace.showOutput', () => this.out.show(true));
    cmd('distSpace.save', () => this.save());
    cmd('distSpace.reconnect', () => {
      for (const s of this.sessions.values()) s.reconnect();
    });
    // Used by the end-to-end test and handy for scripts: the state of the extension.
    cmd('distSpace.state', () => this.state());

    d.push(
      vscode.workspace.onDidOpenTextDocument((doc) => this.sessionFor(doc)?.track(doc)),
      vscode.workspace.onDidCloseTextDocument((doc) => this.sessionFor(doc)?.untrack(doc)),
      vscode.workspace.onDidChangeTextDocument((e) => this.sessionFor(e.document)?.changed(e)),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        this.sessionFor(e.textEditor.document)?.sendCursor(e.textEditor);
        if (this.following && (e.kind === vscode.TextEditorSelectionChangeKind.Keyboard || e.kind === vscode.TextEditorSelectionChangeKind.Mouse)) {
          this.stopFollowing('you moved');
        }
      }),
      vscode.window.onDidChangeActiveTextEditor((ed) => {
        if (ed) this.sessionFor(ed.document)?.sendCursor(ed);
        this.updateContext();
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => this.redrawAll()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.syncFolders()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('distSpace')) this.restartAll();
      }),
    );
    await this.syncFolders();
    if (process.env.DIST_SPACE_E2E_OUT) void runSelfTest(this, process.env.DIST_SPACE_E2E_OUT);
  }

  private config() {
    const c = vscode.workspace.getConfiguration('distSpace');
    return {
      bin: c.get<string>('binaryPath') || 'dist-space',
      name: c.get<string>('name') || process.env.USER || os.userInfo().username || 'vscode',
      enable: c.get<string>('enable') || 'auto',
    };
  }

  /** A folder is a dist-space workspace if it or an ancestor has a `.dist-space/` folder. */
  private isWorkspace(dir: string): boolean {
    for (let d = dir; ; d = path.dirname(d)) {
      try {
        if (fs.statSync(path.join(d, '.dist-space')).isDirectory()) return true;
      } catch {
        // not here
      }
      if (path.dirname(d) === d) return false;
    }
  }

  private async checkBinary(bin: string): Promise<boolean> {
    const r = await new Promise<{ err?: string; code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(bin, ['--version'], { timeout: 10000 }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
        resolve({
          err: e && typeof e.code === 'string' ? e.code : undefined,
          code: e ? (typeof e.code === 'number' ? e.code : e.code === undefined ? 1 : null) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      });
    });
    const v = judgeBinary(bin, r.err, r.code, r.stdout, r.stderr);
    if (v.ok) {
      this.binaryProblem = undefined;
      this.out.info(`using ${bin} (dist-space ${v.version})`);
      return true;
    }
    this.binaryProblem = v.message;
    this.out.error(v.message);
    void vscode.window.showErrorMessage(v.message, 'Open Settings').then((a) => {
      if (a) void vscode.commands.executeCommand('workbench.action.openSettings', 'distSpace.binaryPath');
    });
    this.updateStatus();
    return false;
  }

  private async syncFolders(): Promise<void> {
    const cfg = this.config();
    const want = new Map<string, vscode.WorkspaceFolder>();
    if (cfg.enable !== 'never') {
      for (const f of vscode.workspace.workspaceFolders ?? []) {
        if (f.uri.scheme === 'file' && (cfg.enable === 'always' || this.isWorkspace(f.uri.fsPath))) want.set(f.uri.toString(), f);
      }
    }
    for (const [k, s] of this.sessions) {
      if (!want.has(k)) {
        s.dispose();
        this.sessions.delete(k);
      }
    }
    const fresh = [...want].filter(([k]) => !this.sessions.has(k));
    if (fresh.length > 0 && !(await this.checkBinary(cfg.bin))) return;
    for (const [k, f] of fresh) {
      const s = new Session(f, cfg.bin, cfg.name, this.out, {
        changed: () => {
          this.updateStatus();
          this.updateContext();
        },
        presence: (sess, p) => this.onPresence(sess, p),
      });
      this.sessions.set(k, s);
      for (const doc of vscode.workspace.textDocuments) s.track(doc);
      s.start();
    }
    this.updateStatus();
  }

  private restartAll(): void {
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
    this.clearDecorations();
    void this.syncFolders();
  }

  sessionFor(doc: vscode.TextDocument): Session | undefined {
    for (const s of this.sessions.values()) if (s.wants(doc)) return s;
    return undefined;
  }

  // ---- presence -------------------------------------------------------------------------

  /** Decoration types of one participant (by colour and name: the label is part of the type). */
  private look(p: { color: string; name: string }): PeerLook {
    const key = `${p.color}|${p.name}`;
    let l = this.looks.get(key);
    if (l) return l;
    const color = p.color;
    const label = (top: string): vscode.ThemableDecorationAttachmentRenderOptions => ({
      contentText: p.name,
      color: '#ffffff',
      backgroundColor: color,
      fontWeight: 'normal',
      // Raw CSS after "none;": a small floating tag that does not push the text aside.
      textDecoration: `none; position: absolute; top: ${top}; z-index: 10; padding: 0 3px; border-radius: 2px; font-size: 0.8em; line-height: 1.25em; white-space: nowrap; pointer-events: none`,
    });
    l = {
      caret: vscode.window.createTextEditorDecorationType({
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
        before: {
          contentText: '\u200b',
          border: `1px solid ${color}`,
          textDecoration: 'none; position: absolute; height: 1.2em; margin-left: -1px; z-index: 9',
          width: '0',
        },
      }),
      labelAbove: vscode.window.createTextEditorDecorationType({ after: label('-1.15em') }),
      labelBelow: vscode.window.createTextEditorDecorationType({ after: label('1.15em') }),
      selection: vscode.window.createTextEditorDecorationType({ backgroundColor: color + '40', borderRadius: '2px' }),
    };
    this.looks.set(key, l);
    return l;
  }

  private onPresence(s: Session, p: Peer): void {
    this.redrawAll();
    if (this.following && this.following.session === s && this.following.id === p.id) {
      if (p.uri) void this.jumpTo(p, true);
      else this.stopFollowing(`${p.name} left`);
    }
  }

  private clearDecorations(): void {
    for (const ed of vscode.window.visibleTextEditors) {
      for (const l of this.looks.values()) for (const t of Object.values(l)) ed.setDecorations(t, []);
    }
  }

  /** Draw every participant's cursors in every visible editor. */
  redrawAll(): void {
    for (const ed of vscode.window.visibleTextEditors) {
      const uri = ed.document.uri.toString();
      const s = this.sessionFor(ed.document);
      const byLook = new Map<string, { caret: vscode.DecorationOptions[]; above: vscode.Range[]; below: vscode.Range[]; sel: vscode.Range[] }>();
      for (const k of this.looks.keys()) byLook.set(k, { caret: [], above: [], below: [], sel: [] });
      for (const p of s ? s.peers.inDocument(uri) : []) {
        this.look(p);
        const key = `${p.color}|${p.name}`;
        let b = byLook.get(key);
        if (!b) byLook.set(key, (b = { caret: [], above: [], below: [], sel: [] }));
        p.cursors.slice(0, 8).forEach((c, i) => {
          const head = ed.document.validatePosition(new vscode.Position(c.head.line, c.head.character));
          const anchor = ed.document.validatePosition(new vscode.Position(c.anchor.line, c.anchor.character));
          const at = new vscode.Range(head, head);
          b.caret.push({ range: at, hoverMessage: new vscode.MarkdownString(`**${p.name}** (dist-space)`) });
          if (i === 0) (head.line === 0 ? b.below : b.above).push(at);
          if (!head.isEqual(anchor)) b.sel.push(new vscode.Range(anchor, head));
        });
      }
      for (const [key, b] of byLook) {
        const l = this.looks.get(key)!;
        ed.setDecorations(l.caret, b.caret);
        ed.setDecorations(l.labelAbove, b.above);
        ed.setDecorations(l.labelBelow, b.below);
        ed.setDecorations(l.selection, b.sel);
      }
    }
  }

  // ---- status, commands -----------------------------------------------------------------

  private updateContext(): void {
    const ed = vscode.window.activeTextEditor;
    const s = ed && this.sessionFor(ed.document);
    const attached = !!(s && s.connected && s.docs.has(ed.document.uri.toString()));
    void vscode.commands.executeCommand('setContext', 'distSpace.attached', attached);
  }

  private updateStatus(): void {
    const all = [...this.sessions.values()];
    if (this.binaryProblem && all.length === 0) {
      this.status.text = '$(error) dist-space';
      this.status.tooltip = this.binaryProblem;
      this.status.show();
      return;
    }
    if (all.length === 0) {
      this.status.hide();
      return;
    }
    const up = all.filter((s) => s.connected);
    const peers = all.flatMap((s) => s.peers.all());
    if (up.length === all.length) {
      this.status.text = `$(broadcast) dist-space: ${peers.length + 1}`;
      this.status.tooltip = `dist-space: connected (${peers.length} other participant${peers.length === 1 ? '' : 's'} with a cursor)${
        this.following ? `; following ${this.following.session.peers.get(this.following.id)?.name ?? ''}` : ''
      }. Click for the participant list.`;
      this.status.backgroundColor = undefined;
    } else {
      const starting = all.some((s) => s.state === 'starting');
      this.status.text = `$(sync~spin) dist-space: ${starting ? 'connecting' : 'reconnecting'}`;
      this.status.tooltip = 'dist-space: not connected; edits are kept and sent when the connection is back.';
      this.status.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    }
    this.status.show();
  }

  /** Participants from the daemon (`dist-space/info`), merged with the known cursors. */
  private async participants(): Promise<{ session: Session; id: number; name: string; file: string | null; agent: boolean; me: boolean; peer?: Peer }[]> {
    const out = [];
    for (const s of this.sessions.values()) {
      type Info = { me: number; participants: { id: number; name: string; file: string | null; agent: string | boolean }[] };
      const info = await s.request<Info>('dist-space/info', {}).catch(() => undefined);
      for (const p of info?.participants ?? []) {
        out.push({ session: s, id: p.id, name: p.name, file: p.file, agent: p.agent === true, me: p.id === info?.me, peer: s.peers.get(p.id) });
      }
    }
    return out;
  }

  private async pickParticipant(title: string, onlyWithCursor = false): Promise<{ session: Session; peer: Peer } | undefined> {
    const list = (await this.participants()).filter((p) => !onlyWithCursor || p.peer);
    if (list.length === 0) {
      void vscode.window.showInformationMessage(this.sessions.size ? 'dist-space: nobody else is here.' : 'dist-space: not connected.');
      return undefined;
    }
    const items = list.map((p) => ({
      label: `${p.me ? '$(account)' : '$(person)'} ${p.name}${p.me ? ' (you)' : ''}`,
      description: p.file ?? '',
      detail: p.peer?.cursors[0] ? `line ${p.peer.cursors[0].head.line + 1}, column ${p.peer.cursors[0].head.character + 1}` : undefined,
      p,
    }));
    const pick = await vscode.window.showQuickPick(items, { title: `dist-space: ${title}`, placeHolder: 'Jump to a participant' });
    if (!pick || !pick.p.peer) return undefined;
    if (title === 'Participants') await this.jumpTo(pick.p.peer);
    return { session: pick.p.session, peer: pick.p.peer };
  }

  private findPeer(name: string): { session: Session; peer: Peer } | undefined {
    for (const s of this.sessions.values()) {
      const p = s.peers.find(name);
      if (p) return { session: s, peer: p };
    }
    return undefined;
  }

  private async jumpCommand(name?: string): Promise<boolean> {
    const t = name ? this.findPeer(name) : await this.pickParticipant('Jump to Participant', true);
    if (!t) {
      if (name) void vscode.window.showWarningMessage(`dist-space: no participant with a cursor named ${name}`);
      return false;
    }
    return this.jumpTo(t.peer);
  }

  private async followCommand(name?: string): Promise<boolean> {
    const t = name ? this.findPeer(name) : await this.pickParticipant('Follow Participant', true);
    if (!t) return false;
    this.following = { session: t.session, id: t.peer.id };
    vscode.window.setStatusBarMessage(`dist-space: following ${t.peer.name} (move your cursor to stop)`, 4000);
    this.updateStatus();
    return this.jumpTo(t.peer, true);
  }

  private stopFollowing(why: string): void {
    if (!this.following) return;
    const name = this.following.session.peers.get(this.following.id)?.name ?? 'participant';
    this.following = undefined;
    vscode.window.setStatusBarMessage(`dist-space: stopped following ${name} (${why})`, 3000);
    this.updateStatus();
  }

  private async jumpTo(p: Peer, follow = false): Promise<boolean> {
    if (!p.uri || !p.cursors[0]) return false;
    const uri = vscode.Uri.parse(p.uri);
    const doc = await vscode.workspace.openTextDocument(uri);
    const visible = vscode.window.visibleTextEditors.find((e) => e.document === doc);
    const ed = await vscode.window.showTextDocument(doc, { viewColumn: visible?.viewColumn, preserveFocus: follow && !!visible, preview: false });
    const h = doc.validatePosition(new vscode.Position(p.cursors[0].head.line, p.cursors[0].head.character));
    if (!follow) ed.selection = new vscode.Selection(h, h);
    ed.revealRange(new vscode.Range(h, h), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    return true;
  }

  private async showLog(): Promise<void> {
    const s = [...this.sessions.values()].find((x) => x.log) ?? [...this.sessions.values()][0];
    const file = s?.log ?? (s ? path.join(s.folder.uri.fsPath, '.dist-space', 'daemon.log') : undefined);
    if (!file || !fs.existsSync(file)) {
      this.out.show(true);
      void vscode.window.showInformationMessage('dist-space: no daemon log found; showing the extension output.');
      return;
    }
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
    const ed = await vscode.window.showTextDocument(doc, { preview: true });
    const end = doc.lineAt(doc.lineCount - 1).range.end;
    ed.revealRange(new vscode.Range(end, end), vscode.TextEditorRevealType.Default);
  }

  /** Ctrl+S in a shared document: the daemon writes the file (VS Code must not: it would
   *  write an older text over newer remote edits). The buffer stays marked modified. */
  private async save(): Promise<void> {
    const ed = vscode.window.activeTextEditor;
    const s = ed && this.sessionFor(ed.document);
    if (!s || !s.connected) {
      await vscode.commands.executeCommand('workbench.action.files.save');
      return;
    }
    const ok = await s.save();
    vscode.window.setStatusBarMessage(ok ? 'dist-space: written by the daemon' : 'dist-space: save failed', 3000);
  }

  /** A JSON-able view of the extension (the `distSpace.state` command). */
  state() {
    return {
      binaryProblem: this.binaryProblem,
      following: this.following && { id: this.following.id },
      sessions: [...this.sessions.values()].map((s) => ({
        folder: s.folder.uri.fsPath,
        state: s.state,
        root: s.root,
        serverVersion: s.serverVersion,
        peers: s.peers.all(),
        docs: [...s.docs.values()].map((t) => ({
          uri: t.sync.uri,
          open: t.sync.isOpen,
          sent: t.sync.sent,
          seen: t.sync.seen,
          applied: t.sync.applied,
          dropped: t.sync.dropped,
          rejected: t.sync.rejected,
        })),
      })),
    };
  }

  dispose(): void {
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
    for (const l of this.looks.values()) for (const t of Object.values(l)) t.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
