//! Minimal edits between two texts with `imara-diff`: a line diff (histogram), each changed hunk
//! refined by a char diff (Myers) when it is small enough. Edits are in chars.
//! [`merge_diff`] (a minimal diff shaped for merging) and [`closest`] (which of several texts a
//! new text most plausibly derives from) serve the merges: editors' reopens, external changes.

use std::ops::Range;

use imara_diff::{Algorithm, Diff, InternedInput};

/// A positional edit in chars. A list of edits is *valid in sequence*: each edit's range refers
/// to the text after all earlier edits of the list were applied (the engine's `Edit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextEdit {
    pub range: Range<usize>,
    pub text: String,
}

/// Hunks up to this many chars per side are refined to char level.
const REFINE_LIMIT: usize = 8 * 1024;

/// Prefix sums: `(byte offset, char offset)` at the start of each line token, plus the end.
fn line_offsets(s: &str) -> Vec<(usize, usize)> {
    let mut v = Vec::with_capacity(s.len() / 32 + 2);
    let (mut b, mut c) = (0usize, 0usize);
    v.push((0, 0));
    for line in s.split_inclusive('\n') {
        b += line.len();
        c += line.chars().count();
        v.push((b, c));
    }
    v
}

/// Edits turning `old` into `new`, valid in sequence, in ascending order.
pub fn diff_edits(old: &str, new: &str) -> Vec<TextEdit> {
    if old == new {
        return Vec::new();
    }
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    let lo = line_offsets(old);
    let ln = line_offsets(new);
    let mut out = Vec::new();
    let mut delta: isize = 0; // (chars inserted - chars deleted) by earlier edits
    for h in diff.hunks() {
        let (ob0, oc0) = lo[h.before.start as usize];
        let (ob1, oc1) = lo[h.before.end as usize];
        let (nb0, _) = ln[h.after.start as usize];
        let (nb1, _) = ln[h.after.end as usize];
        let old_part = &old[ob0..ob1];
        let new_part = &new[nb0..nb1];
        let o_len = oc1 - oc0;
        let n_len = new_part.chars().count();
        if o_len <= REFINE_LIMIT && n_len <= REFINE_LIMIT && o_len > 0 && n_len > 0 {
            for e in char_edits(old_part, new_part) {
                let start = (oc0 + e.0.start) as isize + delta;
                out.push(TextEdit {
                    range: start as usize..start as usize + e.0.len(),
                    text: e.1.clone(),
                });
                delta += e.1.chars().count() as isize - e.0.len() as isize;
            }
        } else {
            let start = oc0 as isize + delta;
            out.push(TextEdit {
                range: start as usize..start as usize + o_len,
                text: new_part.to_string(),
            });
            delta += n_len as isize - o_len as isize;
        }
    }
    out
}

/// Char-level diff: `(old char range, new text)` in ascending order, positions in `old`.
fn char_edits(old: &str, new: &str) -> Vec<(Range<usize>, String)> {
    let mut input: InternedInput<char> = InternedInput::default();
    input.update_before(old.chars());
    input.update_after(new.chars());
    let mut diff = Diff::compute(Algorithm::Myers, &input);
    diff.postprocess_no_heuristic(&input);
    let new_chars: Vec<char> = new.chars().collect();
    diff.hunks()
        .map(|h| {
            let text: String = new_chars[h.after.start as usize..h.after.end as usize]
                .iter()
                .collect();
            (h.before.start as usize..h.before.end as usize, text)
        })
        .collect()
}

/// Chars an edit list changes: deleted plus inserted.
pub fn edit_cost(es: &[TextEdit]) -> usize {
    es.iter()
        .map(|e| e.range.len() + e.text.chars().count())
        .sum()
}

/// Chars an edit list inserts.
pub fn inserted_chars(es: &[TextEdit]) -> usize {
    es.iter().map(|e| e.text.chars().count()).sum()
}

/// How far `new` is from `old`, to rank candidate bases: the chars of the whole lines the
/// line diff changes plus twice the chars the char diff ([`diff_edits`]) changes, and the
/// latter alone. Chars alone undercount a change next to similar text (a line `<W>` written
/// where another writer had added `<M5>` costs 3 chars as a change of that line, 4 as the
/// insertion it was); whole lines alone cannot see inside a one-line file. Together the true
/// base wins both.
pub fn derivation_cost(old: &str, new: &str) -> (usize, usize) {
    if old == new {
        return (0, 0);
    }
    // One line diff; its hunks refined by char diffs as `diff_edits` does.
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    let lo = line_offsets(old);
    let ln = line_offsets(new);
    let (mut lines, mut chars) = (0usize, 0usize);
    for h in diff.hunks() {
        let (ob0, oc0) = lo[h.before.start as usize];
        let (ob1, oc1) = lo[h.before.end as usize];
        let (nb0, nc0) = ln[h.after.start as usize];
        let (nb1, nc1) = ln[h.after.end as usize];
        let (o_len, n_len) = (oc1 - oc0, nc1 - nc0);
        lines += o_len + n_len;
        chars += if o_len <= REFINE_LIMIT && n_len <= REFINE_LIMIT && o_len > 0 && n_len > 0 {
            char_edits(&old[ob0..ob1], &new[nb0..nb1])
                .iter()
                .map(|(r, t)| r.len() + t.chars().count())
                .sum()
        } else {
            o_len + n_len
        };
    }
    (lines + 2 * chars, chars)
}

/// Among candidate texts, the one `new` most plausibly derives from: the smallest
/// [`derivation_cost`] (the first candidate wins ties). Returns its index and its char diff's
/// cost (0: equal). A candidate whose length alone rules it out is not diffed; the search
/// stops at a candidate equal to `new`. `None` for no candidates.
pub fn closest<'a>(
    cands: impl IntoIterator<Item = std::borrow::Cow<'a, str>>,
    new: &str,
) -> Option<(usize, usize)> {
    let new_len = new.chars().count();
    let mut best: Option<(usize, usize, usize)> = None;
    for (i, t) in cands.into_iter().enumerate() {
        let len = t.chars().count();
        if best.is_some_and(|(_, c, _)| 3 * len.abs_diff(new_len) >= c) {
            continue; // cannot be strictly better
        }
        let (c, chars) = derivation_cost(&t, new);
        if best.is_none_or(|(_, b, _)| c < b) {
            best = Some((i, c, chars));
        }
        if c == 0 {
            break;
        }
    }
    best.map(|(i, _, chars)| (i, chars))
}

/// Above this (chars of the changed middle, times the heuristic diff's cost) the minimal
/// diff is not attempted: `O((N+M)D)` would stall the caller (the daemon's single writer).
const MINIMAL_DIFF_BUDGET: usize = 200_000_000;

/// Edits turning `old` into `new` (valid in sequence) for a *merge*: they are applied at the
/// version whose text is `old` and merged with what others did since, so the diff's shape
/// matters, not only its result. A heuristic diff "moves" text (deletes characters and
/// inserts equal ones elsewhere) and places insertions in the middle of existing words, so a
/// concurrent insertion at that spot ends up inside the new text (seen in the editor crash
/// test: markers split by an agent's marker). So: a minimal char diff (pure insertions stay
/// insertions), each insertion slid to the most natural of its equivalent places (after a
/// line break, then after whitespace, then after closing punctuation; else where it was).
/// Large inputs fall back to [`diff_edits`]. Used for an editor's reopen and for external
/// changes of a file.
pub fn merge_diff(old: &str, new: &str) -> Vec<TextEdit> {
    let rough = diff_edits(old, new);
    let (o, n): (Vec<char>, Vec<char>) = (old.chars().collect(), new.chars().collect());
    let pre = o.iter().zip(&n).take_while(|(a, b)| a == b).count();
    let suf = o[pre..]
        .iter()
        .rev()
        .zip(n[pre..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (om, nm) = (&o[pre..o.len() - suf], &n[pre..n.len() - suf]);
    if (om.len() + nm.len()).saturating_mul(edit_cost(&rough)) > MINIMAL_DIFF_BUDGET {
        return rough;
    }
    let mut input: InternedInput<char> = InternedInput::default();
    input.update_before(om.iter().copied());
    input.update_after(nm.iter().copied());
    let diff = Diff::compute(Algorithm::MyersMinimal, &input);
    // Hunks in old/new char offsets of the whole texts.
    let hunks: Vec<(Range<usize>, Range<usize>)> = diff
        .hunks()
        .map(|h| {
            (
                pre + h.before.start as usize..pre + h.before.end as usize,
                pre + h.after.start as usize..pre + h.after.end as usize,
            )
        })
        .collect();
    let mut out = Vec::with_capacity(hunks.len());
    let mut delta: isize = 0;
    let mut prev_end = 0usize; // old offset the previous hunk ended at
    for (i, (b, a)) in hunks.iter().enumerate() {
        let (mut at, mut ins): (usize, Vec<char>) = (b.start, n[a.clone()].to_vec());
        if b.is_empty() && !ins.is_empty() {
            let next_start = hunks.get(i + 1).map_or(o.len(), |h| h.0.start);
            (at, ins) = slide(&o, at, ins, prev_end, next_start);
        }
        let start = (at as isize + delta) as usize;
        out.push(TextEdit {
            range: start..start + b.len(),
            text: ins.iter().collect(),
        });
        delta += ins.len() as isize - b.len() as isize;
        prev_end = b.end;
    }
    out
}

/// Among the places an insertion of `ins` at `at` in `o` can slide to (within `lo..=hi`,
/// same resulting text), the most natural one (see [`merge_diff`]).
fn slide(o: &[char], at: usize, ins: Vec<char>, lo: usize, hi: usize) -> (usize, Vec<char>) {
    let score = |q: usize| -> u8 {
        match q.checked_sub(1).map(|i| o[i]) {
            None | Some('\n') => 3,
            Some(c) if c.is_whitespace() => 2,
            Some('>' | ')' | ']' | '}' | ';' | ',' | '.' | '"' | '\'') => 1,
            _ => 0,
        }
    };
    let mut best = (score(at), at, ins.clone());
    // Left: inserting `ins` at q equals inserting `o[q-1] + ins[..-1]` at q-1 when
    // `ins` ends with `o[q-1]`.
    let (mut q, mut s) = (at, ins.clone());
    while q > lo && s.last() == Some(&o[q - 1]) {
        s.pop();
        s.insert(0, o[q - 1]);
        q -= 1;
        if score(q) > best.0 {
            best = (score(q), q, s.clone());
        }
    }
    let (mut q, mut s) = (at, ins);
    while q < hi && s.first() == Some(&o[q]) {
        s.remove(0);
        s.push(o[q]);
        q += 1;
        if score(q) > best.0 {
            best = (score(q), q, s.clone());
        }
    }
    (best.1, best.2)
}

/// Lines of context around each hunk of [`unified_diff`].
const CONTEXT: u32 = 3;

/// A unified diff (`diff -u`: 3 lines of context, GNU hunk headers, `\ No newline at end of
/// file` markers) turning `old` into `new`, with `--- old_name` / `+++ new_name` headers;
/// empty when the texts are equal. Hunks come from imara-diff (histogram); the printing is
/// ours (imara-diff 0.2.0's printer numbers a hunk one line after its first context line).
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    // The same line tokens as imara-diff's `&str` source: lines with their `\n`.
    let ol: Vec<&str> = old.split_inclusive('\n').collect();
    let nl: Vec<&str> = new.split_inclusive('\n').collect();
    let hunks: Vec<imara_diff::Hunk> = diff.hunks().collect();
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let line = |out: &mut String, mark: char, l: &str| {
        out.push(mark);
        out.push_str(l);
        if !l.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    };
    let mut i = 0;
    while i < hunks.len() {
        // Hunks closer than twice the context share one `@@` block.
        let mut j = i;
        while j + 1 < hunks.len() && hunks[j + 1].before.start - hunks[j].before.end <= 2 * CONTEXT
        {
            j += 1;
        }
        let b0 = hunks[i].before.start.saturating_sub(CONTEXT);
        let b1 = (hunks[j].before.end + CONTEXT).min(ol.len() as u32);
        let a0 = hunks[i].after.start - (hunks[i].before.start - b0);
        let a1 = hunks[j].after.end + (b1 - hunks[j].before.end);
        // GNU: an empty side is numbered by the line before it.
        let first = |start: u32, len: u32| if len == 0 { start } else { start + 1 };
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            first(b0, b1 - b0),
            b1 - b0,
            first(a0, a1 - a0),
            a1 - a0
        ));
        let mut at = b0;
        for h in &hunks[i..=j] {
            for k in at..h.before.start {
                line(&mut out, ' ', ol[k as usize]);
            }
            for k in h.before.clone() {
                line(&mut out, '-', ol[k as usize]);
            }
            for k in h.after.clone() {
                line(&mut out, '+', nl[k as usize]);
            }
            at = h.before.end;
        }
        for k in at..b1 {
            line(&mut out, ' ', ol[k as usize]);
        }
        i = j + 1;
    }
    out
}

/// Apply edits (valid in sequence) to a string; used by tests and as a reference.
pub fn apply_edits(text: &str, edits: &[TextEdit]) -> String {
    let mut rope = ropey::Rope::from_str(text);
    for e in edits {
        rope.remove(e.range.clone());
        rope.insert(e.range.start, &e.text);
    }
    rope.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_change_is_minimal() {
        let old = "fn main() {\n    println!(\"hi\");\n}\n";
        let new = "fn main() {\n    println!(\"hello\");\n}\n";
        let e = diff_edits(old, new);
        assert_eq!(apply_edits(old, &e), new);
        let changed: usize = e
            .iter()
            .map(|e| e.range.len() + e.text.chars().count())
            .sum();
        assert!(changed <= 6, "{e:?}");
    }

    #[test]
    fn unified_diff_has_headers_hunks_and_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
        let d = unified_diff(old, new, "a/f.txt", "b/f.txt");
        assert_eq!(
            d,
            "--- a/f.txt\n+++ b/f.txt\n@@ -2,7 +2,8 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n+i\n"
        );
        assert_eq!(unified_diff(old, old, "a", "b"), "");
        // Far apart changes: two blocks; a last line without a newline is marked.
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new: String = (0..20)
            .filter(|i| *i != 17)
            .map(|i| match i {
                2 => "two\n".to_string(),
                _ => format!("{i}\n"),
            })
            .collect::<String>()
            + "end";
        assert_eq!(
            unified_diff(&old, &new, "a", "b"),
            "--- a\n+++ b\n@@ -1,6 +1,6 @@\n 0\n 1\n-2\n+two\n 3\n 4\n 5\n\
             @@ -15,6 +15,6 @@\n 14\n 15\n 16\n-17\n 18\n 19\n+end\n\\ No newline at end of file\n"
        );
        // A file created from nothing: every line added.
        assert_eq!(
            unified_diff("", "x\ny\n", "/dev/null", "b/n"),
            "--- /dev/null\n+++ b/n\n@@ -0,0 +1,2 @@\n+x\n+y\n"
        );
    }

    /// Applies a unified diff as `patch` would (headers checked against the old text).
    fn patch(old: &str, diff: &str) -> String {
        let ol: Vec<&str> = old.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut at = 0usize;
        let mut lines = diff.split_inclusive('\n').skip(2).peekable();
        while let Some(h) = lines.next() {
            let nums: Vec<usize> = h
                .trim_matches(|c| c == '@' || c == ' ' || c == '\n')
                .split([' ', ','])
                .map(|x| x.trim_start_matches(['-', '+']).parse().unwrap())
                .collect();
            let (start, len) = (nums[0], nums[1]);
            let start = if len == 0 { start } else { start - 1 };
            out.extend(ol[at..start].iter().copied());
            at = start;
            while let Some(l) = lines.next_if(|l| !l.starts_with("@@")) {
                let marker_follows = lines.peek().is_some_and(|n| n.starts_with('\\'));
                let body = if marker_follows {
                    l.strip_suffix('\n').unwrap()
                } else {
                    l
                };
                match body.chars().next().unwrap() {
                    ' ' => {
                        assert_eq!(&body[1..], ol[at]);
                        out.push_str(&body[1..]);
                        at += 1;
                    }
                    '-' => {
                        assert_eq!(&body[1..], ol[at]);
                        at += 1;
                    }
                    '+' => out.push_str(&body[1..]),
                    _ => panic!("bad line {l:?}"),
                }
                if marker_follows {
                    lines.next();
                }
            }
        }
        out.extend(ol[at..].iter().copied());
        out
    }

    #[test]
    fn merge_diff_keeps_insertions_whole_and_at_natural_places() {
        // "<N2>" typed before "<N20>": also expressible as "N2><" after the first "<"
        // or "2><N" after "<N"; the line start is where it was typed.
        let old = "a\n<N20>b\n";
        let new = "a\n<N2><N20>b\n";
        let es = merge_diff(old, new);
        assert_eq!(
            es,
            [TextEdit {
                range: 2..2,
                text: "<N2>".into()
            }]
        );
        // Many insertions into repeated lines: insertions only, each at a line start.
        let old = "alpha\n".repeat(12);
        let mut new = String::new();
        for (i, l) in old.split_inclusive('\n').enumerate() {
            if i % 3 == 0 {
                new.push_str(&format!("<N{i}>"));
            }
            new.push_str(l);
        }
        let es = merge_diff(&old, &new);
        assert!(es.iter().all(|e| e.range.is_empty()), "{es:?}");
        assert!(
            es.iter()
                .all(|e| e.text.starts_with('<') && e.text.ends_with('>')),
            "{es:?}"
        );
        assert_eq!(apply_edits(&old, &es), new);
    }

    #[test]
    fn closest_prefers_the_smallest_diff_then_the_first() {
        let c = |v: &[&'static str], new: &str| closest(v.iter().map(|s| (*s).into()), new);
        assert_eq!(c(&[], "x"), None);
        assert_eq!(c(&["abc\n", "ab\n"], "ab\n"), Some((1, 0)));
        assert_eq!(c(&["a\nb\n", "a\nb\nc\n"], "a\nb\nc\nd\n"), Some((1, 2)));
        // An insertion next to a similar one made after the base: the base, not a change of
        // the similar line.
        let base = "x\ny\n";
        assert_eq!(c(&["x\ny\n<M5>\n", base], "x\ny\n<W>\n"), Some((1, 4)));
        // The char part is `diff_edits`' cost.
        for (o, n) in [("ab\ncd\n", "ab\nxcd\ney\n"), ("", "q"), ("a\nb", "")] {
            assert_eq!(derivation_cost(o, n).1, edit_cost(&diff_edits(o, n)));
        }
        // Equal cost: the first.
        assert_eq!(c(&["x\n", "y\n"], "z\n"), Some((0, 2)));
    }

    proptest! {
        #[test]
        fn unified_diff_patches_old_into_new(
            old in "(([abc]|\u{e9}){0,3}\n){0,30}([ab]{0,2})",
            new in "(([abc]|\u{e9}){0,3}\n){0,30}([ab]{0,2})",
        ) {
            let d = unified_diff(&old, &new, "a", "b");
            prop_assert_eq!(d.is_empty(), old == new);
            if !d.is_empty() {
                prop_assert_eq!(patch(&old, &d), new);
            }
        }

        #[test]
        fn merge_diff_turns_any_text_into_any_other(
            old in "[ab<>\n \u{e9}]{0,30}", new in "[ab<>\n \u{e9}]{0,30}",
        ) {
            prop_assert_eq!(apply_edits(&old, &merge_diff(&old, &new)), new);
        }

        #[test]
        fn diff_roundtrip(old in "[ab\n\u{e9}\u{1F600}]{0,60}", new in "[ab\n\u{e9}\u{1F600}]{0,60}") {
            let e = diff_edits(&old, &new);
            prop_assert_eq!(apply_edits(&old, &e), new);
        }
    }
}
