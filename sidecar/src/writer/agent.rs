//! Agent API requests in the writer: each is answered against the current state, and its
//! edits reach editors through the batch's broadcast.

use engine::Bias;

use super::{ConnId, Writer};

impl Writer {
    /// One agent API request, answered against the current state (pending editor changes were
    /// applied before, see `handle`). An edit marks its document changed, so the batch's
    /// broadcast brings editors up to date, and schedules the write-back.
    pub(super) fn agent_call(&mut self, call: agent_api::Call) {
        let ctx = agent_api::Context {
            participants: self
                .conns
                .iter()
                .map(|(id, c)| agent_api::Participant {
                    id: *id,
                    kind: "editor",
                    name: c.name.clone(),
                    file: c
                        .presence
                        .as_ref()
                        .and_then(|(f, _, _)| self.ws.path(*f))
                        .map(str::to_string),
                })
                .collect(),
            open: self
                .conns
                .values()
                .flat_map(|c| c.docs.keys().copied())
                .collect(),
        };
        // Publishing before and after makes every version an agent is told about a boundary
        // of the `changes` notices (so a subscriber can chain from what it read).
        self.agents.publish(&self.ws, self.changed.iter().copied());
        let out = self
            .agents
            .handle(&mut self.ws, &ctx, call.conn, call.request);
        if !out.changed.is_empty() {
            self.changed.extend(out.changed.iter().copied());
            self.agents.publish(&self.ws, out.changed);
        }
        self.schedule_flush();
        match out.deferred {
            // Work on an immutable snapshot (search, snapshot texts): off the writer thread.
            // Read-only, so it needs no durable commit.
            Some(job) => {
                let reply = call.reply;
                let _ = std::thread::Builder::new()
                    .name("dist-space-agent-job".into())
                    .spawn(move || {
                        let _ = reply.send(job());
                    });
            }
            // Replies wait for the durable commit of the batch (see `store`).
            None => match &mut self.log {
                Some(l) => l.defer_reply((call.reply, out.result)),
                None => {
                    let _ = call.reply.send(out.result);
                }
            },
        }
    }

    /// Hand editor `conn`'s place (its cursors moved to the current version) to the agent
    /// API's `presence` subscribers.
    pub(super) fn agent_presence(&mut self, conn: ConnId, left: bool) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let mut e = agent_api::PresenceEntry {
            kind: "editor",
            id: conn,
            name: c.name.clone(),
            path: None,
            version: Default::default(),
            text: None,
            selections: vec![],
            left,
        };
        if let Some((f, v, cs)) = c.presence.as_ref().filter(|_| !left) {
            if let (Some(path), Some(tf)) = (self.ws.path(*f), self.ws.text_file(*f)) {
                let doc = &tf.doc;
                let now = doc.version().clone();
                let ops = if *v == now {
                    vec![]
                } else {
                    doc.transform(v, &now).unwrap_or_default()
                };
                let shift = |x: usize| engine::shift_pos(x, &ops, Bias::Right);
                e.selections = cs.iter().map(|(a, h)| (shift(*a), shift(*h))).collect();
                e.path = Some(path.to_string());
                e.version = doc.remote_version(&now);
                e.text = Some(doc.to_rope());
            }
        }
        self.agents.presence_update(e);
    }
}
