//! The `changes` feed: what the writer publishes to `changes` subscribers (and the channel of
//! `presence` notices), one notice per document change, never waiting for a subscriber.

use std::collections::HashMap;
use std::sync::Arc;

use engine::{Frontier, XfOp};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use vfs::{FileId, Workspace};

/// One document change as pushed to `changes` subscribers: the edits (sequential, char
/// offsets) that take the document from version `from` to version `to`.
#[derive(Debug)]
pub struct ChangeNotice {
    pub path: String,
    /// The serialized notification (shared by every subscriber).
    pub json: Box<serde_json::value::RawValue>,
}

/// The channel from the writer to `changes` subscriptions. Publishing never waits: a
/// subscriber that falls `capacity` notices behind is closed with a reason.
/// The second channel carries `presence` notices.
#[derive(Clone, Debug)]
pub struct ChangeFeed(
    pub(crate) broadcast::Sender<Arc<ChangeNotice>>,
    pub(crate) broadcast::Sender<Arc<crate::presence::PresenceEntry>>,
);

impl ChangeFeed {
    pub fn new(capacity: usize) -> ChangeFeed {
        ChangeFeed(
            broadcast::channel(capacity.max(1)).0,
            broadcast::channel(capacity.max(1)).0,
        )
    }
}

/// Per document changed since load: the version last published to the feed (a document not
/// in here is still at its root version).
#[derive(Default)]
pub(crate) struct Published(HashMap<FileId, Frontier>);

impl Published {
    /// The versions subscribers were last told about (compaction keeps them).
    pub(crate) fn retained(&self, out: &mut HashMap<FileId, Vec<Frontier>>) {
        for (f, v) in &self.0 {
            out.entry(*f).or_default().push(v.clone());
        }
    }

    /// Push what happened to `changed` documents since the last publication to `changes`
    /// subscribers.
    pub(crate) fn publish(
        &mut self,
        feed: &ChangeFeed,
        ws: &Workspace,
        changed: impl IntoIterator<Item = FileId>,
    ) {
        let listening = feed.0.receiver_count() > 0;
        for f in changed {
            let Some(tf) = ws.text_file(f) else { continue };
            let Some(doc) = tf.doc.built() else { continue };
            let to = doc.version().clone();
            let from = self.0.get(&f).cloned().unwrap_or_else(Frontier::root);
            if from == to {
                continue;
            }
            self.0.insert(f, to.clone());
            if !listening {
                continue;
            }
            let Ok(ops) = doc.transform(&from, &to) else {
                continue;
            };
            let path = ws.path(f).unwrap_or_default().to_string();
            let edits: Vec<Value> = ops
                .iter()
                .map(|op| match op {
                    XfOp::Insert { pos, text } => {
                        json!({"offsets": {"start": pos, "end": pos}, "text": text})
                    }
                    XfOp::Delete { pos, len } => {
                        json!({"offsets": {"start": pos, "end": pos + len}, "text": ""})
                    }
                })
                .collect();
            let v = json!({
                "path": path,
                "from": doc.remote_version(&from),
                "to": doc.remote_version(&to),
                "edits": edits,
            });
            if let Ok(json) = serde_json::value::to_raw_value(&v) {
                let _ = feed.0.send(Arc::new(ChangeNotice { path, json }));
            }
        }
    }
}
