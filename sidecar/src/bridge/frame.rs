//! LSP base-protocol framing for the bridge: `Content-Length: N\r\n` (other headers allowed,
//! names case-insensitive) `\r\n` then N bytes of JSON. Reads work on any `BufRead`, so a frame
//! split over many reads (or many frames in one read) is assembled exactly.

use std::io::{self, BufRead, Read, Write};

/// Longest header line accepted (a real header is a few dozen bytes).
const MAX_HEADER_LINE: u64 = 8 * 1024;

/// What one read gave.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A whole message body.
    Body(Vec<u8>),
    /// A frame that was skipped: its header named no usable length, or its body is longer than
    /// the limit (the body is read and dropped, so the stream stays in step).
    Skipped(String),
}

/// Read the next frame; `Ok(None)` at end of input between frames.
pub fn read_frame(r: &mut impl BufRead, max_body: usize) -> io::Result<Option<Frame>> {
    let mut len: Option<usize> = None;
    let mut bad: Option<String> = None;
    let mut seen_header = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r
            .by_ref()
            .take(MAX_HEADER_LINE)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            if seen_header {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "end of input inside a frame header",
                ));
            }
            return Ok(None);
        }
        if line.last() != Some(&b'\n') && n as u64 == MAX_HEADER_LINE {
            // An endless line: drop it up to its end.
            skip_line(r)?;
            bad = Some("header line too long".into());
            seen_header = true;
            continue;
        }
        let l = trim_eol(&line);
        if l.is_empty() {
            if !seen_header {
                // Stray blank line between frames.
                continue;
            }
            break;
        }
        seen_header = true;
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            bad = Some(format!(
                "header without a colon: {:?}",
                String::from_utf8_lossy(l)
            ));
            continue;
        };
        let (name, value) = (l[..colon].trim_ascii(), l[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            {
                Some(v) => len = Some(v),
                None => {
                    bad = Some(format!(
                        "bad Content-Length {:?}",
                        String::from_utf8_lossy(value)
                    ))
                }
            }
        }
    }
    let Some(len) = len else {
        return Ok(Some(Frame::Skipped(
            bad.unwrap_or_else(|| "frame without Content-Length".into()),
        )));
    };
    if len > max_body {
        let dropped = io::copy(&mut r.by_ref().take(len as u64), &mut io::sink())?;
        if dropped < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of input inside a frame",
            ));
        }
        return Ok(Some(Frame::Skipped(format!(
            "frame of {len} bytes is over the {max_body}-byte limit"
        ))));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(Frame::Body(body)))
}

fn skip_line(r: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            r.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
    }
}

fn trim_eol(l: &[u8]) -> &[u8] {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Write one frame and flush it.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    write!(w, "Content-Length: {}\r\n\r\n", body.len())?;
    w.write_all(body)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read (partial reads).
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all(data: &[u8], step: usize, max: usize) -> Vec<Frame> {
        let mut r = io::BufReader::with_capacity(step.max(1), Trickle { data, step });
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut r, max).unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn frames_survive_any_split_and_header_case() {
        let mut data = Vec::new();
        write_frame(&mut data, br#"{"a":1}"#).unwrap();
        data.extend_from_slice(b"content-length: 7\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{\"b\":2}");
        data.extend_from_slice(b"CONTENT-LENGTH:3\r\n\r\n[1]");
        for step in [1, 2, 3, 5, 64, 4096] {
            assert_eq!(
                all(&data, step, 1024),
                vec![
                    Frame::Body(br#"{"a":1}"#.to_vec()),
                    Frame::Body(br#"{"b":2}"#.to_vec()),
                    Frame::Body(b"[1]".to_vec())
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn bad_frames_are_skipped_and_the_stream_stays_in_step() {
        let mut data = b"X-Nothing: 1\r\n\r\nContent-Length: 5\r\n\r\n12345".to_vec();
        write_frame(&mut data, b"{}").unwrap();
        let got = all(&data, 3, 4);
        assert!(matches!(&got[0], Frame::Skipped(_)), "{got:?}");
        assert!(
            matches!(&got[1], Frame::Skipped(m) if m.contains("limit")),
            "{got:?}"
        );
        assert_eq!(got[2], Frame::Body(b"{}".to_vec()));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn end_of_input_inside_a_frame_is_an_error() {
        let mut r = io::BufReader::new(&b"Content-Length: 10\r\n\r\n123"[..]);
        assert!(read_frame(&mut r, 100).is_err());
    }
}
