//! Compact binary encoding of event logs, for storage and sync.
//!
//! One format serves both the whole log and "events since a remote version": a chunk is a
//! sequence of event runs in causal order. Layout:
//!
//! ```text
//! magic "DSPACE\x00\x01" | varint format version | varint flags | varint payload length
//! | zstd(payload) | crc32 (little endian) of everything before it
//! ```
//!
//! The payload is columnar (each column a varint stream, length-prefixed), so similar values sit
//! together and compress well:
//! - agents: count, then per agent its name and the first seq it has in this chunk;
//! - per run: agent index; parents (0 = "the previous run's last event", else count+1 and per
//!   parent an internal back-reference or an external (agent, seq) id); op tag and length;
//!   position as a zig-zag delta from where the previous run ended;
//! - the inserted text, concatenated;
//! - the base text's id (length in chars, crc32) and, for whole logs, the base text;
//! - flag bit 1 (compacted whole logs only): a horizon column: the first kept local version,
//!   the original base text's id, every agent with a seq floor (name, floor) and the horizon's
//!   events (agent, seq, local version). Events whose parents are the horizon name its ids.
//!
//! Decoding checks every count, index and reference and the checksum, and rejects truncated or
//! corrupt input with a [`DecodeError`]; it never panics. Positions are checked when the events
//! are merged (whole logs through [`Document::decode`], chunks through
//! [`Document::apply_remote`]).

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::document::{Document, RemoteEvent, RemoteId, RemoteOp, RemoteVersion};
use crate::error::DecodeError;
use crate::frontier::Frontier;
use crate::oplog::{AgentId, NewOp, OpKind, OpLog};

const MAGIC: &[u8; 8] = b"DSPACE\x00\x01";
const FORMAT_VERSION: u64 = 1;
/// Refuse payloads that claim to decompress to more than this.
const MAX_PAYLOAD: u64 = 1 << 32;

// ------------------------------------------------------------------ varints

fn put_uvar(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }
    fn uvar(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.at).ok_or(DecodeError::Truncated)?;
            self.at += 1;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Corrupt("varint overflow"));
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::Corrupt("varint overflow"));
            }
        }
    }
    fn usize(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.uvar()?).map_err(|_| DecodeError::Corrupt("number too large"))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.at..end).ok_or(DecodeError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn column(&mut self) -> Result<Reader<'a>, DecodeError> {
        let n = self.usize()?;
        Ok(Reader::new(self.bytes(n)?))
    }
    fn done(&self) -> bool {
        self.at == self.buf.len()
    }
}

// ------------------------------------------------------------------ encode

const TAG_INS: u64 = 0;
const TAG_DEL: u64 = 1;
const TAG_DEL_BACK: u64 = 2;

/// Identifies a base text (its length in chars and a checksum): chunks of events only make
/// sense to a replica whose log starts from the same base.
pub(crate) fn base_id(base: &ropey::Rope) -> (u64, u64) {
    let mut h = crc32fast::Hasher::new();
    for c in base.chunks() {
        h.update(c.as_bytes());
    }
    (base.len_chars() as u64, h.finalize() as u64)
}

/// A decoded chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Length in chars and checksum of the base text the events apply to.
    pub base_id: (u64, u64),
    /// The base text itself, when the chunk carries it (whole logs).
    pub base: Option<String>,
    pub events: Vec<RemoteEvent>,
}

/// Encodes event runs (in causal order) for a log with base text `base`; `with_base` also
/// stores the base text itself.
pub fn encode_events(events: &[RemoteEvent], base: &ropey::Rope, with_base: bool) -> Vec<u8> {
    encode_inner(events, base_id(base), with_base.then_some(base), None)
}

/// The horizon column of a compacted log (see the module docs).
fn horizon_column(oplog: &OpLog) -> Vec<u8> {
    let mut col = Vec::new();
    put_uvar(&mut col, oplog.first as u64);
    let origin = oplog.origin_id.unwrap_or_else(|| base_id(&oplog.base));
    put_uvar(&mut col, origin.0);
    put_uvar(&mut col, origin.1);
    let floored: Vec<usize> = (0..oplog.agents.len())
        .filter(|i| oplog.agents[*i].floor > 0)
        .collect();
    put_uvar(&mut col, floored.len() as u64);
    for i in &floored {
        let a = &oplog.agents[*i];
        put_uvar(&mut col, a.name.len() as u64);
        col.extend_from_slice(a.name.as_bytes());
        put_uvar(&mut col, a.floor);
    }
    put_uvar(&mut col, oplog.horizon_ids.len() as u64);
    for ((agent, seq), lv) in oplog.horizon_ids.iter().zip(oplog.horizon.as_slice()) {
        let idx = floored.partition_point(|i| *i < agent.0 as usize);
        put_uvar(&mut col, idx as u64);
        put_uvar(&mut col, *seq);
        put_uvar(&mut col, *lv as u64);
    }
    col
}

fn encode_inner(
    events: &[RemoteEvent],
    (base_chars, base_crc): (u64, u64),
    base: Option<&ropey::Rope>,
    horizon: Option<Vec<u8>>,
) -> Vec<u8> {
    // Agents, in order of first appearance, with the first seq each has here.
    let mut agent_idx: HashMap<&str, u64> = HashMap::new();
    let mut agents: Vec<(&str, u64)> = Vec::new();
    for e in events {
        agent_idx.entry(e.agent.as_str()).or_insert_with(|| {
            agents.push((e.agent.as_str(), e.seq));
            agents.len() as u64 - 1
        });
    }
    let mut col_agents = Vec::new();
    put_uvar(&mut col_agents, agents.len() as u64);
    for (name, seq) in &agents {
        put_uvar(&mut col_agents, name.len() as u64);
        col_agents.extend_from_slice(name.as_bytes());
        put_uvar(&mut col_agents, *seq);
    }

    let mut col_agent = Vec::new();
    let mut col_parents = Vec::new();
    let mut col_op = Vec::new();
    let mut col_pos = Vec::new();
    let mut content = String::new();

    // Index of each event run's first event within the chunk, to encode internal parents.
    let mut seen: HashMap<&str, Vec<(u64, u64, u64)>> = HashMap::new(); // agent -> (seq, len, chunk index)
    let mut chunk_len: u64 = 0;
    let mut prev_last: Option<RemoteId> = None;
    let mut prev_end_pos: i64 = 0;
    for e in events {
        let n = e.len() as u64;
        put_uvar(&mut col_agent, agent_idx[e.agent.as_str()]);
        let linear = e.parents.len() == 1 && prev_last.as_ref() == Some(&e.parents[0]);
        if linear {
            put_uvar(&mut col_parents, 0);
        } else {
            put_uvar(&mut col_parents, e.parents.len() as u64 + 1);
            for p in &e.parents {
                let internal = seen.get(p.agent.as_str()).and_then(|runs| {
                    let i = runs.partition_point(|r| r.0 + r.1 <= p.seq);
                    runs.get(i)
                        .filter(|r| p.seq >= r.0)
                        .map(|r| r.2 + (p.seq - r.0))
                });
                match internal {
                    Some(idx) => put_uvar(&mut col_parents, (chunk_len - 1 - idx) << 1),
                    None => {
                        let a = agent_idx.get(p.agent.as_str()).copied();
                        match a {
                            Some(a) => {
                                put_uvar(&mut col_parents, ((a + 1) << 1) | 1);
                            }
                            None => {
                                // An agent with no events in this chunk: name inline.
                                put_uvar(&mut col_parents, 1);
                                put_uvar(&mut col_parents, p.agent.len() as u64);
                                col_parents.extend_from_slice(p.agent.as_bytes());
                            }
                        }
                        put_uvar(&mut col_parents, p.seq);
                    }
                }
            }
        }
        let (tag, pos, end_pos) = match &e.op {
            RemoteOp::Insert { pos, text } => {
                content.push_str(text);
                (TAG_INS, *pos as i64, (*pos as u64 + n) as i64)
            }
            RemoteOp::Delete { pos, backwards, .. } => (
                if *backwards { TAG_DEL_BACK } else { TAG_DEL },
                *pos as i64,
                *pos as i64,
            ),
        };
        put_uvar(&mut col_op, (n << 2) | tag);
        put_uvar(&mut col_pos, zigzag(pos - prev_end_pos));
        prev_end_pos = end_pos;
        seen.entry(e.agent.as_str())
            .or_default()
            .push((e.seq, n, chunk_len));
        chunk_len += n;
        prev_last = Some(RemoteId {
            agent: e.agent.clone(),
            seq: e.seq + n - 1,
        });
    }
    let mut col_count = Vec::new();
    put_uvar(&mut col_count, events.len() as u64);
    let mut col_base = Vec::new();
    put_uvar(&mut col_base, base_chars);
    put_uvar(&mut col_base, base_crc);
    if let Some(base) = base {
        for c in base.chunks() {
            col_base.extend_from_slice(c.as_bytes());
        }
    }

    let mut payload = Vec::new();
    let mut cols: Vec<&[u8]> = vec![
        &col_count,
        &col_agents,
        &col_agent,
        &col_parents,
        &col_op,
        &col_pos,
        content.as_bytes(),
        &col_base,
    ];
    if let Some(h) = &horizon {
        cols.push(h);
    }
    for col in cols {
        put_uvar(&mut payload, col.len() as u64);
        payload.extend_from_slice(col);
    }
    let compressed =
        zstd::bulk::compress(&payload, 3).expect("zstd compression of an in-memory buffer");

    let mut out = Vec::with_capacity(compressed.len() + 24);
    out.extend_from_slice(MAGIC);
    put_uvar(&mut out, FORMAT_VERSION);
    // flags: bit 0 = base text included, bit 1 = horizon column (compacted log)
    put_uvar(
        &mut out,
        base.is_some() as u64 | (horizon.is_some() as u64) << 1,
    );
    put_uvar(&mut out, payload.len() as u64);
    out.extend_from_slice(&compressed);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

// ------------------------------------------------------------------ decode

/// Checks the header and checksum and decompresses the payload.
fn open(bytes: &[u8]) -> Result<(u64, Vec<u8>), DecodeError> {
    if bytes.len() < MAGIC.len() + 4 {
        return if bytes.starts_with(&MAGIC[..bytes.len().min(MAGIC.len())]) {
            Err(DecodeError::Truncated)
        } else {
            Err(DecodeError::BadMagic)
        };
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != crc {
        return Err(DecodeError::ChecksumMismatch);
    }
    let mut r = Reader::new(&body[MAGIC.len()..]);
    let version = r.uvar()?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(
            version.min(u32::MAX as u64) as u32,
        ));
    }
    let flags = r.uvar()?;
    if !matches!(flags, 0 | 1 | 3) {
        return Err(DecodeError::Corrupt("unknown flags"));
    }
    let payload_len = r.uvar()?;
    if payload_len > MAX_PAYLOAD {
        return Err(DecodeError::Corrupt("payload too large"));
    }
    let compressed = &r.buf[r.at..];
    let payload = zstd::bulk::decompress(compressed, payload_len as usize)
        .map_err(|_| DecodeError::Corrupt("bad compressed payload"))?;
    if payload.len() as u64 != payload_len {
        return Err(DecodeError::Corrupt("payload length mismatch"));
    }
    Ok((flags, payload))
}

/// A parent as stored: an event earlier in the chunk, or an id from outside it.
enum ParentRef<'a> {
    Internal(u64),
    External { agent: ExtAgent<'a>, seq: u64 },
}

enum ExtAgent<'a> {
    Index(usize),
    Name(&'a str),
}

/// One decoded run, before ids are resolved.
struct Record<'a> {
    agent: usize,
    /// None: the previous run's last event.
    parents: Option<Vec<ParentRef<'a>>>,
    tag: u64,
    len: u64,
    pos: usize,
    text: &'a str,
}

struct Decoded<'a> {
    flags: u64,
    agents: Vec<(&'a str, u64)>,
    base_id: (u64, u64),
    base: Option<&'a str>,
}

/// Parses a payload, calling `f` for each run in order, with structural checks.
fn parse<'a>(
    flags: u64,
    payload: &'a [u8],
    mut f: impl FnMut(&Decoded<'a>, Record<'a>) -> Result<(), DecodeError>,
) -> Result<Decoded<'a>, DecodeError> {
    let mut p = Reader::new(payload);
    let mut col_count = p.column()?;
    let mut col_agents = p.column()?;
    let mut col_agent = p.column()?;
    let mut col_parents = p.column()?;
    let mut col_op = p.column()?;
    let mut col_pos = p.column()?;
    let content_col = p.column()?;
    let mut col_base = p.column()?;
    if flags & 2 != 0 {
        p.column()?; // the horizon column: see parse_horizon
    }
    if !p.done() {
        return Err(DecodeError::Corrupt("trailing data"));
    }
    let content = std::str::from_utf8(content_col.buf)
        .map_err(|_| DecodeError::Corrupt("inserted text is not UTF-8"))?;
    let base_id = (col_base.uvar()?, col_base.uvar()?);
    let rest = &col_base.buf[col_base.at..];
    let base = if flags & 1 == 1 {
        let t = std::str::from_utf8(rest)
            .map_err(|_| DecodeError::Corrupt("base text is not UTF-8"))?;
        if ropey::str_utils::byte_to_char_idx(t, t.len()) as u64 != base_id.0
            || crc32fast::hash(rest) as u64 != base_id.1
        {
            return Err(DecodeError::Corrupt("base text does not match its id"));
        }
        Some(t)
    } else {
        if !rest.is_empty() {
            return Err(DecodeError::Corrupt("trailing base data"));
        }
        None
    };

    let count = col_count.usize()?;
    let n_agents = col_agents.usize()?;
    if n_agents > payload.len() || count > payload.len() {
        return Err(DecodeError::Corrupt("counts larger than the data"));
    }
    let mut agents: Vec<(&'a str, u64)> = Vec::with_capacity(n_agents);
    for _ in 0..n_agents {
        let len = col_agents.usize()?;
        let name = std::str::from_utf8(col_agents.bytes(len)?)
            .map_err(|_| DecodeError::Corrupt("agent name is not UTF-8"))?;
        if name.is_empty() || name.len() > crate::oplog::MAX_AGENT_NAME {
            return Err(DecodeError::Corrupt("agent name length"));
        }
        let seq = col_agents.uvar()?;
        agents.push((name, seq));
    }
    let mut d = Decoded {
        flags,
        agents,
        base_id,
        base,
    };

    let mut chunk_len: u64 = 0;
    let mut content_at = 0usize;
    let mut prev_end_pos: i64 = 0;
    for i in 0..count {
        let agent = col_agent.usize()?;
        if agent >= d.agents.len() {
            return Err(DecodeError::Corrupt("agent index out of range"));
        }
        let pc = col_parents.uvar()?;
        let parents = if pc == 0 {
            if i == 0 {
                return Err(DecodeError::Corrupt("first run continues nothing"));
            }
            None
        } else {
            let k = pc - 1;
            if k > 1024 {
                return Err(DecodeError::Corrupt("too many parents"));
            }
            let mut ps = Vec::with_capacity(k as usize);
            for _ in 0..k {
                let v = col_parents.uvar()?;
                if v & 1 == 0 {
                    let back = v >> 1;
                    if back >= chunk_len {
                        return Err(DecodeError::Corrupt("parent reference out of range"));
                    }
                    ps.push(ParentRef::Internal(chunk_len - 1 - back));
                } else {
                    let a = v >> 1;
                    let agent = if a == 0 {
                        let len = col_parents.usize()?;
                        let name = std::str::from_utf8(col_parents.bytes(len)?)
                            .map_err(|_| DecodeError::Corrupt("agent name is not UTF-8"))?;
                        ExtAgent::Name(name)
                    } else {
                        let a = usize::try_from(a - 1)
                            .map_err(|_| DecodeError::Corrupt("agent index"))?;
                        if a >= d.agents.len() {
                            return Err(DecodeError::Corrupt("agent index out of range"));
                        }
                        ExtAgent::Index(a)
                    };
                    let seq = col_parents.uvar()?;
                    ps.push(ParentRef::External { agent, seq });
                }
            }
            Some(ps)
        };
        let opv = col_op.uvar()?;
        let tag = opv & 3;
        let n = opv >> 2;
        if n == 0 || n > (1 << 40) {
            return Err(DecodeError::Corrupt("bad run length"));
        }
        let delta = unzigzag(col_pos.uvar()?);
        let pos = prev_end_pos
            .checked_add(delta)
            .filter(|p| *p >= 0)
            .ok_or(DecodeError::Corrupt("negative position"))?;
        let pos = usize::try_from(pos).map_err(|_| DecodeError::Corrupt("position too large"))?;
        let text = match tag {
            TAG_INS => {
                let rest = &content[content_at..];
                let b = if rest.len() as u64 >= n && rest.as_bytes()[..n as usize].is_ascii() {
                    n as usize
                } else {
                    let mut b = None;
                    for (chars, (i, _)) in rest.char_indices().enumerate() {
                        if chars as u64 == n {
                            b = Some(i);
                            break;
                        }
                    }
                    match b {
                        Some(b) => b,
                        None if ropey::str_utils::byte_to_char_idx(rest, rest.len()) as u64
                            == n =>
                        {
                            rest.len()
                        }
                        None => {
                            return Err(DecodeError::Corrupt(
                                "inserted text shorter than its events",
                            ))
                        }
                    }
                };
                content_at += b;
                prev_end_pos = pos as i64 + n as i64;
                &rest[..b]
            }
            TAG_DEL | TAG_DEL_BACK => {
                prev_end_pos = pos as i64;
                ""
            }
            _ => return Err(DecodeError::Corrupt("unknown op tag")),
        };
        let seq = d.agents[agent].1;
        d.agents[agent].1 = seq
            .checked_add(n)
            .ok_or(DecodeError::Corrupt("seq overflow"))?;
        chunk_len = chunk_len
            .checked_add(n)
            .ok_or(DecodeError::Corrupt("too many events"))?;
        f(
            &d,
            Record {
                agent,
                parents,
                tag,
                len: n,
                pos,
                text,
            },
        )?;
    }
    if content_at != content.len() {
        return Err(DecodeError::Corrupt("unused inserted text"));
    }
    for c in [&col_agent, &col_parents, &col_op, &col_pos] {
        if !c.done() {
            return Err(DecodeError::Corrupt("trailing column data"));
        }
    }
    // Report the agents' first seqs, as stored.
    for (a, e) in d.agents.iter_mut().zip(parse_first_seqs(payload)?) {
        a.1 = e;
    }
    Ok(d)
}

fn parse_first_seqs(payload: &[u8]) -> Result<Vec<u64>, DecodeError> {
    let mut p = Reader::new(payload);
    let _ = p.column()?;
    let mut c = p.column()?;
    let n = c.usize()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = c.usize()?;
        c.bytes(len)?;
        out.push(c.uvar()?);
    }
    Ok(out)
}

fn op_of(r: &Record) -> RemoteOp {
    match r.tag {
        TAG_INS => RemoteOp::Insert {
            pos: r.pos,
            text: r.text.to_string(),
        },
        _ => RemoteOp::Delete {
            pos: r.pos,
            len: r.len as usize,
            backwards: r.tag == TAG_DEL_BACK,
        },
    }
}

/// Decodes a chunk into event runs (structure checked; positions are checked on merge).
pub fn decode_chunk(bytes: &[u8]) -> Result<Chunk, DecodeError> {
    let (flags, payload) = open(bytes)?;
    let mut events: Vec<RemoteEvent> = Vec::new();
    let mut run_starts: Vec<u64> = Vec::new();
    let mut chunk_len = 0u64;
    let mut seqs: Vec<u64> = parse_first_seqs(&payload)?;
    let d = parse(flags, &payload, |d, r| {
        let parents = match &r.parents {
            None => {
                let last = events.last().unwrap();
                vec![RemoteId {
                    agent: last.agent.clone(),
                    seq: last.seq + last.len() as u64 - 1,
                }]
            }
            Some(ps) => ps
                .iter()
                .map(|p| match p {
                    ParentRef::Internal(idx) => {
                        let ri = run_starts.partition_point(|s| *s <= *idx) - 1;
                        let run = &events[ri];
                        RemoteId {
                            agent: run.agent.clone(),
                            seq: run.seq + (idx - run_starts[ri]),
                        }
                    }
                    ParentRef::External { agent, seq } => RemoteId {
                        agent: match agent {
                            ExtAgent::Index(i) => d.agents[*i].0.to_string(),
                            ExtAgent::Name(n) => n.to_string(),
                        },
                        seq: *seq,
                    },
                })
                .collect(),
        };
        let seq = seqs[r.agent];
        seqs[r.agent] += r.len;
        run_starts.push(chunk_len);
        chunk_len += r.len;
        events.push(RemoteEvent {
            agent: d.agents[r.agent].0.to_string(),
            seq,
            parents,
            op: op_of(&r),
        });
        Ok(())
    })?;
    let _ = d.flags;
    Ok(Chunk {
        base_id: d.base_id,
        base: d.base.map(str::to_string),
        events,
    })
}

/// A compacted log's horizon, as stored.
struct HorizonInfo<'a> {
    first: usize,
    origin: (u64, u64),
    floors: Vec<(&'a str, u64)>,
    /// (index into `floors`, seq, local version)
    events: Vec<(usize, u64, usize)>,
}

fn parse_horizon(flags: u64, payload: &[u8]) -> Result<Option<HorizonInfo<'_>>, DecodeError> {
    if flags & 2 == 0 {
        return Ok(None);
    }
    let mut p = Reader::new(payload);
    for _ in 0..8 {
        p.column()?;
    }
    let mut c = p.column()?;
    let first = c.usize()?;
    let origin = (c.uvar()?, c.uvar()?);
    let n = c.usize()?;
    if n > payload.len() {
        return Err(DecodeError::Corrupt("counts larger than the data"));
    }
    let mut floors = Vec::with_capacity(n);
    for _ in 0..n {
        let len = c.usize()?;
        let name = std::str::from_utf8(c.bytes(len)?)
            .map_err(|_| DecodeError::Corrupt("agent name is not UTF-8"))?;
        if name.is_empty() || name.len() > crate::oplog::MAX_AGENT_NAME {
            return Err(DecodeError::Corrupt("agent name length"));
        }
        let floor = c.uvar()?;
        if floor == 0 {
            return Err(DecodeError::Corrupt("zero seq floor"));
        }
        floors.push((name, floor));
    }
    let k = c.usize()?;
    if k == 0 || k > payload.len() || first == 0 {
        return Err(DecodeError::Corrupt("bad horizon"));
    }
    let mut events = Vec::with_capacity(k);
    for _ in 0..k {
        let a = c.usize()?;
        let seq = c.uvar()?;
        let lv = c.usize()?;
        if a >= floors.len() || seq >= floors[a].1 || lv >= first {
            return Err(DecodeError::Corrupt("horizon event out of range"));
        }
        events.push((a, seq, lv));
    }
    if !c.done() {
        return Err(DecodeError::Corrupt("trailing horizon data"));
    }
    Ok(Some(HorizonInfo {
        first,
        origin,
        floors,
        events,
    }))
}

/// Decodes a whole log straight into an [`OpLog`] (structure checked; positions are checked
/// when it is merged). Agents may be concurrent with themselves here (imported histories).
/// Compacted logs come back compacted, with the same local versions.
pub fn decode_oplog(bytes: &[u8]) -> Result<OpLog, DecodeError> {
    let (flags, payload) = open(bytes)?;
    if flags & 1 == 0 {
        return Err(DecodeError::Corrupt("a chunk of events, not a whole log"));
    }
    let mut oplog = OpLog::new();
    let hz = parse_horizon(flags, &payload)?;
    // Horizon ids, sorted, for matching the parents of runs that start at the horizon.
    let mut horizon_ids: Vec<(&str, u64)> = Vec::new();
    if let Some(h) = &hz {
        for (i, (name, floor)) in h.floors.iter().enumerate() {
            let id = oplog.agent(name);
            if id.0 as usize != i {
                return Err(DecodeError::Corrupt("duplicate agent name"));
            }
            oplog.agents[i].floor = *floor;
        }
        let mut lvs: Vec<usize> = Vec::new();
        for (a, seq, lv) in &h.events {
            oplog.horizon_ids.push((AgentId(*a as u32), *seq));
            horizon_ids.push((h.floors[*a].0, *seq));
            lvs.push(*lv);
        }
        horizon_ids.sort_unstable();
        horizon_ids.dedup();
        oplog.horizon = Frontier::from_unsorted(&lvs);
        if horizon_ids.len() != h.events.len() || oplog.horizon.len() != h.events.len() {
            return Err(DecodeError::Corrupt("duplicate horizon events"));
        }
        oplog.first = h.first;
        oplog.origin_id = Some(h.origin);
    }
    let first_seqs = parse_first_seqs(&payload)?;
    let first = oplog.first;
    let mut ids: Vec<AgentId> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let d = parse(flags, &payload, |d, r| {
        if ids.is_empty() {
            for (i, (name, _)) in d.agents.iter().enumerate() {
                if !seen.insert(name) {
                    return Err(DecodeError::Corrupt("duplicate agent name"));
                }
                let id = oplog.agent(name);
                // A whole log starts every agent at its floor (0 unless compacted).
                if first_seqs[i] != oplog.agents[id.0 as usize].floor {
                    return Err(DecodeError::Corrupt(
                        "a whole log starts every agent at its first seq",
                    ));
                }
                ids.push(id);
            }
        }
        let parents: SmallVec<[usize; 2]> = match &r.parents {
            None => SmallVec::from_slice(&[oplog.len() - 1]),
            Some(ps) => {
                let mut v = SmallVec::new();
                let mut ext: Vec<(&str, u64)> = Vec::new();
                for p in ps {
                    match p {
                        ParentRef::Internal(idx) => v.push(first + *idx as usize),
                        ParentRef::External { agent, seq } => ext.push((
                            match agent {
                                ExtAgent::Index(i) => d.agents[*i].0,
                                ExtAgent::Name(n) => n,
                            },
                            *seq,
                        )),
                    }
                }
                if hz.is_some() {
                    // The root of a compacted log is its horizon, named by its ids.
                    ext.sort_unstable();
                    ext.dedup();
                    if v.is_empty() != (ext == horizon_ids) || (!v.is_empty() && !ext.is_empty()) {
                        return Err(DecodeError::Corrupt(
                            "a compacted log's runs start from its events or its horizon",
                        ));
                    }
                } else if !ext.is_empty() {
                    return Err(DecodeError::Corrupt("a whole log refers to outside events"));
                }
                v
            }
        };
        let parents = if parents.len() > 1 {
            oplog.reduce(&parents).0
        } else {
            parents
        };
        let (kind, fwd) = match r.tag {
            TAG_INS => (OpKind::Ins, true),
            TAG_DEL => (OpKind::Del, true),
            _ => (OpKind::Del, false),
        };
        r.pos
            .checked_add(r.len as usize)
            .ok_or(DecodeError::Corrupt("position too large"))?;
        oplog.push_run(
            ids[r.agent],
            &parents,
            NewOp {
                kind,
                pos: r.pos,
                len: r.len as usize,
                fwd,
                content: r.text,
            },
        );
        Ok(())
    })?;
    if let Some(b) = d.base {
        oplog.base = ropey::Rope::from_str(b);
    }
    Ok(oplog)
}

impl Document {
    /// Encodes the whole event log, base text included (and, for a compacted log, its
    /// horizon: decoding gives the same compacted document back).
    pub fn encode(&self) -> Vec<u8> {
        let oplog = self.oplog();
        let horizon = oplog.is_compacted().then(|| horizon_column(oplog));
        encode_inner(
            &self.all_events(),
            base_id(&oplog.base),
            Some(&oplog.base),
            horizon,
        )
    }

    /// The identity of the text this document's history starts from (kept through
    /// compaction): encoded chunks carry it and apply only to documents with the same.
    fn origin_id(&self) -> (u64, u64) {
        let oplog = self.oplog();
        oplog.origin_id.unwrap_or_else(|| base_id(&oplog.base))
    }

    /// Encodes the events not in `have` (see [`Document::events_since`]).
    pub fn encode_since(&self, have: &RemoteVersion) -> Vec<u8> {
        encode_inner(&self.events_since(have), self.origin_id(), None, None)
    }

    /// [`Document::encode_since`] that refuses a `have` older than the horizon
    /// (`VersionError::BeforeHorizon`, resync needed).
    pub fn try_encode_since(&self, have: &RemoteVersion) -> Result<Vec<u8>, crate::VersionError> {
        let events = self.try_events_since(have)?;
        Ok(encode_inner(&events, self.origin_id(), None, None))
    }

    /// Decodes a whole log and materialises its text. Every event is validated.
    pub fn decode(bytes: &[u8]) -> Result<Document, DecodeError> {
        let oplog = decode_oplog(bytes)?;
        Document::from_oplog(oplog).map_err(|e| DecodeError::InvalidEvents(e.to_string()))
    }

    /// Applies an encoded chunk of events (from [`Document::encode_since`] on another replica
    /// whose log starts from the same base text).
    pub fn apply_encoded(
        &mut self,
        bytes: &[u8],
    ) -> Result<crate::ApplyReport, crate::RemoteError> {
        let chunk =
            decode_chunk(bytes).map_err(|e| crate::RemoteError::Malformed(e.to_string()))?;
        if chunk.base_id != self.origin_id() {
            return Err(crate::RemoteError::Malformed(
                "the events are for a document with a different base text".into(),
            ));
        }
        self.apply_remote(&chunk.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_uvar(&mut b, v);
            assert_eq!(Reader::new(&b).uvar().unwrap(), v);
        }
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    /// Re-seals a payload into a chunk with a valid checksum.
    fn seal(flags: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put_uvar(&mut out, FORMAT_VERSION);
        put_uvar(&mut out, flags);
        put_uvar(&mut out, payload.len() as u64);
        out.extend_from_slice(&zstd::bulk::compress(payload, 1).unwrap());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn corrupt_payloads_behind_a_valid_checksum_never_panic() {
        let mut d = Document::new();
        let a = d.agent("alice");
        let b = d.agent("bob");
        d.insert(a, 0, "hello wörld 🙂\n").unwrap();
        let v = d.version().clone();
        d.delete(a, 1..3).unwrap();
        d.edit_at(
            b,
            &v,
            &[crate::Edit {
                range: 5..6,
                text: "_".into(),
            }],
        )
        .unwrap();
        fuzz_payload(&d.encode());
        // A compacted log (horizon column, external parents, seq floors).
        let mut c = d.clone();
        c.compact(&Frontier::single(3)).unwrap();
        let bytes = c.encode();
        assert_eq!(open(&bytes).unwrap().0, 3);
        fuzz_payload(&bytes);
    }

    /// Flips, overwrites and truncates payload bytes behind a valid checksum.
    fn fuzz_payload(bytes: &[u8]) {
        let (flags, payload) = open(bytes).unwrap();
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut accepted = 0;
        for i in 0..4000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut p = payload.clone();
            match i % 3 {
                0 => {
                    let at = (seed as usize) % p.len();
                    p[at] ^= 1 << ((seed >> 32) % 8);
                }
                1 => {
                    let at = (seed as usize) % p.len();
                    p[at] = (seed >> 24) as u8;
                }
                _ => {
                    let at = (seed as usize) % p.len();
                    p.truncate(at);
                }
            }
            let chunk = seal(flags, &p);
            // Either an error or a document whose every event was validated by a merge.
            if let Ok(mut doc) = Document::decode(&chunk) {
                accepted += 1;
                let _ = doc.text().len_chars();
            }
            let _ = decode_chunk(&chunk);
        }
        // Some corruptions (e.g. a changed inserted char) still decode to a valid document.
        assert!(accepted < 4000);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(Reader::new(&b).uvar().is_err());
    }
}
