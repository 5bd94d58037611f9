//! Loading of editing traces in the josephg/editing-traces formats (gzipped JSON).
//!
//! * sequential: `{startContent, endContent, txns: [{patches: [[pos, del, ins], ...]}]}`
//! * concurrent: `{kind: "concurrent", endContent, numAgents,
//!   txns: [{parents: [txn...], agent, patches}]}`
//!
//! Positions and delete lengths are Unicode scalar values (chars). This file depends only on
//! `serde`, `serde_json` and `flate2` (no engine types) so the engine's benchmarks can include it
//! with `#[path]` and read the same traces the same way.
//!
//! Invariants of a loaded trace (checked here, so replaying never has to guess):
//! * sequential: every patch is in range of the document it applies to (lengths are simulated);
//! * concurrent: `numAgents >= 1`, every `agent < numAgents`, every parent index is an earlier txn.
//!   Positions can only be checked against the merged state at the parents, so the replay reports
//!   those.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// The name a replay gives agent `index` of a trace with `num_agents` agents: `agent-` and the
/// index zero-padded to the width of the largest index (at least 2 digits: `agent-00` ..
/// `agent-19`), so that names sort (as byte strings, the way diamond-types and our engine break
/// ties between concurrent inserts at one position) exactly as the indexes do. Every replay of
/// a concurrent trace whose result is compared with another CRDT's must use these names.
pub fn agent_name(index: usize, num_agents: usize) -> String {
    let width = num_agents.saturating_sub(1).max(1).to_string().len().max(2);
    format!("agent-{index:0width$}")
}

/// One splice: at `pos`, delete `del` chars, then insert `ins`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub pos: usize,
    pub del: usize,
    pub ins: String,
}

/// A single-user trace: all patches apply in order to one document.
#[derive(Clone, Debug)]
pub struct SequentialTrace {
    pub start_content: String,
    pub end_content: String,
    pub txns: Vec<Vec<Patch>>,
}

/// One transaction of a concurrent trace.
#[derive(Clone, Debug)]
pub struct ConcurrentTxn {
    /// Indexes of earlier txns; empty means the root (empty document).
    pub parents: Vec<usize>,
    pub agent: usize,
    pub patches: Vec<Patch>,
}

/// A multi-user trace: each txn applies at the version named by its parents.
#[derive(Clone, Debug)]
pub struct ConcurrentTrace {
    pub num_agents: usize,
    pub end_content: String,
    pub txns: Vec<ConcurrentTxn>,
}

#[derive(Clone, Debug)]
pub enum Trace {
    Sequential(SequentialTrace),
    Concurrent(ConcurrentTrace),
}

impl Trace {
    pub fn end_content(&self) -> &str {
        match self {
            Trace::Sequential(t) => &t.end_content,
            Trace::Concurrent(t) => &t.end_content,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Trace::Sequential(_) => "sequential",
            Trace::Concurrent(_) => "concurrent",
        }
    }

    pub fn num_txns(&self) -> usize {
        match self {
            Trace::Sequential(t) => t.txns.len(),
            Trace::Concurrent(t) => t.txns.len(),
        }
    }

    pub fn num_patches(&self) -> usize {
        match self {
            Trace::Sequential(t) => t.txns.iter().map(Vec::len).sum(),
            Trace::Concurrent(t) => t.txns.iter().map(|t| t.patches.len()).sum(),
        }
    }
}

/// Why a trace file could not be loaded.
#[derive(Debug)]
pub enum TraceError {
    Io(std::io::Error),
    NotGzip,
    Gzip(std::io::Error),
    Json(serde_json::Error),
    /// Well-formed JSON that breaks a rule of the format.
    Invalid(String),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Io(e) => write!(f, "cannot read file: {e}"),
            TraceError::NotGzip => write!(f, "not a gzip file (expected a .json.gz editing trace)"),
            TraceError::Gzip(e) => write!(f, "corrupt gzip data: {e}"),
            TraceError::Json(e) => write!(f, "not a valid editing trace (JSON): {e}"),
            TraceError::Invalid(msg) => write!(f, "invalid editing trace: {msg}"),
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Io(e) | TraceError::Gzip(e) => Some(e),
            TraceError::Json(e) => Some(e),
            TraceError::NotGzip | TraceError::Invalid(_) => None,
        }
    }
}

/// Reads and validates a gzipped trace file.
pub fn load_trace(path: &Path) -> Result<Trace, TraceError> {
    let bytes = std::fs::read(path).map_err(TraceError::Io)?;
    parse_trace_gz(&bytes)
}

/// Decompresses and parses a gzipped trace.
pub fn parse_trace_gz(gz: &[u8]) -> Result<Trace, TraceError> {
    if gz.len() < 2 || gz[0] != 0x1f || gz[1] != 0x8b {
        return Err(TraceError::NotGzip);
    }
    let mut json = Vec::with_capacity(gz.len() * 8);
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut json)
        .map_err(TraceError::Gzip)?;
    parse_trace_json(&json)
}

/// Parses an uncompressed JSON trace.
pub fn parse_trace_json(json: &[u8]) -> Result<Trace, TraceError> {
    let raw: RawTrace = serde_json::from_slice(json).map_err(TraceError::Json)?;
    raw.validate()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrace {
    kind: Option<String>,
    start_content: Option<String>,
    end_content: String,
    num_agents: Option<usize>,
    txns: Vec<RawTxn>,
}

#[derive(Deserialize)]
struct RawTxn {
    parents: Option<Vec<usize>>,
    agent: Option<usize>,
    patches: Vec<Patch>,
}

fn invalid(msg: String) -> TraceError {
    TraceError::Invalid(msg)
}

impl RawTrace {
    fn validate(self) -> Result<Trace, TraceError> {
        match self.kind.as_deref() {
            Some("concurrent") => self.validate_concurrent(),
            None | Some("sequential") => self.validate_sequential(),
            Some(other) => Err(invalid(format!(
                "unknown `kind` {other:?} (expected \"concurrent\" or none)"
            ))),
        }
    }

    fn validate_sequential(self) -> Result<Trace, TraceError> {
        let start_content = self.start_content.unwrap_or_default();
        let mut len = start_content.chars().count();
        let mut txns = Vec::with_capacity(self.txns.len());
        for (t, txn) in self.txns.into_iter().enumerate() {
            for (p, patch) in txn.patches.iter().enumerate() {
                check_patch_range(t, p, patch, len)?;
                len = len - patch.del + patch.ins.chars().count();
            }
            txns.push(txn.patches);
        }
        Ok(Trace::Sequential(SequentialTrace {
            start_content,
            end_content: self.end_content,
            txns,
        }))
    }

    fn validate_concurrent(self) -> Result<Trace, TraceError> {
        let num_agents = self
            .num_agents
            .ok_or_else(|| invalid("concurrent trace without `numAgents`".into()))?;
        if num_agents == 0 {
            return Err(invalid("`numAgents` is 0".into()));
        }
        if self.start_content.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(invalid(
                "concurrent traces must start from the empty document".into(),
            ));
        }
        let mut txns = Vec::with_capacity(self.txns.len());
        for (t, txn) in self.txns.into_iter().enumerate() {
            let parents = txn
                .parents
                .ok_or_else(|| invalid(format!("txn {t}: missing field `parents`")))?;
            let agent = txn
                .agent
                .ok_or_else(|| invalid(format!("txn {t}: missing field `agent`")))?;
            if agent >= num_agents {
                return Err(invalid(format!(
                    "txn {t}: agent {agent} out of range (numAgents is {num_agents})"
                )));
            }
            if let Some(&bad) = parents.iter().find(|&&p| p >= t) {
                return Err(invalid(format!(
                    "txn {t}: parent {bad} is not an earlier txn"
                )));
            }
            txns.push(ConcurrentTxn {
                parents,
                agent,
                patches: txn.patches,
            });
        }
        Ok(Trace::Concurrent(ConcurrentTrace {
            num_agents,
            end_content: self.end_content,
            txns,
        }))
    }
}

/// Checks one patch against a document of `len` chars.
pub fn check_patch_range(
    txn: usize,
    idx: usize,
    patch: &Patch,
    len: usize,
) -> Result<(), TraceError> {
    if patch.pos > len || patch.del > len - patch.pos {
        return Err(invalid(format!(
            "txn {txn} patch {idx}: position {} + delete {} out of range (document has {len} chars)",
            patch.pos, patch.del
        )));
    }
    Ok(())
}

/// Patches are JSON arrays `[pos, del, ins]`, optionally followed by a timestamp.
impl<'de> Deserialize<'de> for Patch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PatchVisitor;
        impl<'de> Visitor<'de> for PatchVisitor {
            type Value = Patch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a patch [position, deleteCount, insertedText]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Patch, A::Error> {
                let pos = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let del = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let ins = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                // An optional 4th element (timestamp) is allowed and ignored.
                let _time: Option<de::IgnoredAny> = seq.next_element()?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(5, &self));
                }
                Ok(Patch { pos, del, ins })
            }
        }
        d.deserialize_seq(PatchVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        parse_trace_json(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn agent_names_sort_as_their_indexes() {
        assert_eq!(agent_name(0, 1), "agent-00");
        assert_eq!(agent_name(7, 20), "agent-07");
        assert_eq!(agent_name(19, 20), "agent-19");
        assert_eq!(agent_name(5, 101), "agent-005");
        for n in [1, 2, 9, 10, 11, 12, 20, 99, 100, 101, 1000, 1001] {
            let names: Vec<String> = (0..n).map(|i| agent_name(i, n)).collect();
            assert!(
                names.windows(2).all(|w| w[0] < w[1]),
                "{n} agents: names out of index order"
            );
        }
    }

    #[test]
    fn sequential_ok() {
        let t = parse_trace_json(
            r#"{"startContent":"","endContent":"hé","txns":[{"patches":[[0,0,"hxé"],[1,1,""]]}]}"#
                .as_bytes(),
        )
        .unwrap();
        let Trace::Sequential(t) = t else {
            panic!("wrong kind")
        };
        assert_eq!(
            t.txns[0][1],
            Patch {
                pos: 1,
                del: 1,
                ins: String::new()
            }
        );
        assert_eq!(t.end_content, "hé");
    }

    #[test]
    fn concurrent_ok_with_timestamped_patch() {
        let t = parse_trace_json(
            br#"{"kind":"concurrent","endContent":"ab","numAgents":2,"txns":[
                {"parents":[],"agent":0,"patches":[[0,0,"a","2023-01-01T00:00:00Z"]]},
                {"parents":[0],"agent":1,"patches":[[1,0,"b"]]}]}"#,
        )
        .unwrap();
        let Trace::Concurrent(t) = t else {
            panic!("wrong kind")
        };
        assert_eq!(t.txns[1].parents, vec![0]);
        assert_eq!(t.txns[0].patches[0].ins, "a");
    }

    #[test]
    fn bad_inputs_have_clear_errors() {
        assert!(err("{").contains("JSON"));
        assert!(err(r#"{"txns":[]}"#).contains("missing field `endContent`"));
        assert!(err(r#"{"endContent":"","txns":[{"patches":[[0,0]]}]}"#).contains("patch"));
        assert!(err(r#"{"endContent":"","txns":[{"patches":[[2,0,"x"]]}]}"#)
            .contains("txn 0 patch 0: position 2 + delete 0 out of range (document has 0 chars)"));
        assert!(
            err(r#"{"endContent":"","txns":[{"patches":[[0,0,"ab"],[1,2,""]]}]}"#)
                .contains("txn 0 patch 1")
        );
        assert!(err(r#"{"kind":"concurrent","endContent":"","txns":[]}"#).contains("numAgents"));
        assert!(err(
            r#"{"kind":"concurrent","endContent":"","numAgents":1,"txns":[{"parents":[0],"agent":0,"patches":[]}]}"#
        )
        .contains("txn 0: parent 0 is not an earlier txn"));
        assert!(err(
            r#"{"kind":"concurrent","endContent":"","numAgents":1,"txns":[{"parents":[],"agent":3,"patches":[]}]}"#
        )
        .contains("agent 3 out of range"));
        assert!(err(r#"{"kind":"nope","endContent":"","txns":[]}"#).contains("unknown `kind`"));
        assert!(matches!(parse_trace_gz(b"{}"), Err(TraceError::NotGzip)));
        assert!(matches!(
            parse_trace_gz(&[0x1f, 0x8b, 8, 0, 0, 0]),
            Err(TraceError::Gzip(_))
        ));
    }
}
