// Positions and edits on plain strings, in VS Code's terms (UTF-16 code units), with no
// dependency on the `vscode` module (unit-tested by test/text.test.ts).
//
// The extension negotiates the UTF-16 position encoding with the sidecar (VS Code offers no
// other), so LSP positions from the sidecar and VS Code positions count the same units. What
// has to be converted is the *shape* of edits: the sidecar sends edits applied in sequence
// (each range refers to the text after the previous edit), VS Code's `WorkspaceEdit` wants
// edits that all refer to the original text and do not overlap.
//
// Lines end at "\r\n", "\r" or "\n", as in VS Code's text model and the sidecar's ropey
// (`cr_lines`). Positions past the end of a line or of the text clamp (LSP rule); a position
// inside a surrogate pair or between "\r" and "\n" moves back to the start of that character.

export interface Pos {
  line: number;
  character: number;
}
export interface Range {
  start: Pos;
  end: Pos;
}
/** An LSP content change: `range` absent means "the whole text is now `text`". */
export interface Change {
  range?: Range;
  text: string;
}
/** A replacement of `text[start, end)` (UTF-16 offsets) by `text`. */
export interface OffsetEdit {
  start: number;
  end: number;
  text: string;
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Offsets where each line starts. */
export function lineStarts(text: string): number[] {
  const out = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13) {
      if (text.charCodeAt(i + 1) === 10) i++;
      out.push(i + 1);
    } else if (c === 10) {
      out.push(i + 1);
    }
  }
  return out;
}

/** Offset of the end of line `line` (before its line break). */
function lineEnd(text: string, starts: number[], line: number): number {
  if (line + 1 >= starts.length) return text.length;
  let e = starts[line + 1];
  if (text.charCodeAt(e - 1) === 10) e--;
  if (e > starts[line] && text.charCodeAt(e - 1) === 13) e--;
  return e;
}

/** Snap an offset that falls inside a character (surrogate pair, CRLF) back to its start. */
export function snapOffset(text: string, off: number): number {
  off = Math.max(0, Math.min(off, text.length));
  return splits(text, off) ? off - 1 : off;
}

/** UTF-16 offset of an LSP position (clamped, snapped to a character boundary). */
export function offsetAt(text: string, pos: Pos, starts: number[] = lineStarts(text)): number {
  if (pos.line < 0) return 0;
  if (pos.line >= starts.length) return text.length;
  const s = starts[pos.line];
  const e = lineEnd(text, starts, pos.line);
  return snapOffset(text, s + Math.max(0, Math.min(pos.character, e - s)));
}

/** LSP position of a UTF-16 offset (clamped to the text). */
export function positionAt(text: string, off: number, starts: number[] = lineStarts(text)): Pos {
  off = Math.max(0, Math.min(off, text.length));
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= off) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo, character: off - starts[lo] };
}

/** Apply LSP content changes in sequence. */
export function applyChanges(text: string, changes: Change[]): string {
  for (const ch of changes) {
    if (!ch.range) {
      text = ch.text;
      continue;
    }
    const starts = lineStarts(text);
    const a = offsetAt(text, ch.range.start, starts);
    const b = Math.max(a, offsetAt(text, ch.range.end, starts));
    text = text.slice(0, a) + ch.text + text.slice(b);
  }
  return text;
}

/** The smallest replacement turning `a` into `b` (common prefix and suffix kept), or null. */
export function diff(a: string, b: string): OffsetEdit | null {
  if (a === b) return null;
  let p = 0;
  const max = Math.min(a.length, b.length);
  while (p < max && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  let s = 0;
  while (s < max - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  // never split a surrogate pair or a CRLF
  while (p > 0 && (splits(a, p) || splits(b, p))) p--;
  while (s > 0 && (splits(a, a.length - s) || splits(b, b.length - s))) s--;
  return { start: p, end: a.length - s, text: b.slice(p, b.length - s) };
}

/** Whether offset `i` falls inside a character (between a surrogate pair, or "\r" and "\n"). */
function splits(t: string, i: number): boolean {
  if (i <= 0 || i >= t.length) return false;
  const c = t.charCodeAt(i);
  const b = t.charCodeAt(i - 1);
  return (isLow(c) && isHigh(b)) || (c === 10 && b === 13);
}

/** Shrink an edit to what it really changes; null when it changes nothing. */
export function minimize(text: string, e: OffsetEdit): OffsetEdit | null {
  const d = diff(text.slice(e.start, e.end), e.text);
  return d && { start: e.start + d.start, end: e.start + d.end, text: d.text };
}

/**
 * Turn edits applied in sequence into non-overlapping edits on the original `text`, sorted by
 * position, each minimal, none a no-op; applying them all at once gives the same result as
 * applying the sequence. Sequences that go forwards (each edit after the previous one's new
 * text) or backwards (each edit before the previous one) map exactly; anything else becomes
 * one replacement of the span that differs.
 */
export function toParallel(text: string, changes: Change[]): OffsetEdit[] {
  const seq: OffsetEdit[] = [];
  let cur = text;
  for (const ch of changes) {
    if (!ch.range) return union(text, ch.text);
    const starts = lineStarts(cur);
    const a = offsetAt(cur, ch.range.start, starts);
    const b = Math.max(a, offsetAt(cur, ch.range.end, starts));
    seq.push({ start: a, end: b, text: ch.text });
    cur = cur.slice(0, a) + ch.text + cur.slice(b);
  }
  let out: OffsetEdit[] | null = forwards(seq) ?? backwards(seq);
  if (!out) return union(text, cur);
  out = out.map((e) => minimize(text, e)).filter((e): e is OffsetEdit => e !== null);
  return out;
}

function union(text: string, result: string): OffsetEdit[] {
  const d = diff(text, result);
  return d ? [d] : [];
}

function push(out: OffsetEdit[], e: OffsetEdit) {
  const last = out[out.length - 1];
  if (last && last.end === e.start) {
    last.end = e.end;
    last.text += e.text;
  } else {
    out.push({ ...e });
  }
}

function forwards(seq: OffsetEdit[]): OffsetEdit[] | null {
  const out: OffsetEdit[] = [];
  let delta = 0; // current offset - original offset, after the previous edits
  let minStart = 0; // the next edit must start at or after the previous one's new text
  for (const e of seq) {
    if (e.start < minStart) return null;
    push(out, { start: e.start - delta, end: e.end - delta, text: e.text });
    minStart = e.start + e.text.length;
    delta += e.text.length - (e.end - e.start);
  }
  return out;
}

function backwards(seq: OffsetEdit[]): OffsetEdit[] | null {
  const out: OffsetEdit[] = [];
  let maxEnd = Infinity;
  for (const e of seq) {
    if (e.end > maxEnd) return null;
    maxEnd = e.start;
    // earlier edits are all after this one: its offsets are original offsets
    const next = out[0];
    if (next && next.start === e.end) {
      next.start = e.start;
      next.text = e.text + next.text;
    } else {
      out.unshift({ ...e });
    }
  }
  return out;
}

/** Apply non-overlapping sorted offset edits at once. */
export function applyParallel(text: string, edits: OffsetEdit[]): string {
  let out = '';
  let at = 0;
  for (const e of edits) {
    out += text.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + text.slice(at);
}

/**
 * VS Code grows an empty selection over text inserted exactly at it (a remote insert at your
 * cursor would end up selected, and your next keystroke would replace it). For each pure
 * insertion at one of `cursors` (UTF-16 offsets of selection ends), widen the edit by the
 * character before it (or after it, at the start of the text) so the cursor is at the end (or
 * the start) of a replaced range instead: it then stays collapsed, after (before) the new
 * text. The result of the edits is unchanged. `edits` are sorted and apart (toParallel).
 */
export function protectCursors(text: string, edits: OffsetEdit[], cursors: number[]): OffsetEdit[] {
  const at = new Set(cursors);
  return edits.map((e, i) => {
    if (e.start !== e.end || !at.has(e.start)) return e;
    const prevEnd = i > 0 ? edits[i - 1].end : 0;
    const nextStart = i + 1 < edits.length ? edits[i + 1].start : text.length;
    let w = e.start - 1;
    if (w >= 0 && isLow(text.charCodeAt(w)) && w > 0 && isHigh(text.charCodeAt(w - 1))) w--;
    if (text.charCodeAt(w) === 10 && w > 0 && text.charCodeAt(w - 1) === 13) w--;
    if (w >= 0 && w > prevEnd) return { start: w, end: e.end, text: text.slice(w, e.start) + e.text };
    let r = e.end + 1;
    if (r < text.length && splits(text, r)) r++;
    if (r <= text.length && e.end < text.length && r < nextStart) return { start: e.start, end: r, text: e.text + text.slice(e.end, r) };
    return e;
  });
}
