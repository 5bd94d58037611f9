//! Minimal edits between two texts with `imara-diff`: a line diff (histogram), each changed hunk
//! refined by a char diff (Myers) when it is small enough. Edits are in chars.

use std::ops::Range;

use imara_diff::{
    Algorithm, BasicLineDiffPrinter, Diff, InternedInput, Token, UnifiedDiffConfig,
    UnifiedDiffPrinter,
};

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

/// A unified diff (`diff -u` style, 3 lines of context) turning `old` into `new`, with
/// `--- old_name` / `+++ new_name` headers; empty when the texts are equal. A last line
/// without a final newline is printed with one (no `\ No newline at end of file` marker).
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    let printer = GnuHeaders(BasicLineDiffPrinter(&input.interner));
    let body = diff
        .unified_diff(&printer, UnifiedDiffConfig::default(), &input)
        .to_string();
    format!("--- {old_name}\n+++ {new_name}\n{body}")
}

/// imara-diff's line printer with GNU diff's hunk headers: an empty side is numbered by the
/// line *before* it (`@@ -0,0 +1,2 @@` for a file created from nothing), as `patch` and
/// `git apply` expect.
struct GnuHeaders<'a>(BasicLineDiffPrinter<'a, str>);

impl UnifiedDiffPrinter for GnuHeaders<'_> {
    fn display_header(
        &self,
        mut f: impl std::fmt::Write,
        start_before: u32,
        start_after: u32,
        len_before: u32,
        len_after: u32,
    ) -> std::fmt::Result {
        let first = |start: u32, len: u32| if len == 0 { start } else { start + 1 };
        writeln!(
            f,
            "@@ -{},{len_before} +{},{len_after} @@",
            first(start_before, len_before),
            first(start_after, len_after)
        )
    }
    fn display_context_token(&self, f: impl std::fmt::Write, token: Token) -> std::fmt::Result {
        self.0.display_context_token(f, token)
    }
    fn display_hunk(
        &self,
        f: impl std::fmt::Write,
        before: &[Token],
        after: &[Token],
    ) -> std::fmt::Result {
        self.0.display_hunk(f, before, after)
    }
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
        // A file created from nothing: every line added.
        assert_eq!(
            unified_diff("", "x\ny\n", "/dev/null", "b/n"),
            "--- /dev/null\n+++ b/n\n@@ -0,0 +1,2 @@\n+x\n+y\n"
        );
    }

    proptest! {
        #[test]
        fn diff_roundtrip(old in "[ab\n\u{e9}\u{1F600}]{0,60}", new in "[ab\n\u{e9}\u{1F600}]{0,60}") {
            let e = diff_edits(&old, &new);
            prop_assert_eq!(apply_edits(&old, &e), new);
        }
    }
}
