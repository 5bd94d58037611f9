// End-to-end self-test through the real extension host API, used by
// sidecar/tests/vscode_e2e.rs. Inert unless the extension host has DIST_SPACE_E2E_OUT (a
// folder) in its environment (code-server passes its environment on). Talks to the test via
// files in that folder, like the Neovim test scripts:
//   api.ready        written once the file (DIST_SPACE_E2E_FILE) is shared with the daemon
//   go               (from the test) start editing
//   api.markers/.done  after DIST_SPACE_E2E_N random edits with vscode.workspace.applyEdit
//   vscode.txt       the document text, rewritten whenever it changes, until `stop` exists
//   state.json       the extension's state (revision counters, peers), rewritten with it
//   jump             (from the test) a participant name: run `distSpace.jump` and
//   jump.result      "<line> <character>" of the cursor afterwards
//   follow           (from the test) "<name> <line>": run `distSpace.follow <name>`, write
//                    follow.started, then follow.result once the view shows <line>

import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Extension } from './extension';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function write(p: string, s: string): void {
  fs.writeFileSync(p + '.tmp', s);
  fs.renameSync(p + '.tmp', p);
}

/** Marker spans `<Name:123>` in UTF-16 offsets. */
export function markerSpans(s: string): [number, number][] {
  const out: [number, number][] = [];
  const re = /<[A-Za-z0-9]+:[0-9]+>/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.push([m.index, m.index + m[0].length]);
  return out;
}

export async function runSelfTest(ext: Extension, out: string): Promise<void> {
  try {
    await selfTest(ext, out);
  } catch (e) {
    write(path.join(out, 'api.error'), String(e instanceof Error ? e.stack : e));
  }
}

async function selfTest(ext: Extension, out: string): Promise<void> {
  const file = process.env.DIST_SPACE_E2E_FILE!;
  const n = Number(process.env.DIST_SPACE_E2E_N ?? '200');
  let seed = Number(process.env.DIST_SPACE_E2E_SEED ?? '7');
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const uri = vscode.Uri.file(file).toString();
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  const shared = () => ext.state().sessions.some((s) => s.state === 'connected' && s.docs.some((d) => d.uri === uri && d.open));
  while (!shared()) await sleep(20);
  write(path.join(out, 'api.ready'), '');
  while (!fs.existsSync(path.join(out, 'go'))) await sleep(5);

  const pool = ['a', 'b', 'é', '😀', '\n', 'xy', 'ü\n', ' ', '日本'];
  const mine: string[] = [];
  let retries = 0;
  for (let i = 1; i <= n; i++) {
    for (;;) {
      const s = doc.getText();
      const spans = markerSpans(s);
      const r = rnd();
      const we = new vscode.WorkspaceEdit();
      let marker: string | undefined;
      if (r < 0.3 && s.length > 0) {
        let a = Math.floor(rnd() * s.length);
        let e = Math.min(s.length, a + 1 + Math.floor(rnd() * 4));
        if (/[\udc00-\udfff]/.test(s[a] ?? '')) a--;
        if (/[\udc00-\udfff]/.test(s[e] ?? '')) e++;
        if (spans.some(([x, y]) => a < y && e > x)) break; // would touch a marker: skip this one
        we.delete(doc.uri, new vscode.Range(doc.positionAt(a), doc.positionAt(e)));
      } else {
        let p = r < 0.45 ? 0 : Math.floor(rnd() * (s.length + 1));
        if (/[\udc00-\udfff]/.test(s[p] ?? '')) p--;
        const inside = spans.find(([x, y]) => p > x && p < y);
        if (inside) p = inside[0];
        let text = pool[Math.floor(rnd() * pool.length)];
        if (r > 0.8) {
          marker = `<C:${i}>`;
          text = marker;
        }
        we.insert(doc.uri, doc.positionAt(p), text);
      }
      // Versioned: refused if the document moved on (typing, a remote edit); then retry.
      // Through the editor when it is shown (atomic check-and-apply; see session.ts).
      const ed = vscode.window.visibleTextEditors.find((x) => x.document === doc);
      const [entry] = we.entries();
      const ok = ed
        ? await ed.edit((b) => entry[1].forEach((e) => b.replace(e.range, e.newText))).then(
            (r) => r,
            () => false,
          )
        : await vscode.workspace.applyEdit(we);
      if (ok) {
        if (marker) mine.push(marker);
        break;
      }
      retries++;
    }
    await sleep(Math.floor(rnd() * 3));
  }
  write(path.join(out, 'api.markers'), mine.join('\n'));
  write(path.join(out, 'api.done'), String(retries));

  let last: string | undefined;
  let lastState = '';
  const jumpFile = path.join(out, 'jump');
  while (!fs.existsSync(path.join(out, 'stop'))) {
    const t = doc.getText();
    if (t !== last) {
      write(path.join(out, 'vscode.txt'), t);
      last = t;
    }
    const st = JSON.stringify(ext.state(), null, 1);
    if (st !== lastState) {
      write(path.join(out, 'state.json'), st);
      lastState = st;
    }
    if (fs.existsSync(jumpFile)) {
      const name = fs.readFileSync(jumpFile, 'utf8').trim();
      fs.unlinkSync(jumpFile);
      const ok = await vscode.commands.executeCommand<boolean>('distSpace.jump', name);
      const ed = vscode.window.activeTextEditor;
      const h = ed?.selection.active;
      write(path.join(out, 'jump.result'), ok && h ? `${h.line} ${h.character}` : 'failed');
    }
    const followFile = path.join(out, 'follow');
    if (fs.existsSync(followFile)) {
      // "<name> <line>": follow <name>, then wait until the view shows <line> (they move there)
      const [name, line] = fs.readFileSync(followFile, 'utf8').trim().split(' ');
      fs.unlinkSync(followFile);
      const ok = await vscode.commands.executeCommand<boolean>('distSpace.follow', name);
      write(path.join(out, 'follow.started'), String(ok));
      const want = Number(line);
      const t0 = Date.now();
      let seen = false;
      while (!seen && Date.now() - t0 < 20000) {
        const ed = vscode.window.activeTextEditor;
        seen = !!ed && ed.visibleRanges.some((r) => r.start.line <= want && want <= r.end.line);
        if (!seen) await sleep(20);
      }
      const ed = vscode.window.activeTextEditor;
      write(path.join(out, 'follow.result'), seen ? 'visible' : `not visible: ${JSON.stringify(ed?.visibleRanges)}`);
    }
    await sleep(20);
  }
  write(path.join(out, 'vscode.txt'), doc.getText());
}
