//! The on-disk format of the history log (`ROOT/.dist-space/history.log`): an append-only
//! sequence of framed, checksummed, versioned records.
//!
//! ```text
//! file   = header-frame record-frame*
//! frame  = magic "DSLR" | kind u8 | flags u8 (0) | reserved u16 (0) | len u32 LE
//!          | crc32 u32 LE (of kind..len and the payload) | payload (len bytes)
//! ```
//!
//! The header frame's payload is the format version (u32 LE, [`FORMAT_VERSION`]). Record
//! payloads are little-endian fixed-width integers and length-prefixed byte strings (see
//! [`Record`]); document events are the engine's own binary encoding (`engine::encoding`,
//! which carries its own magic, version and crc32), one chunk per record.
//!
//! Reading never panics: a frame that ends past the end of the file is a *torn tail* (a crash
//! in the middle of an append); a bad magic, checksum or payload is *corruption*. Either way
//! the scan stops there and reports the offset of the last good frame's end.

use engine::RemoteVersion;

pub const MAGIC: &[u8; 4] = b"DSLR";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 16;
/// Refuse frames claiming more than this (a corrupt length must not allocate gigabytes).
pub const MAX_FRAME: usize = 256 << 20;

const KIND_HEADER: u8 = 0;
const KIND_DOC_NEW: u8 = 1;
const KIND_EVENTS: u8 = 2;
const KIND_DISK_BASE: u8 = 3;
const KIND_RENAME: u8 = 4;
const KIND_DELETE: u8 = 5;
const KIND_NOTE: u8 = 6;
const KIND_TIMES: u8 = 7;

/// Stable identity of a document in the log (survives renames; never reused in one log).
pub type DocKey = u64;

/// One log record. Every record carries the wall-clock time it was committed (ms since the
/// Unix epoch), for `dist-space log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// First frame of a file.
    Header { version: u32 },
    /// A document enters the log: its path and its whole event log so far, base text included
    /// (`engine::Document::encode`).
    DocNew {
        key: DocKey,
        time: u64,
        path: String,
        chunk: Vec<u8>,
    },
    /// Events appended to a document (`engine::Document::encode_since` the previous record).
    Events {
        key: DocKey,
        time: u64,
        chunk: Vec<u8>,
    },
    /// The document version whose text is what the disk holds (after a write-back, a read of
    /// an external change, or the disk catching up).
    DiskBase {
        key: DocKey,
        time: u64,
        version: RemoteVersion,
    },
    /// The file was renamed or moved (its identity, and history, stay).
    Rename {
        key: DocKey,
        time: u64,
        path: String,
    },
    /// The file left the workspace.
    Delete { key: DocKey, time: u64 },
    /// A human-readable note (recovery reports).
    Note { time: u64, text: String },
    /// When a document's history was made, for the age rule of compaction: `(time, events)`
    /// pairs, ascending, meaning "the first `events` local versions existed at `time`". Written
    /// after a compacted `DocNew` (whose one chunk spans many commits); replaces the
    /// document's marks.
    Times {
        key: DocKey,
        time: u64,
        marks: Vec<(u64, u64)>,
    },
}

impl Record {
    pub fn time(&self) -> u64 {
        match self {
            Record::Header { .. } => 0,
            Record::DocNew { time, .. }
            | Record::Events { time, .. }
            | Record::DiskBase { time, .. }
            | Record::Rename { time, .. }
            | Record::Delete { time, .. }
            | Record::Note { time, .. }
            | Record::Times { time, .. } => *time,
        }
    }
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    put_u32(b, s.len() as u32);
    b.extend_from_slice(s);
}

struct Rd<'a> {
    b: &'a [u8],
}
impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("record payload too short".into());
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "string is not UTF-8".into())
    }
    fn end(&self) -> Result<(), String> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes in record payload".into())
        }
    }
}

/// Encodes one record as a complete frame.
pub fn encode(r: &Record) -> Vec<u8> {
    let mut p = Vec::new();
    let kind = match r {
        Record::Header { version } => {
            put_u32(&mut p, *version);
            KIND_HEADER
        }
        Record::DocNew {
            key,
            time,
            path,
            chunk,
        } => {
            put_u64(&mut p, *key);
            put_u64(&mut p, *time);
            put_bytes(&mut p, path.as_bytes());
            put_bytes(&mut p, chunk);
            KIND_DOC_NEW
        }
        Record::Events { key, time, chunk } => {
            put_u64(&mut p, *key);
            put_u64(&mut p, *time);
            put_bytes(&mut p, chunk);
            KIND_EVENTS
        }
        Record::DiskBase { key, time, version } => {
            put_u64(&mut p, *key);
            put_u64(&mut p, *time);
            put_u32(&mut p, version.len() as u32);
            for (a, s) in version {
                put_bytes(&mut p, a.as_bytes());
                put_u64(&mut p, *s);
            }
            KIND_DISK_BASE
        }
        Record::Rename { key, time, path } => {
            put_u64(&mut p, *key);
            put_u64(&mut p, *time);
            put_bytes(&mut p, path.as_bytes());
            KIND_RENAME
        }
        Record::Delete { key, time } => {
            put_u64(&mut p, *key);
            put_u64(&mut p, *time);
            KIND_DELETE
        }
        Record::Note { time, text } => {
            put_u64(&mut p, *time);
            put_bytes(&mut p, text.as_bytes());
            KIND_NOTE
        }
        Record::Times { key, time, marks } => {
            put_u64(&mut p, *key);
            put_u64(&mut p, *time);
            put_u32(&mut p, marks.len() as u32);
            for (t, n) in marks {
                put_u64(&mut p, *t);
                put_u64(&mut p, *n);
            }
            KIND_TIMES
        }
    };
    let mut out = Vec::with_capacity(HEADER_LEN + p.len());
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.push(0);
    out.extend_from_slice(&[0, 0]);
    put_u32(&mut out, p.len() as u32);
    let mut h = crc32fast::Hasher::new();
    h.update(&out[4..12]);
    h.update(&p);
    put_u32(&mut out, h.finalize());
    out.extend_from_slice(&p);
    out
}

fn decode_payload(kind: u8, p: &[u8]) -> Result<Record, String> {
    let mut r = Rd { b: p };
    let rec = match kind {
        KIND_HEADER => Record::Header { version: r.u32()? },
        KIND_DOC_NEW => Record::DocNew {
            key: r.u64()?,
            time: r.u64()?,
            path: r.string()?,
            chunk: r.bytes()?.to_vec(),
        },
        KIND_EVENTS => Record::Events {
            key: r.u64()?,
            time: r.u64()?,
            chunk: r.bytes()?.to_vec(),
        },
        KIND_DISK_BASE => {
            let key = r.u64()?;
            let time = r.u64()?;
            let n = r.u32()? as usize;
            let mut version = RemoteVersion::new();
            for _ in 0..n.min(p.len()) {
                let a = r.string()?;
                let s = r.u64()?;
                version.insert(a, s);
            }
            Record::DiskBase { key, time, version }
        }
        KIND_RENAME => Record::Rename {
            key: r.u64()?,
            time: r.u64()?,
            path: r.string()?,
        },
        KIND_DELETE => Record::Delete {
            key: r.u64()?,
            time: r.u64()?,
        },
        KIND_NOTE => Record::Note {
            time: r.u64()?,
            text: r.string()?,
        },
        KIND_TIMES => {
            let key = r.u64()?;
            let time = r.u64()?;
            let n = r.u32()? as usize;
            let mut marks = Vec::with_capacity(n.min(p.len() / 16));
            for _ in 0..n {
                marks.push((r.u64()?, r.u64()?));
            }
            Record::Times { key, time, marks }
        }
        k => return Err(format!("unknown record kind {k}")),
    };
    r.end()?;
    Ok(rec)
}

/// Where and why a scan stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The last frame is incomplete (a crash during an append): safe to cut off.
    TornTail { offset: u64, bytes: u64 },
    /// A frame that is complete but wrong (bad magic, checksum, payload or events).
    Corrupt {
        offset: u64,
        bytes: u64,
        reason: String,
    },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::TornTail { offset, bytes } => {
                write!(
                    f,
                    "torn tail at byte {offset} ({bytes} bytes of an unfinished append)"
                )
            }
            Damage::Corrupt {
                offset,
                bytes,
                reason,
            } => write!(
                f,
                "corrupt record at byte {offset} ({reason}); {bytes} bytes from there on dropped"
            ),
        }
    }
}

/// The good records of a log image, in order, with their offsets, and what stopped the scan.
#[derive(Debug, Default)]
pub struct Scan {
    pub records: Vec<(u64, Record)>,
    /// Length of the good prefix (where the next frame would go).
    pub good_len: u64,
    pub damage: Option<Damage>,
}

/// Scans a whole log image. Never panics; stops at the first damaged frame.
pub fn scan(data: &[u8]) -> Scan {
    let mut s = Scan::default();
    let mut at = 0usize;
    let total = data.len() as u64;
    while at < data.len() {
        let off = at as u64;
        let rest = &data[at..];
        let corrupt = |reason: String| Damage::Corrupt {
            offset: off,
            bytes: total - off,
            reason,
        };
        let torn = Damage::TornTail {
            offset: off,
            bytes: total - off,
        };
        if rest.len() < HEADER_LEN {
            // An incomplete header is torn only if what is there is a prefix of a frame.
            let m = rest.len().min(4);
            s.damage = Some(if rest[..m] == MAGIC[..m] {
                torn
            } else {
                corrupt("bad frame magic".into())
            });
            break;
        }
        if &rest[..4] != MAGIC {
            s.damage = Some(corrupt("bad frame magic".into()));
            break;
        }
        let kind = rest[4];
        let len = u32::from_le_bytes(rest[8..12].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(rest[12..16].try_into().expect("4"));
        if len > MAX_FRAME {
            s.damage = Some(corrupt(format!("frame length {len} too large")));
            break;
        }
        if rest.len() < HEADER_LEN + len {
            s.damage = Some(torn);
            break;
        }
        let payload = &rest[HEADER_LEN..HEADER_LEN + len];
        let mut h = crc32fast::Hasher::new();
        h.update(&rest[4..12]);
        h.update(payload);
        if h.finalize() != crc {
            s.damage = Some(corrupt("checksum mismatch".into()));
            break;
        }
        let rec = match decode_payload(kind, payload) {
            Ok(r) => r,
            Err(e) => {
                s.damage = Some(corrupt(e));
                break;
            }
        };
        if s.records.is_empty() {
            match &rec {
                Record::Header { version } if *version == FORMAT_VERSION => {}
                Record::Header { version } => {
                    s.damage = Some(corrupt(format!(
                        "log format version {version}, this build reads {FORMAT_VERSION}"
                    )));
                    break;
                }
                _ => {
                    s.damage = Some(corrupt("missing log header".into()));
                    break;
                }
            }
        }
        s.records.push((off, rec));
        at += HEADER_LEN + len;
        s.good_len = at as u64;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        let mut v = RemoteVersion::new();
        v.insert("ed#1-2".into(), 41);
        v.insert("disk".into(), 3);
        vec![
            Record::Header {
                version: FORMAT_VERSION,
            },
            Record::DocNew {
                key: 1,
                time: 17,
                path: "src/é.rs".into(),
                chunk: vec![1, 2, 3],
            },
            Record::Events {
                key: 1,
                time: 18,
                chunk: vec![9; 100],
            },
            Record::DiskBase {
                key: 1,
                time: 19,
                version: v,
            },
            Record::Rename {
                key: 1,
                time: 20,
                path: "b.rs".into(),
            },
            Record::Delete { key: 1, time: 21 },
            Record::Note {
                time: 22,
                text: "recovered".into(),
            },
            Record::Times {
                key: 1,
                time: 23,
                marks: vec![(5, 10), (7, 12)],
            },
        ]
    }

    fn image(rs: &[Record]) -> Vec<u8> {
        rs.iter().flat_map(encode).collect()
    }

    #[test]
    fn records_round_trip() {
        let rs = sample();
        let img = image(&rs);
        let s = scan(&img);
        assert_eq!(s.damage, None);
        assert_eq!(s.good_len, img.len() as u64);
        let got: Vec<Record> = s.records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(got, rs);
    }

    #[test]
    fn every_truncation_is_a_torn_tail_keeping_the_prefix() {
        let rs = sample();
        let img = image(&rs);
        let ends: Vec<usize> = rs
            .iter()
            .scan(0, |a, r| {
                *a += encode(r).len();
                Some(*a)
            })
            .collect();
        for cut in 0..img.len() {
            let s = scan(&img[..cut]);
            let whole = ends.iter().filter(|e| **e <= cut).count();
            assert_eq!(s.records.len(), whole, "cut {cut}");
            let at_boundary = cut == 0 || ends.contains(&cut);
            match s.damage {
                None => assert!(at_boundary, "cut {cut}"),
                Some(Damage::TornTail { offset, .. }) => {
                    assert_eq!(offset, s.good_len);
                    assert!(!at_boundary);
                }
                Some(d) => panic!("cut {cut}: {d}"),
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_detected_and_keeps_the_frames_before() {
        let rs = sample();
        let img = image(&rs);
        let mut start = 0;
        for r in &rs {
            let n = encode(r).len();
            for i in start..start + n {
                let mut bad = img.clone();
                bad[i] ^= 0x5a;
                let s = scan(&bad);
                let kept = s.records.len();
                // Everything before the damaged frame is kept, nothing from it on.
                assert_eq!(s.good_len as usize, start, "byte {i}");
                assert!(kept < rs.len());
                assert!(s.damage.is_some(), "byte {i}");
            }
            start += n;
        }
    }

    #[test]
    fn huge_claimed_length_is_corruption_not_an_allocation() {
        let mut img = image(&sample()[..1]);
        let mut f = encode(&Record::Delete { key: 1, time: 1 });
        f[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        img.extend_from_slice(&f);
        let s = scan(&img);
        assert!(matches!(s.damage, Some(Damage::Corrupt { .. })));
        assert_eq!(s.records.len(), 1);
    }

    #[test]
    fn wrong_version_is_refused() {
        let img = image(&[Record::Header { version: 99 }]);
        let s = scan(&img);
        assert!(matches!(s.damage, Some(Damage::Corrupt { .. })));
        assert!(s.records.is_empty());
    }
}
