//! Quick cross-check of merge results against diamond-types 1.0.0 on small random histories.
//! (The thorough differential test lives in differential.rs.)

use diamond_types::list::OpLog as DtOpLog;
use engine::{Frontier, OpLog};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ALPHABET: &[&str] = &["a", "b", "c", "é", "🙂", "xy", "\n", "日本"];

fn run_case(seed: u64, steps: usize, agents: usize) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let mut ours = OpLog::new();
    let mut dt = DtOpLog::new();
    let names: Vec<String> = (0..agents).map(|i| format!("agent{i}")).collect();
    let our_agents: Vec<_> = names.iter().map(|n| ours.agent(n)).collect();
    let dt_agents: Vec<_> = names.iter().map(|n| dt.get_or_create_agent_id(n)).collect();
    // Known versions, as lists of LVs (LVs are equal in both logs: same ops in same order).
    let mut versions: Vec<Vec<usize>> = vec![vec![]];
    let mut log = String::new();
    let mut last: Vec<Option<usize>> = vec![None; agents];
    for _ in 0..steps {
        let a = rng.below(agents);
        let parents: Vec<usize> = match rng.below(4) {
            0 => dt.local_version_ref().to_vec(),
            1 => {
                let x = &versions[rng.below(versions.len())];
                let y = &versions[rng.below(versions.len())];
                let u = dt.version_union(x, y);
                u.to_vec()
            }
            _ => versions[rng.below(versions.len())].clone(),
        };
        // Each agent's events are causally chained (as in dist-space): include its last event.
        let parents: Vec<usize> = match last[a] {
            Some(l) => dt.version_union(&parents, &[l]).to_vec(),
            None => parents,
        };
        let len = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            dt.checkout(&parents).len()
        })) {
            Ok(l) => l,
            Err(_) => return Err(format!("DTPANIC seed {seed} checkout {parents:?}\n{log}")),
        };
        let ins = len == 0 || rng.below(3) > 0;
        let end = if ins {
            let pos = rng.below(len + 1);
            let mut s = String::new();
            for _ in 0..1 + rng.below(3) {
                s.push_str(ALPHABET[rng.below(ALPHABET.len())]);
            }
            log.push_str(&format!("ins a{a} at {parents:?} pos {pos} {s:?}\n"));
            let e1 = dt.add_insert_at(dt_agents[a], &parents, pos, &s);
            let e2 = ours
                .add_insert_at(our_agents[a], &parents, pos, &s)
                .unwrap();
            assert_eq!(e1, e2.end - 1);
            e1
        } else {
            let pos = rng.below(len);
            let n = 1 + rng.below((len - pos).min(4));
            log.push_str(&format!("del a{a} at {parents:?} {pos}..{}\n", pos + n));
            let e1 = dt.add_delete_at(dt_agents[a], &parents, pos..pos + n);
            let e2 = ours
                .add_delete_at(our_agents[a], &parents, pos..pos + n)
                .unwrap();
            assert_eq!(e1, e2.end - 1);
            e1
        };
        versions.push(vec![end]);
        last[a] = Some(end);
    }
    let want = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dt.checkout_tip().content().to_string()
    })) {
        Ok(w) => w,
        Err(_) => return Err(format!("DTPANIC seed {seed}\n{log}")),
    };
    let got = ours
        .checkout(&Frontier::from_unsorted(dt.local_version_ref()))
        .map_err(|e| format!("{e}\n{log}"))?
        .to_string();
    if want != got {
        return Err(format!("seed {seed}: dt {want:?} ours {got:?}\n{log}"));
    }
    // Every intermediate version too.
    for v in versions.iter().step_by(7) {
        let want = dt.checkout(v).content().to_string();
        let got = ours
            .checkout(&Frontier::from_unsorted(v))
            .unwrap()
            .to_string();
        if want != got {
            return Err(format!(
                "seed {seed} at {v:?}: dt {want:?} ours {got:?}\n{log}"
            ));
        }
    }
    Ok(())
}

#[test]
fn matches_diamond_types_on_small_random_histories() {
    for seed in 0..300 {
        let steps = 5 + (seed as usize % 40);
        if let Err(e) = run_case(seed, steps, 2 + (seed as usize % 3)) {
            if e.starts_with("DTPANIC") {
                eprintln!("{}", e);
                continue;
            }
            panic!("{e}");
        }
    }
}
