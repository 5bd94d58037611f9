//! An agent's edit list (`{range | offsets, text}`, simultaneous, LSP style) turned into engine
//! edits against the text it refers to, and the reply's "where each edit landed". Used by
//! `fs.edit` and `branch.edit`.

use std::ops::Range;

use engine::{Edit, Rope};
use serde_json::{json, Value};
use vfs::pos::{self, LspPosition, LspRange, PositionEncoding};

use crate::error::*;
pub(crate) use crate::types::{encoding_of, pos_json};
use crate::types::{EditSpec, Position};

/// An edit request checked against its base text.
pub(crate) struct Prepared {
    /// The edits in request order, in chars.
    pub len: usize,
    /// The same edits in sequence (last position first), as `Document::edit_at` takes them.
    pub seq: Vec<Edit>,
    /// `order[k]`: the request index of `seq[k]`.
    pub order: Vec<usize>,
}

impl Prepared {
    /// True when applying the edits changes nothing (no event is made).
    pub fn is_noop(&self) -> bool {
        self.seq
            .iter()
            .all(|e| e.range.is_empty() && e.text.is_empty())
    }
}

/// Converts positions to chars of `base_text` and sequences the edits. Errors: bad
/// positions, both or neither of `range`/`offsets`, overlapping edits.
pub(crate) fn prepare(
    base_text: &Rope,
    specs: &[EditSpec],
    enc: PositionEncoding,
) -> Result<Prepared, ApiError> {
    let mut edits = Vec::with_capacity(specs.len());
    for (i, e) in specs.iter().enumerate() {
        let range = match (&e.range, &e.offsets) {
            (Some(r), None) => {
                let conv = |q: Position| {
                    LspPosition::from_signed(q.line, q.character)
                        .map_err(|err| ApiError::new(BAD_POSITION, format!("edit {i}: {err}")))
                };
                let lr = LspRange {
                    start: conv(r.start)?,
                    end: conv(r.end)?,
                };
                pos::range_to_chars(base_text, lr, enc)
                    .map_err(|err| ApiError::new(BAD_POSITION, format!("edit {i}: {err}")))?
            }
            (None, Some(o)) => {
                let len = base_text.len_chars() as i64;
                if o.start < 0 || o.end < o.start || o.end > len {
                    return Err(ApiError::new(
                        BAD_POSITION,
                        format!(
                            "edit {i}: offsets {}..{} are not a range of the document ({len} chars)",
                            o.start, o.end
                        ),
                    ));
                }
                o.start as usize..o.end as usize
            }
            _ => {
                return Err(ApiError::new(
                    INVALID_PARAMS,
                    format!("edit {i}: give exactly one of `range` or `offsets`"),
                ))
            }
        };
        edits.push(Edit {
            range,
            text: e.text.clone(),
        });
    }
    let seq = Edit::sequence(edits.clone()).map_err(|e| match e {
        engine::EditError::BadRange => ApiError::new(BAD_POSITION, e.to_string()),
        _ => ApiError::new(OVERLAPPING_EDITS, e.to_string()),
    })?;
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| (edits[i].range.start, edits[i].range.end));
    order.reverse();
    Ok(Prepared {
        len: edits.len(),
        seq,
        order,
    })
}

/// `{"offsets": {start, end}, "range": {start, end} | null}` for a char range of `text`.
pub(crate) fn range_json(text: &Rope, r: Range<usize>, enc: PositionEncoding) -> Value {
    let lsp = pos::chars_to_range(text, r.clone(), enc).ok();
    json!({
        "offsets": {"start": r.start, "end": r.end},
        "range": lsp.map(|l| json!({"start": pos_json(l.start), "end": pos_json(l.end)})),
    })
}

/// The reply's `edits`: for each edit in request order, where its text is in `new_text`
/// (`landed` is in sequence order, as `edit::landed_ranges` gives it).
pub(crate) fn landed_json(
    p: &Prepared,
    new_text: &Rope,
    landed: Vec<Range<usize>>,
    enc: PositionEncoding,
) -> Vec<Value> {
    let mut out = vec![Value::Null; p.len];
    for (k, r) in landed.into_iter().enumerate() {
        out[p.order[k]] = range_json(new_text, r, enc);
    }
    out
}
