//! Every pair of concurrent op kinds, each with its exact expected text. Two (or three)
//! replicas start from a common text, edit concurrently, then exchange events in both orders.

use engine::{Document, RemoteVersion};

struct Rep(Document, engine::AgentId);

impl Rep {
    fn ins(&mut self, pos: usize, s: &str) -> Result<engine::Frontier, engine::EditError> {
        self.0.insert(self.1, pos, s)
    }
    fn del(&mut self, r: std::ops::Range<usize>) -> Result<engine::Frontier, engine::EditError> {
        self.0.delete(self.1, r)
    }
    fn rep(
        &mut self,
        r: std::ops::Range<usize>,
        s: &str,
    ) -> Result<engine::Frontier, engine::EditError> {
        self.0.replace(self.1, r, s)
    }
}

/// A replica named `name` holding a copy of `base` (typed by "base").
fn replicas(base: &str, names: &[&str]) -> Vec<Rep> {
    let mut origin = Document::new();
    let b = origin.agent("base");
    origin.insert(b, 0, base).unwrap();
    names
        .iter()
        .map(|n| {
            let mut d = Document::new();
            d.apply_remote(&origin.events_since(&RemoteVersion::new()))
                .unwrap();
            let a = d.agent(n);
            Rep(d, a)
        })
        .collect()
}

/// Sends every replica's events to every other one, in two different orders.
fn sync_all(reps: &mut [Rep]) {
    let n = reps.len();
    for i in 0..n {
        for j in (0..n).rev() {
            if i != j {
                let evs = reps[i].0.events_since(&RemoteVersion::new());
                reps[j].0.apply_remote(&evs).unwrap();
            }
        }
    }
}

fn check(reps: &mut [Rep], expected: &str) {
    sync_all(reps);
    for Rep(d, _) in reps.iter_mut() {
        assert_eq!(d.text().to_string(), expected);
        assert_eq!(d.pending_events(), 0);
    }
}

#[test]
fn insert_insert_same_position_orders_by_agent_name() {
    let mut r = replicas("ab", &["alice", "bob"]);
    r[1].ins(1, "Y").unwrap();
    r[0].ins(1, "X").unwrap();
    check(&mut r, "aXYb");
}

#[test]
fn concurrent_runs_at_one_place_never_interleave() {
    let mut r = replicas("ab", &["alice", "bob"]);
    for (i, c) in "hello".chars().enumerate() {
        r[1].ins(1 + i, &c.to_string()).unwrap();
    }
    for (i, c) in "world".chars().enumerate() {
        r[0].ins(1 + i, &c.to_string()).unwrap();
    }
    check(&mut r, "aworldhellob");
}

#[test]
fn three_way_insert_at_one_place() {
    let mut r = replicas("ab", &["carol", "alice", "bob"]);
    r[0].ins(1, "Z").unwrap();
    r[1].ins(1, "X").unwrap();
    r[2].ins(1, "Y").unwrap();
    check(&mut r, "aXYZb");
}

#[test]
fn insert_insert_at_start_and_end() {
    let mut r = replicas("ab", &["alice", "bob"]);
    r[0].ins(0, "X").unwrap();
    r[1].ins(0, "Y").unwrap();
    r[0].ins(3, "1").unwrap();
    r[1].ins(3, "2").unwrap();
    check(&mut r, "XYab12");
}

#[test]
fn insert_inside_concurrently_deleted_range_survives() {
    let mut r = replicas("abcdef", &["alice", "bob"]);
    r[0].del(1..5).unwrap();
    r[1].ins(3, "X").unwrap();
    check(&mut r, "aXf");
}

#[test]
fn insert_into_fully_deleted_document() {
    let mut r = replicas("abc", &["alice", "bob"]);
    r[0].del(0..3).unwrap();
    r[1].ins(1, "X").unwrap();
    check(&mut r, "X");
}

#[test]
fn overlapping_deletes() {
    let mut r = replicas("abcdef", &["alice", "bob"]);
    r[0].del(1..4).unwrap();
    r[1].del(2..5).unwrap();
    check(&mut r, "af");
}

#[test]
fn identical_deletes() {
    let mut r = replicas("abcdef", &["alice", "bob"]);
    r[0].del(1..3).unwrap();
    r[1].del(1..3).unwrap();
    check(&mut r, "adef");
}

#[test]
fn delete_next_to_concurrent_insert() {
    let mut r = replicas("abc", &["alice", "bob"]);
    r[0].del(1..2).unwrap();
    r[1].ins(2, "X").unwrap();
    check(&mut r, "aXc");
}

#[test]
fn replace_replace_of_the_same_range() {
    let mut r = replicas("hello world", &["alice", "bob"]);
    r[1].rep(6..11, "moon").unwrap();
    r[0].rep(6..11, "there").unwrap();
    check(&mut r, "hello theremoon");
}

#[test]
fn replace_against_overlapping_delete() {
    let mut r = replicas("abcdef", &["alice", "bob"]);
    r[0].del(2..4).unwrap();
    r[1].rep(1..3, "Z").unwrap();
    check(&mut r, "aZef");
}

#[test]
fn multibyte_and_astral_inserts() {
    let mut r = replicas("a🙂b", &["alice", "bob"]);
    r[0].ins(2, "é🙂").unwrap();
    r[1].ins(2, "日本").unwrap();
    r[1].del(0..1).unwrap();
    check(&mut r, "🙂é🙂日本b");
}

#[test]
fn backspace_run_against_concurrent_typing() {
    let mut r = replicas("hello world", &["alice", "bob"]);
    // alice backspaces "world" one char at a time; bob types after "wor".
    for i in (6..11).rev() {
        r[0].del(i..i + 1).unwrap();
    }
    r[1].ins(9, "X").unwrap();
    check(&mut r, "hello X");
}

#[test]
fn newline_edits() {
    let mut r = replicas("one\ntwo\n", &["alice", "bob"]);
    r[0].ins(4, "1.5\n").unwrap();
    r[1].del(3..4).unwrap();
    check(&mut r, "one1.5\ntwo\n");
}
