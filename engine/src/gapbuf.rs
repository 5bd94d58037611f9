//! A small UTF-8 gap buffer: the text around the cursor while it is being edited.

/// Bytes `[0, gap_start)` and `[gap_end, len)` are the text; each side is valid UTF-8.
#[derive(Clone, Debug, Default)]
pub(crate) struct GapBuf {
    buf: Vec<u8>,
    gap_start: usize,
    gap_end: usize,
    /// Chars before the gap.
    gap_char: usize,
    /// Chars in the text.
    chars: usize,
}

#[inline]
fn is_cont(b: u8) -> bool {
    b & 0xC0 == 0x80
}

impl GapBuf {
    pub fn chars(&self) -> usize {
        self.chars
    }

    pub fn len_bytes(&self) -> usize {
        self.buf.len() - (self.gap_end - self.gap_start)
    }

    pub fn clear(&mut self) {
        self.gap_start = 0;
        self.gap_end = self.buf.len();
        self.gap_char = 0;
        self.chars = 0;
    }

    /// Moves the gap to char `c` (`c <= chars`). Costs the distance moved.
    fn move_gap(&mut self, c: usize) {
        if c < self.gap_char {
            let k = self.gap_char - c;
            let b =
                if k <= self.gap_start && self.buf[self.gap_start - k..self.gap_start].is_ascii() {
                    self.gap_start - k
                } else {
                    let mut b = self.gap_start;
                    for _ in 0..k {
                        b -= 1;
                        while is_cont(self.buf[b]) {
                            b -= 1;
                        }
                    }
                    b
                };
            let n = self.gap_start - b;
            self.buf.copy_within(b..self.gap_start, self.gap_end - n);
            self.gap_start = b;
            self.gap_end -= n;
        } else if c > self.gap_char {
            let e = self.skip_chars(self.gap_end, c - self.gap_char);
            let n = e - self.gap_end;
            self.buf.copy_within(self.gap_end..e, self.gap_start);
            self.gap_start += n;
            self.gap_end = e;
        }
        self.gap_char = c;
    }

    /// Byte index `k` chars after byte `b` (right of the gap).
    fn skip_chars(&self, b: usize, k: usize) -> usize {
        if b + k <= self.buf.len() && self.buf[b..b + k].is_ascii() {
            return b + k;
        }
        let mut e = b;
        for _ in 0..k {
            e += 1;
            while e < self.buf.len() && is_cont(self.buf[e]) {
                e += 1;
            }
        }
        e
    }

    /// Inserts `s` (`n` chars) at char `c`. Grows the buffer as needed.
    pub fn insert(&mut self, c: usize, s: &str, n: usize) {
        if self.gap_end - self.gap_start < s.len() {
            let need = self.len_bytes() + s.len();
            let cap = (self.buf.len() * 2).max(need + 256);
            let right = self.buf.len() - self.gap_end;
            let mut nb = vec![0u8; cap];
            nb[..self.gap_start].copy_from_slice(&self.buf[..self.gap_start]);
            nb[cap - right..].copy_from_slice(&self.buf[self.gap_end..]);
            self.gap_end = cap - right;
            self.buf = nb;
        }
        self.move_gap(c);
        self.buf[self.gap_start..self.gap_start + s.len()].copy_from_slice(s.as_bytes());
        self.gap_start += s.len();
        self.gap_char += n;
        self.chars += n;
    }

    /// Deletes chars `c..c+n` (within the text).
    pub fn delete(&mut self, c: usize, n: usize) {
        self.move_gap(c);
        self.gap_end = self.skip_chars(self.gap_end, n);
        self.chars -= n;
    }

    /// The text, as the two sides of the gap.
    pub fn parts(&self) -> (&str, &str) {
        let l = std::str::from_utf8(&self.buf[..self.gap_start]).expect("gap buffer holds UTF-8");
        let r = std::str::from_utf8(&self.buf[self.gap_end..]).expect("gap buffer holds UTF-8");
        (l, r)
    }
}

#[cfg(test)]
mod tests {
    use super::GapBuf;

    #[test]
    fn edits_match_a_string() {
        let mut g = GapBuf::default();
        let mut s: Vec<char> = Vec::new();
        let mut seed = 12345u64;
        let pieces = ["a", "é", "日本", "🙂", "xyz", "\r\n"];
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pos = (seed % (s.len() as u64 + 1)) as usize;
            if seed.is_multiple_of(3) && pos < s.len() {
                let n = ((seed >> 8) % 3 + 1).min((s.len() - pos) as u64) as usize;
                g.delete(pos, n);
                s.drain(pos..pos + n);
            } else {
                let p = pieces[((seed >> 16) % pieces.len() as u64) as usize];
                g.insert(pos, p, p.chars().count());
                for (i, ch) in p.chars().enumerate() {
                    s.insert(pos + i, ch);
                }
            }
            let (l, r) = g.parts();
            assert_eq!(format!("{l}{r}"), s.iter().collect::<String>());
            assert_eq!(g.chars(), s.len());
        }
    }
}
