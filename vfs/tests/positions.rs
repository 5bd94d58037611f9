use ropey::Rope;
use vfs::pos::*;

fn p(line: u32, character: u32) -> LspPosition {
    LspPosition::new(line, character)
}
use PositionEncoding::{Utf16, Utf32, Utf8};

fn roundtrip_all(text: &str) {
    let rope = Rope::from_str(text);
    for enc in [Utf8, Utf16, Utf32] {
        for c in 0..=rope.len_chars() {
            let pos = char_to_position(&rope, c, enc).unwrap();
            let back = position_to_char(&rope, pos, enc).unwrap();
            // Offsets between \r and \n map to the line end (before \r).
            let in_crlf =
                c > 0 && c < rope.len_chars() && rope.char(c - 1) == '\r' && rope.char(c) == '\n';
            if in_crlf {
                assert_eq!(back, c - 1, "{text:?} {c} {enc:?}");
            } else {
                assert_eq!(back, c, "{text:?} {c} {enc:?}");
            }
        }
    }
}

#[test]
fn ascii() {
    let r = Rope::from_str("hello\nworld\n");
    assert_eq!(position_to_char(&r, p(1, 3), Utf16).unwrap(), 9);
    assert_eq!(char_to_position(&r, 9, Utf8).unwrap(), p(1, 3));
    roundtrip_all("hello\nworld\n");
}

#[test]
fn two_three_four_byte_chars() {
    // é = 2 bytes/1 unit, € = 3 bytes/1 unit, 😀 = 4 bytes/2 UTF-16 units.
    let text = "aé€😀b\n";
    let r = Rope::from_str(text);
    let b = 4; // char offset of 'b'
    assert_eq!(char_to_position(&r, b, Utf8).unwrap(), p(0, 1 + 2 + 3 + 4));
    assert_eq!(char_to_position(&r, b, Utf16).unwrap(), p(0, 1 + 1 + 1 + 2));
    assert_eq!(char_to_position(&r, b, Utf32).unwrap(), p(0, 4));
    assert_eq!(position_to_char(&r, p(0, 10), Utf8).unwrap(), b);
    assert_eq!(position_to_char(&r, p(0, 5), Utf16).unwrap(), b);
    assert_eq!(position_to_char(&r, p(0, 4), Utf32).unwrap(), b);
    roundtrip_all(text);
}

#[test]
fn inside_a_char_is_an_error() {
    let r = Rope::from_str("x😀y");
    // UTF-16: unit 2 is between the two surrogates of 😀.
    assert!(matches!(
        position_to_char(&r, p(0, 2), Utf16),
        Err(PositionError::InsideChar { .. })
    ));
    // UTF-8: bytes 2..4 are inside 😀.
    for ch in 2..5 {
        assert!(matches!(
            position_to_char(&r, p(0, ch), Utf8),
            Err(PositionError::InsideChar { .. })
        ));
    }
    assert_eq!(position_to_char(&r, p(0, 3), Utf16).unwrap(), 2);
}

#[test]
fn crlf_and_cr() {
    let text = "ab\r\ncd\r\n\r\nef";
    let r = Rope::from_str(text);
    assert_eq!(line_count(&r), 4);
    assert_eq!(position_to_char(&r, p(1, 0), Utf16).unwrap(), 4);
    // Character past the line end clamps before the \r\n.
    assert_eq!(position_to_char(&r, p(0, 99), Utf16).unwrap(), 2);
    assert_eq!(position_to_char(&r, p(2, 5), Utf16).unwrap(), 8);
    assert_eq!(char_to_position(&r, 3, Utf16).unwrap(), p(0, 2)); // between \r and \n
    assert_eq!(LineEnding::detect(&r), LineEnding::CrLf);
    roundtrip_all(text);
    let cr = Rope::from_str("a\rb\rc");
    assert_eq!(line_count(&cr), 3);
    assert_eq!(position_to_char(&cr, p(2, 0), Utf16).unwrap(), 4);
    roundtrip_all("a\rb\rc");
}

#[test]
fn only_lsp_line_breaks_count() {
    // U+2028 and form feed are not LSP line breaks.
    let text = "a\u{2028}b\u{000C}c\nd";
    let r = Rope::from_str(text);
    assert_eq!(line_count(&r), 2);
    assert_eq!(position_to_char(&r, p(1, 0), Utf16).unwrap(), 6);
    assert_eq!(char_to_position(&r, 4, Utf16).unwrap(), p(0, 4));
    roundtrip_all(text);
}

#[test]
fn empty_lines_and_eof() {
    let r = Rope::from_str("\n\n");
    assert_eq!(line_count(&r), 3);
    assert_eq!(position_to_char(&r, p(1, 0), Utf16).unwrap(), 1);
    assert_eq!(position_to_char(&r, p(1, 7), Utf16).unwrap(), 1);
    assert_eq!(position_to_char(&r, p(2, 0), Utf16).unwrap(), 2);
    assert_eq!(char_to_position(&r, 2, Utf16).unwrap(), p(2, 0));
    let empty = Rope::new();
    assert_eq!(position_to_char(&empty, p(0, 0), Utf8).unwrap(), 0);
    assert_eq!(position_to_char(&empty, p(5, 5), Utf8).unwrap(), 0);
    assert_eq!(char_to_position(&empty, 0, Utf32).unwrap(), p(0, 0));
    roundtrip_all("x\n\ny\n");
}

#[test]
fn clamping_past_end() {
    let r = Rope::from_str("one\ntwo");
    assert_eq!(position_to_char(&r, p(9, 0), Utf16).unwrap(), 7);
    assert_eq!(position_to_char(&r, p(1, u32::MAX), Utf8).unwrap(), 7);
    assert_eq!(
        position_to_char(&r, p(u32::MAX, u32::MAX), Utf32).unwrap(),
        7
    );
}

#[test]
#[allow(clippy::reversed_empty_ranges)] // a reversed range is the point of the test
fn errors_never_panic() {
    let r = Rope::from_str("abc\ndef");
    assert!(matches!(
        LspPosition::from_signed(-1, 0),
        Err(PositionError::OutOfRange { .. })
    ));
    assert!(matches!(
        LspPosition::from_signed(0, -3),
        Err(PositionError::OutOfRange { .. })
    ));
    assert!(matches!(
        LspPosition::from_signed(1i64 << 40, 0),
        Err(PositionError::OutOfRange { .. })
    ));
    let bad = LspRange {
        start: p(1, 2),
        end: p(0, 1),
    };
    assert!(matches!(
        range_to_chars(&r, bad, Utf16),
        Err(PositionError::EndBeforeStart { .. })
    ));
    assert!(matches!(
        char_to_position(&r, 8, Utf16),
        Err(PositionError::OffsetPastEnd { .. })
    ));
    assert!(matches!(
        chars_to_range(&r, 3..1, Utf16),
        Err(PositionError::EndBeforeStart { .. })
    ));
    let ok = LspRange {
        start: p(0, 1),
        end: p(1, 2),
    };
    assert_eq!(range_to_chars(&r, ok, Utf16).unwrap(), 1..6);
    assert_eq!(chars_to_range(&r, 1..6, Utf16).unwrap(), ok);
}

#[test]
fn encoding_names() {
    for e in [Utf8, Utf16, Utf32] {
        assert_eq!(PositionEncoding::from_lsp_name(e.lsp_name()), Some(e));
    }
    assert_eq!(PositionEncoding::from_lsp_name("utf-7"), None);
}
