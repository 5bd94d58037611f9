//! Seeded generator of concurrent editing histories, written in the editing-traces *concurrent*
//! format (`shared/traces/concurrent/README.md`) that `dist-space trace` replays.
//!
//! A history is made by simulated agents, each with its own replica (a diamond-types 1.0.0
//! `Branch` over one shared `OpLog`): an agent syncs (merges another agent's version, or
//! everything made so far) and then makes a txn of one to three patches at its own version —
//! typing at a cursor, backspaces, forward deletes, pastes and replaces (delete + insert in one
//! patch), in ASCII, 2- and 3-byte and astral (4-byte, 2 UTF-16 units) text. Txn `parents` are the
//! agent's version before the txn, as txn indexes; the last txn merges everything (no patches).
//!
//! `endContent` is diamond-types' text at the end, with agent `i` named
//! [`format::agent_name`]`(i, numAgents)`: names sort as the indexes, which fixes the order of
//! concurrent inserts at one position. The upstream format promises that no two agents insert
//! concurrently at the same position; [`Profile::Dense`] (and any [`Config`] with
//! `conflict_prob > 0`) breaks that promise on purpose (the other profiles may break it by
//! chance), so a replay must order such inserts exactly as diamond-types does to reach
//! `endContent`.
//!
//! Profiles ([`Profile`]):
//! * dense: 5 agents, frequent syncs, bursts of same-position concurrent inserts;
//! * long-offline: 3 agents, each works offline for 100-700 of its own txns, then merges all;
//! * wide: 20 agents with Zipf-like activity: 4 are online at a time; an agent joins (and merges
//!   everything) with weight `1 / (i + 1)^1.1`, online agents act with the same weights, and
//!   about every 50 txns one of them leaves for another to join.
//!
//! The same seed, config and size always make the same file (ChaCha8, fixed across platforms).

#[path = "../../sidecar/src/trace/format.rs"]
pub mod format;

use std::io::Write;

use diamond_types::list::{Branch, OpLog as DtOpLog};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use format::{agent_name, ConcurrentTrace, ConcurrentTxn, Patch};

/// The histories of the engine's merge benchmark and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// 5 agents, frequent syncs, same-position conflicts.
    Dense,
    /// 3 agents, offline phases of 100-700 txns, then merges.
    LongOffline,
    /// 20 agents, Zipf-like activity.
    Wide,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Dense, Profile::LongOffline, Profile::Wide];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Dense => "dense",
            Profile::LongOffline => "long-offline",
            Profile::Wide => "wide",
        }
    }

    pub fn config(self) -> Config {
        match self {
            Profile::Dense => Config {
                agents: 5,
                sync_prob: 0.4,
                sync_all_prob: 0.05,
                conflict_prob: 0.03,
                offline: None,
                zipf: None,
                online: None,
            },
            Profile::LongOffline => Config {
                agents: 3,
                sync_prob: 0.0,
                sync_all_prob: 0.0,
                conflict_prob: 0.0,
                offline: Some((100, 700)),
                zipf: None,
                online: None,
            },
            Profile::Wide => Config {
                agents: 20,
                sync_prob: 0.25,
                sync_all_prob: 0.1,
                conflict_prob: 0.01,
                offline: None,
                zipf: Some(1.1),
                online: Some((4, 0.02)),
            },
        }
    }
}

/// How the simulated agents behave.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of agents (>= 1).
    pub agents: usize,
    /// Before a txn, the probability that its agent merges one other agent's version.
    pub sync_prob: f64,
    /// Before a txn, the probability that its agent merges everything made so far.
    pub sync_all_prob: f64,
    /// Per txn, the probability of a conflict burst instead: 2-4 agents merge everything, then
    /// each inserts at the same position (concurrently, before any of them syncs again).
    pub conflict_prob: f64,
    /// Offline phases: each agent makes this many (inclusive range) txns of its own without
    /// merging, then merges everything and starts the next phase.
    pub offline: Option<(usize, usize)>,
    /// Agent activity: agent `i` is picked with weight `1 / (i + 1)^s`; `None`: uniform.
    pub zipf: Option<f64>,
    /// `(k, leave_prob)`: only `k` agents are online (act) at a time; per txn, with
    /// `leave_prob`, one of them leaves and an agent picked by the activity weights joins and
    /// merges everything. Without it every agent is online: one that acts rarely then merges
    /// a long concurrent stretch each time, which diamond-types 1.0.0 (the oracle) takes
    /// minutes for even at a few thousand txns.
    pub online: Option<(usize, f64)>,
}

/// What a generated history contains (so tests can check it is the history it claims to be).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Txns with more than one parent.
    pub merge_txns: usize,
    /// Concurrent inserts at one position (each burst counts its inserts).
    pub same_position_inserts: usize,
    /// Patches that delete and insert.
    pub replace_patches: usize,
    /// Chars of 2 or 3 UTF-8 bytes, and astral chars, inserted.
    pub multibyte_chars: usize,
    pub astral_chars: usize,
}

/// A generated trace and what it contains.
pub struct Generated {
    pub trace: ConcurrentTrace,
    pub stats: Stats,
}

const WORDS: [&str; 12] = [
    "the ",
    "merge ",
    "é ",
    "ñandú ",
    "中文 ",
    "😀",
    "𝄞 ",
    "fn x() {}\n",
    "\n",
    "naïve café ",
    "日本語\n",
    "👩‍💻 ",
];
const CHARS: [char; 14] = [
    'a', 'e', 't', 'o', 'n', ' ', ' ', '\n', 'é', 'ß', '中', 'ж', '😀', '𝄞',
];

struct Agent {
    branch: Branch,
    id: diamond_types::AgentId,
    /// Txns of each agent this agent has (a vector clock over txn counts).
    clock: Vec<usize>,
    cursor: usize,
    /// Own txns left in the current offline phase.
    offline_left: usize,
}

struct Gen<'a> {
    cfg: &'a Config,
    rng: ChaCha8Rng,
    oplog: DtOpLog,
    agents: Vec<Agent>,
    /// `by_agent[a][k]`: index of agent a's k-th txn.
    by_agent: Vec<Vec<usize>>,
    /// Clock of every txn (the version after it).
    txn_clock: Vec<Vec<usize>>,
    txns: Vec<ConcurrentTxn>,
    stats: Stats,
    weights: Vec<f64>,
    /// The agents that act now.
    online: Vec<usize>,
}

/// Generates a history of `txns` txns (at least 2) with `cfg`'s agents from `seed`.
pub fn generate(cfg: &Config, txns: usize, seed: u64) -> Generated {
    assert!(cfg.agents >= 1, "a trace needs an agent");
    let txns = txns.max(2);
    let mut oplog = DtOpLog::new();
    let n = cfg.agents;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let agents = (0..n)
        .map(|i| Agent {
            branch: Branch::new(),
            id: oplog.get_or_create_agent_id(&agent_name(i, n)),
            clock: vec![0; n],
            cursor: 0,
            offline_left: cfg.offline.map_or(0, |(lo, hi)| rng.gen_range(lo..=hi)),
        })
        .collect();
    let weights: Vec<f64> = (0..n)
        .map(|i| cfg.zipf.map_or(1.0, |s| 1.0 / ((i + 1) as f64).powf(s)))
        .collect();
    let online = (0..cfg.online.map_or(n, |(k, _)| k.clamp(1, n))).collect();
    let mut g = Gen {
        cfg,
        rng,
        oplog,
        agents,
        by_agent: vec![Vec::new(); n],
        txn_clock: Vec::with_capacity(txns),
        txns: Vec::with_capacity(txns),
        stats: Stats::default(),
        weights,
        online,
    };
    g.run(txns);
    let end_content = g.agents[g.txns[txns - 1].agent]
        .branch
        .content()
        .to_string();
    Generated {
        trace: ConcurrentTrace {
            num_agents: n,
            end_content,
            txns: g.txns,
        },
        stats: g.stats,
    }
}

impl Gen<'_> {
    fn run(&mut self, txns: usize) {
        // The first txn (the only one at the root), then everyone starts from it.
        let first = vec![self.insert_patch(0, "Shared notes\n".into())];
        self.push_txn(0, first);
        for a in 1..self.agents.len() {
            self.sync_all(a);
        }
        while self.txns.len() < txns - 1 {
            let left = txns - 1 - self.txns.len();
            if self.agents.len() > 1 && left >= 2 && self.rng.gen_bool(self.cfg.conflict_prob) {
                self.conflict_burst(left);
                continue;
            }
            if let Some((_, leave)) = self.cfg.online {
                if self.online.len() < self.agents.len() && self.rng.gen_bool(leave) {
                    let gone = self.rng.gen_range(0..self.online.len());
                    self.online.swap_remove(gone);
                    let offline: Vec<usize> = (0..self.agents.len())
                        .filter(|a| !self.online.contains(a))
                        .collect();
                    let joins = offline[self.pick(&offline)];
                    self.sync_all(joins);
                    self.online.push(joins);
                }
            }
            let a = self.pick_agent();
            if let Some((lo, hi)) = self.cfg.offline {
                if self.agents[a].offline_left == 0 {
                    self.sync_all(a);
                    self.agents[a].offline_left = self.rng.gen_range(lo..=hi);
                }
                self.agents[a].offline_left -= 1;
            }
            if self.rng.gen_bool(self.cfg.sync_all_prob) {
                self.sync_all(a);
            } else if self.agents.len() > 1 && self.rng.gen_bool(self.cfg.sync_prob) {
                let mut b = self.pick_agent();
                if b == a {
                    b = (a + 1 + self.rng.gen_range(0..self.agents.len() - 1)) % self.agents.len();
                }
                self.sync_from(a, b);
            }
            let patches = self.edit_patches(a);
            self.push_txn(a, patches);
        }
        // The last txn contains everything.
        self.sync_all(0);
        self.push_txn(0, Vec::new());
    }

    /// An online agent, by activity weight.
    fn pick_agent(&mut self) -> usize {
        let online = std::mem::take(&mut self.online);
        let a = online[self.pick(&online)];
        self.online = online;
        a
    }

    /// An index into `among` (agents), by their activity weights.
    fn pick(&mut self, among: &[usize]) -> usize {
        let total: f64 = among.iter().map(|&a| self.weights[a]).sum();
        let mut x = self.rng.gen::<f64>() * total;
        for (i, &a) in among.iter().enumerate() {
            x -= self.weights[a];
            if x < 0.0 {
                return i;
            }
        }
        among.len() - 1
    }

    /// Agent `a` merges agent `b`'s version.
    fn sync_from(&mut self, a: usize, b: usize) {
        let theirs = self.agents[b].clock.clone();
        let target = self.oplog.version_union(
            self.agents[a].branch.local_version_ref(),
            self.agents[b].branch.local_version_ref(),
        );
        let me = &mut self.agents[a];
        for (m, t) in me.clock.iter_mut().zip(&theirs) {
            *m = (*m).max(*t);
        }
        me.branch.merge(&self.oplog, &target);
        me.cursor = me.cursor.min(me.branch.len());
    }

    /// Agent `a` merges everything made so far.
    fn sync_all(&mut self, a: usize) {
        let me = &mut self.agents[a];
        for (c, txns) in me.clock.iter_mut().zip(&self.by_agent) {
            *c = txns.len();
        }
        me.branch.merge(&self.oplog, self.oplog.local_version_ref());
        me.cursor = me.cursor.min(me.branch.len());
    }

    /// 2-4 agents merge everything, then each inserts at one position, concurrently.
    fn conflict_burst(&mut self, left: usize) {
        let n = self.agents.len();
        let k = self.rng.gen_range(2..=n.min(4)).min(left);
        let mut who: Vec<usize> = Vec::with_capacity(k);
        while who.len() < k {
            let a = self.rng.gen_range(0..n);
            if !who.contains(&a) {
                who.push(a);
            }
        }
        for &a in &who {
            self.sync_all(a);
        }
        let len = self.agents[who[0]].branch.len();
        let pos = self.rng.gen_range(0..=len);
        for &a in &who {
            let text = self.random_text();
            self.agents[a].cursor = pos;
            let p = self.insert_patch(a, text);
            self.push_txn(a, vec![p]);
        }
        self.stats.same_position_inserts += k;
    }

    /// The txn's parents are `a`'s version (as txn indexes); its patches are applied already.
    fn push_txn(&mut self, a: usize, patches: Vec<Patch>) {
        let clock = &self.agents[a].clock;
        // The version's maximal txns: each agent's last txn in it, unless another one has it.
        let last: Vec<usize> = clock
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(b, &c)| self.by_agent[b][c - 1])
            .collect();
        let mut parents: Vec<usize> = last
            .iter()
            .copied()
            .filter(|&t| {
                let who = self.txns[t].agent;
                !last
                    .iter()
                    .any(|&u| u != t && self.txn_clock[u][who] >= clock[who])
            })
            .collect();
        parents.sort_unstable();
        if parents.len() > 1 {
            self.stats.merge_txns += 1;
        }
        let t = self.txns.len();
        self.by_agent[a].push(t);
        let me = &mut self.agents[a];
        me.clock[a] += 1;
        self.txn_clock.push(me.clock.clone());
        self.txns.push(ConcurrentTxn {
            parents,
            agent: a,
            patches,
        });
    }

    fn random_text(&mut self) -> String {
        let text = if self.rng.gen_bool(0.7) {
            CHARS[self.rng.gen_range(0..CHARS.len())].to_string()
        } else {
            WORDS[self.rng.gen_range(0..WORDS.len())].to_string()
        };
        for c in text.chars() {
            match c.len_utf8() {
                1 => {}
                4 => self.stats.astral_chars += 1,
                _ => self.stats.multibyte_chars += 1,
            }
        }
        text
    }

    fn insert_patch(&mut self, a: usize, text: String) -> Patch {
        let me = &mut self.agents[a];
        let pos = me.cursor;
        me.branch.insert(&mut self.oplog, me.id, pos, &text);
        me.cursor += text.chars().count();
        Patch {
            pos,
            del: 0,
            ins: text,
        }
    }

    fn delete_patch(&mut self, a: usize, pos: usize, del: usize, ins: String) -> Patch {
        let me = &mut self.agents[a];
        me.branch
            .delete_without_content(&mut self.oplog, me.id, pos..pos + del);
        if !ins.is_empty() {
            me.branch.insert(&mut self.oplog, me.id, pos, &ins);
            self.stats.replace_patches += 1;
        }
        me.cursor = pos + ins.chars().count();
        Patch { pos, del, ins }
    }

    /// One to three patches of a typing-like editor at its cursor.
    fn edit_patches(&mut self, a: usize) -> Vec<Patch> {
        let count = match self.rng.gen_range(0..10) {
            0..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        let mut patches = Vec::with_capacity(count);
        while patches.len() < count {
            let len = self.agents[a].branch.len();
            let roll = self.rng.gen_range(0..100);
            if roll < 8 {
                self.agents[a].cursor = self.rng.gen_range(0..=len);
            }
            let cursor = self.agents[a].cursor;
            let p = if roll < 72 || len == 0 {
                let text = self.random_text();
                self.insert_patch(a, text)
            } else if roll < 86 && cursor > 0 {
                self.delete_patch(a, cursor - 1, 1, String::new())
            } else if roll < 92 && cursor < len {
                let del = self.rng.gen_range(1..=(len - cursor).min(10));
                self.delete_patch(a, cursor, del, String::new())
            } else if cursor < len {
                let del = self.rng.gen_range(1..=(len - cursor).min(8));
                let ins = self.random_text();
                self.delete_patch(a, cursor, del, ins)
            } else {
                let text = self.random_text();
                self.insert_patch(a, text)
            };
            patches.push(p);
        }
        patches
    }
}

/// Replays a concurrent trace in diamond-types 1.0.0 the way `dist-space trace` replays it in
/// ours: one `Branch` per agent (over one shared `OpLog`); before each txn its agent's branch
/// merges the parents' version, then the patches are local edits (a replace is a delete, then an
/// insert). Agent `i` is named `names(i)`. Returns the text of the last txn's branch, which has
/// every txn (the format's rule).
pub fn dt_replay(trace: &ConcurrentTrace, names: impl Fn(usize) -> String) -> String {
    dt_replay_timed(trace, names, &mut |_, _| {}).0
}

/// [`dt_replay`] that reports the time of every merge (txn index, duration) to `merged`.
pub fn dt_replay_timed(
    trace: &ConcurrentTrace,
    names: impl Fn(usize) -> String,
    merged: &mut dyn FnMut(usize, std::time::Duration),
) -> (String, DtOpLog) {
    let mut oplog = DtOpLog::new();
    let ids: Vec<_> = (0..trace.num_agents)
        .map(|i| oplog.get_or_create_agent_id(&names(i)))
        .collect();
    let mut branches: Vec<Branch> = (0..trace.num_agents).map(|_| Branch::new()).collect();
    let mut versions: Vec<Vec<usize>> = Vec::with_capacity(trace.txns.len());
    for (t, txn) in trace.txns.iter().enumerate() {
        let mut target: Vec<usize> = Vec::new();
        for &p in &txn.parents {
            target = oplog.version_union(&target, &versions[p]).to_vec();
        }
        let b = &mut branches[txn.agent];
        if b.local_version_ref() != target.as_slice() {
            let start = std::time::Instant::now();
            b.merge(&oplog, &target);
            merged(t, start.elapsed());
        }
        for p in &txn.patches {
            if p.del > 0 {
                b.delete_without_content(&mut oplog, ids[txn.agent], p.pos..p.pos + p.del);
            }
            if !p.ins.is_empty() {
                b.insert(&mut oplog, ids[txn.agent], p.pos, &p.ins);
            }
        }
        versions.push(b.local_version_ref().to_vec());
    }
    let last = trace.txns.last().map_or(0, |t| t.agent);
    (branches[last].content().to_string(), oplog)
}

/// The trace as the format's JSON (with `numChildren` and a `time` per txn, as upstream).
pub fn to_json(trace: &ConcurrentTrace) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Txn<'a> {
        parents: &'a [usize],
        num_children: usize,
        agent: usize,
        time: &'static str,
        patches: Vec<(usize, usize, &'a str)>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct File<'a> {
        kind: &'static str,
        end_content: &'a str,
        num_agents: usize,
        txns: Vec<Txn<'a>>,
    }
    let mut children = vec![0usize; trace.txns.len()];
    for t in &trace.txns {
        for &p in &t.parents {
            children[p] += 1;
        }
    }
    let file = File {
        kind: "concurrent",
        end_content: &trace.end_content,
        num_agents: trace.num_agents,
        txns: trace
            .txns
            .iter()
            .zip(children)
            .map(|(t, num_children)| Txn {
                parents: &t.parents,
                num_children,
                agent: t.agent,
                time: "1970-01-01T00:00:00+00:00",
                patches: t
                    .patches
                    .iter()
                    .map(|p| (p.pos, p.del, p.ins.as_str()))
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&file).expect("a trace serialises")
}

/// The trace as a `.json.gz` file's bytes.
pub fn to_json_gz(trace: &ConcurrentTrace) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(to_json(trace).as_bytes())
        .expect("writing to memory");
    gz.finish().expect("writing to memory")
}
