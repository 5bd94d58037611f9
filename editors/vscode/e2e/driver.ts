// Drives real VS Code (code-server) through Debian's chromium with playwright-core, for
// sidecar/tests/vscode_e2e.rs. Talks to the test through files in $OUT, like the Neovim scripts.
//
// Env: CS_URL (code-server), WORKSPACE (folder), FILE (name of the file to edit, shown in the
// explorer), OUT (folder), UI_N (UI actions), SEED, CHROMIUM (default /usr/bin/chromium).
//   ui.ready            the file is open in an editor with keyboard focus
//   go                  (from the test) start typing
//   ui.markers/ui.done  after UI_N actions: typed characters, Enter, markers `<U:i>` (pasted:
//                       one edit), Home/End/Ctrl+Home/Ctrl+End;
//                       no deletions or arrow keys (the UI cannot see where others' markers
//                       are: it must not type inside one)
//   shot                (from the test) a participant name: find their cursor label in the DOM,
//                       save a screenshot to $SHOT, write shot.json
//   type.K              (from the test) text to type at the end of the file; typed.K afterwards
//   stop                (from the test) quit
import { chromium, Page } from 'playwright-core';
import * as fs from 'node:fs';
import * as path from 'node:path';

const env = (k: string, d?: string): string => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`missing env ${k}`);
  return v;
};
const OUT = env('OUT');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (f: string) => fs.existsSync(path.join(OUT, f));
function write(f: string, s: string) {
  const p = path.join(OUT, f);
  fs.writeFileSync(p + '.tmp', s);
  fs.renameSync(p + '.tmp', p);
}
async function until(what: string, ms: number, pred: () => boolean | Promise<boolean>) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(25);
  }
  throw new Error('timeout waiting for ' + what);
}
const t0 = Date.now();
const log = (m: string) => console.log(`[driver +${Date.now() - t0} ms] ${m}`);

/** Texts of decorations in the editor's lines: `before`/`after` content, rendered either as
 *  CSS pseudo-elements or as injected-text spans (class `ced-…`), with their background. */
async function cursorLabels(page: Page): Promise<{ name: string; color: string }[]> {
  return page.evaluate(() => {
    const out: { name: string; color: string }[] = [];
    for (const el of Array.from(document.querySelectorAll('.monaco-editor .view-lines span'))) {
      for (const pseudo of ['::before', '::after']) {
        const st = getComputedStyle(el, pseudo);
        if (st.content && st.content !== 'none' && st.content !== 'normal') {
          out.push({ name: st.content.replace(/^"|"$/g, ''), color: st.backgroundColor });
        }
      }
      if (/\bced-/.test(el.className) && el.children.length === 0 && el.textContent) {
        out.push({ name: el.textContent, color: getComputedStyle(el).backgroundColor });
      }
    }
    return out;
  });
}

/** Paste `text` into the focused editor (a paste event: one edit, like Ctrl+V); true once it
 *  shows up in the editor's lines (the cursor's line is always rendered). Not retried: a paste
 *  that shows up late would then be doubled; a marker not seen is left out of the check. */
async function paste(page: Page, text: string): Promise<boolean> {
  const lines = page.locator('.editor-instance .monaco-editor .view-lines');
  await page.evaluate((t) => {
    const dt = new DataTransfer();
    dt.setData('text/plain', t);
    document.activeElement?.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, text);
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    if ((await lines.innerText()).includes(text)) return true;
    await sleep(20);
  }
  log(`paste of ${text} not seen (focus: ${await page.evaluate(() => document.activeElement?.className)}); not checked`);
  return false;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    // required on these machines (see shared/editor-e2e)
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${env('CS_URL')}/?folder=${encodeURIComponent(env('WORKSPACE'))}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
    log('workbench');
    const file = env('FILE');
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: file }).first().click({ timeout: 60000 });
    const editor = page.locator('.editor-instance .monaco-editor .view-lines');
    await editor.waitFor({ timeout: 30000 });
    await editor.click();
    await page.keyboard.press('Control+End');
    log('editor open');
    write('ui.ready', '');
    await until('go', 120000, () => exists('go'));

    let seed = Number(env('SEED', '11'));
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const pool = ['a', 'b', 'é', '😀', ' ', 'x', '日'];
    // Only moves that can never land inside someone's marker (markers have no line breaks).
    const moves = ['Home', 'End', 'Control+Home', 'Control+End'];
    const n = Number(env('UI_N', '200'));
    const markers: string[] = [];
    for (let i = 1; i <= n; i++) {
      const r = rnd();
      if (r < 0.55) await page.keyboard.type(pool[Math.floor(rnd() * pool.length)]);
      else if (r < 0.65) await page.keyboard.press('Enter');
      else if (r < 0.8) {
        // A marker must arrive in one piece (others never edit inside a marker they see):
        // pasted (a paste event on the editor's focused input), one edit like Ctrl+V.
        // (keyboard.insertText reaches Monaco as one keystroke per character.)
        const m = `<U:${i}>`;
        if (await paste(page, m)) markers.push(m);
      } else await page.keyboard.press(moves[Math.floor(rnd() * moves.length)]);
    }
    write('ui.markers', markers.join('\n'));
    write('ui.done', '');
    log(`typed ${n} UI actions`);

    for (let k = 1; !exists('stop'); ) {
      if (exists('shot')) {
        const name = fs.readFileSync(path.join(OUT, 'shot'), 'utf8').trim();
        fs.unlinkSync(path.join(OUT, 'shot'));
        await page.keyboard.press('Control+Home');
        let labels: { name: string; color: string }[] = [];
        await until(`a cursor label "${name}" in the DOM`, 20000, async () => {
          labels = await cursorLabels(page);
          return labels.some((l) => l.name === name);
        });
        await sleep(200);
        await page.screenshot({ path: env('SHOT') });
        write('shot.json', JSON.stringify({ labels }));
        log(`screenshot with the cursor of ${name}`);
      }
      if (exists(`type.${k}`)) {
        const text = fs.readFileSync(path.join(OUT, `type.${k}`), 'utf8');
        await page.keyboard.press('Control+End');
        await page.keyboard.type(text);
        write(`typed.${k}`, '');
        log(`typed ${JSON.stringify(text)}`);
        k++;
      }
      await sleep(25);
    }
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    write('ui.error', String(e instanceof Error ? e.stack : e));
    process.exit(1);
  },
);
