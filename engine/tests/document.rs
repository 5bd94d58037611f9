//! Document API: local edits, edits at old versions, remote events and their validation,
//! versions, time travel, transforms and the binary encoding.

use engine::{
    Bias, DecodeError, Document, Edit, EditError, Frontier, RemoteError, RemoteEvent, RemoteId,
    RemoteOp, RemoteVersion, VersionError, XfOp,
};

fn ins(agent: &str, seq: u64, parents: &[(&str, u64)], pos: usize, text: &str) -> RemoteEvent {
    RemoteEvent {
        agent: agent.into(),
        seq,
        parents: parents
            .iter()
            .map(|(a, s)| RemoteId {
                agent: (*a).into(),
                seq: *s,
            })
            .collect(),
        op: RemoteOp::Insert {
            pos,
            text: text.into(),
        },
    }
}

fn del(agent: &str, seq: u64, parents: &[(&str, u64)], pos: usize, len: usize) -> RemoteEvent {
    RemoteEvent {
        op: RemoteOp::Delete {
            pos,
            len,
            backwards: false,
        },
        ..ins(agent, seq, parents, 0, "")
    }
}

fn doc_with(text: &str) -> (Document, engine::AgentId) {
    let mut d = Document::new();
    let a = d.agent("me");
    d.insert(a, 0, text).unwrap();
    (d, a)
}

#[test]
fn local_edits_and_errors_leave_document_unchanged() {
    let (mut d, a) = doc_with("hello");
    d.insert(a, 5, " world").unwrap();
    d.replace(a, 0..5, "HELLO").unwrap();
    d.delete(a, 5..6).unwrap();
    assert_eq!(d.text().to_string(), "HELLOworld");
    let v = d.version().clone();
    assert_eq!(
        d.insert(a, 11, "x"),
        Err(EditError::OutOfRange {
            pos: 11,
            len: 0,
            doc_len: 10
        })
    );
    #[allow(clippy::reversed_empty_ranges)]
    let bad = 5..3;
    assert_eq!(d.delete(a, bad), Err(EditError::BadRange));
    assert!(matches!(
        d.delete(a, 8..11),
        Err(EditError::OutOfRange { .. })
    ));
    assert_eq!(
        d.insert(engine::AgentId(99), 0, "x"),
        Err(EditError::UnknownAgent)
    );
    assert_eq!(d.version(), &v);
    assert_eq!(d.text().to_string(), "HELLOworld");
}

#[test]
fn typing_is_stored_as_runs() {
    let mut d = Document::new();
    let a = d.agent("me");
    for (i, c) in "the quick brown fox".chars().enumerate() {
        d.insert(a, i, &c.to_string()).unwrap();
    }
    for i in (10..19).rev() {
        d.delete(a, i..i + 1).unwrap();
    }
    let (graph, agents, ops) = d.oplog().num_runs();
    assert_eq!((graph, agents, ops), (1, 1, 2));
    assert_eq!(d.text().to_string(), "the quick ");
}

#[test]
fn edit_at_old_version_is_transformed() {
    let (mut d, a) = doc_with("fn main() {}\n");
    let base = d.version().clone();
    let human = d.agent("human");
    d.insert(human, 0, "// header\n").unwrap();
    d.insert(human, 0, "#![allow(x)]\n").unwrap();
    // An agent read `base` and replaces "main" with "start", then appends a line.
    let bot = d.agent("bot");
    let out = d
        .edit_at(
            bot,
            &base,
            &[
                Edit {
                    range: 3..7,
                    text: "start".into(),
                },
                Edit {
                    range: 14..14,
                    text: "// done\n".into(),
                },
            ],
        )
        .unwrap();
    assert_eq!(
        d.text().to_string(),
        "#![allow(x)]\n// header\nfn start() {}\n// done\n"
    );
    assert_eq!(out.version, *d.version());
    assert_eq!(
        out.applied,
        vec![
            XfOp::Delete { pos: 26, len: 4 },
            XfOp::Insert {
                pos: 26,
                text: "start".into()
            },
            XfOp::Insert {
                pos: 37,
                text: "// done\n".into()
            },
        ]
    );
    let _ = a;
}

#[test]
fn edit_at_rejects_out_of_range_and_changes_nothing() {
    let (mut d, _) = doc_with("abc");
    let base = d.version().clone();
    let bot = d.agent("bot");
    let before = d.oplog().len();
    let err = d
        .edit_at(
            bot,
            &base,
            &[Edit {
                range: 2..9,
                text: "x".into(),
            }],
        )
        .unwrap_err();
    assert!(matches!(err, EditError::InvalidEdit(_)), "{err}");
    assert_eq!(d.oplog().len(), before);
    assert_eq!(d.text().to_string(), "abc");
    // The agent can still edit afterwards (no half-added events).
    d.edit_at(
        bot,
        &base,
        &[Edit {
            range: 0..1,
            text: "A".into(),
        }],
    )
    .unwrap();
    assert_eq!(d.text().to_string(), "Abc");
}

#[test]
fn edit_at_requires_the_agents_own_previous_edit() {
    let (mut d, _) = doc_with("abc");
    let base = d.version().clone();
    let bot = d.agent("bot");
    d.edit_at(
        bot,
        &base,
        &[Edit {
            range: 0..0,
            text: "1".into(),
        }],
    )
    .unwrap();
    assert_eq!(
        d.edit_at(
            bot,
            &base,
            &[Edit {
                range: 0..0,
                text: "2".into()
            }]
        ),
        Err(EditError::AgentNotInBase)
    );
    assert_eq!(
        d.edit_at(bot, &Frontier::single(999), &[]),
        Err(EditError::UnknownVersion)
    );
}

#[test]
fn simultaneous_edits_become_sequential() {
    let seq = Edit::sequence(vec![
        Edit {
            range: 0..1,
            text: "A".into(),
        },
        Edit {
            range: 4..6,
            text: "".into(),
        },
        Edit {
            range: 2..2,
            text: "xy".into(),
        },
    ])
    .unwrap();
    let (mut d, a) = doc_with("abcdefg");
    let base = d.version().clone();
    d.edit_at(a, &base, &seq).unwrap();
    assert_eq!(d.text().to_string(), "Abxycdg");
    assert!(Edit::sequence(vec![
        Edit {
            range: 0..3,
            text: "".into()
        },
        Edit {
            range: 2..4,
            text: "".into()
        }
    ])
    .is_err());
}

#[test]
fn remote_events_in_any_order_with_duplicates() {
    let evs = vec![
        ins("a", 0, &[], 0, "hello"),
        ins("b", 0, &[("a", 4)], 5, " world"),
        del("a", 5, &[("a", 4)], 0, 1),
        ins("a", 6, &[("a", 5), ("b", 5)], 0, "H"),
    ];
    let mut want = Document::new();
    want.apply_remote(&evs).unwrap();
    assert_eq!(want.text().to_string(), "Hello world");
    for order in [[3usize, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
        let mut d = Document::new();
        for (k, i) in order.iter().enumerate() {
            let r = d.apply_remote(&[evs[*i].clone()]).unwrap();
            if k < 3 {
                assert!(d.pending_events() > 0 || r.new_events > 0);
            }
        }
        assert_eq!(d.pending_events(), 0);
        assert_eq!(d.text().to_string(), "Hello world");
        // Everything again: all duplicates.
        let r = d.apply_remote(&evs).unwrap();
        assert_eq!(r.new_events, 0);
        assert_eq!(r.duplicate_events, 5 + 6 + 1 + 1);
        assert!(r.applied.is_empty());
    }
}

#[test]
fn partially_known_runs_are_trimmed() {
    let mut d = Document::new();
    d.apply_remote(&[ins("a", 0, &[], 0, "abc")]).unwrap();
    let r = d.apply_remote(&[ins("a", 0, &[], 0, "abcdef")]).unwrap();
    assert_eq!((r.new_events, r.duplicate_events), (3, 3));
    assert_eq!(
        r.applied,
        vec![XfOp::Insert {
            pos: 3,
            text: "def".into()
        }]
    );
    assert_eq!(d.text().to_string(), "abcdef");
}

#[test]
fn invalid_remote_events_are_rejected_and_change_nothing() {
    let mut d = Document::new();
    d.apply_remote(&[ins("a", 0, &[], 0, "abc")]).unwrap();
    let v = d.version().clone();
    type Check = fn(&RemoteError) -> bool;
    let cases: Vec<(RemoteEvent, Check)> = vec![
        (ins("b", 0, &[("a", 2)], 4, "x"), |e| {
            matches!(e, RemoteError::OutOfRange { .. })
        }),
        (del("b", 0, &[("a", 2)], 2, 2), |e| {
            matches!(e, RemoteError::OutOfRange { .. })
        }),
        (ins("a", 5, &[("a", 2)], 0, "x"), |e| {
            matches!(e, RemoteError::SeqGap { .. })
        }),
        (ins("a", 1, &[("a", 2)], 0, "x"), |e| {
            matches!(e, RemoteError::Conflict { .. })
        }),
        (ins("a", 0, &[], 0, "abd"), |e| {
            matches!(e, RemoteError::Conflict { .. })
        }),
        (ins("a", 3, &[], 0, "x"), |e| {
            matches!(e, RemoteError::NotAfterOwnPrevious { .. })
        }),
        (ins("b", 0, &[], 0, ""), |e| {
            matches!(e, RemoteError::Malformed(_))
        }),
        (ins("", 0, &[], 0, "x"), |e| {
            matches!(e, RemoteError::Malformed(_))
        }),
        (del("b", 0, &[("a", 2)], usize::MAX, 2), |e| {
            matches!(e, RemoteError::OutOfRange { .. })
        }),
    ];
    for (ev, ok) in cases {
        // A valid event in the same batch is rejected with it (batches are atomic).
        let batch = vec![ins("c", 0, &[("a", 2)], 0, "ok"), ev];
        let err = d.apply_remote(&batch).unwrap_err();
        assert!(ok(&err), "unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
        assert_eq!(d.version(), &v);
        assert_eq!(d.text().to_string(), "abc");
        assert_eq!(d.oplog().len(), 3);
    }
}

#[test]
fn events_with_parents_that_never_arrive_can_be_rejected() {
    let mut d = Document::new();
    let r = d
        .apply_remote(&[ins("b", 0, &[("ghost", 7)], 0, "x")])
        .unwrap();
    assert_eq!(r.pending_events, 1);
    assert_eq!(d.text().to_string(), "");
    let errs = d.reject_pending();
    assert_eq!(
        errs,
        vec![RemoteError::MissingParents {
            agent: "b".into(),
            seq: 0,
            missing: vec![("ghost".into(), 7)]
        }]
    );
    assert_eq!(d.pending_events(), 0);
}

#[test]
fn versions_round_trip_through_wire_form() {
    let mut a = Document::new();
    let x = a.agent("x");
    a.insert(x, 0, "one ").unwrap();
    let v1 = a.version().clone();
    let mut b = Document::new();
    b.apply_remote(&a.events_since(&RemoteVersion::new()))
        .unwrap();
    let y = b.agent("y");
    b.insert(y, 4, "two").unwrap();
    a.insert(x, 0, "zero ").unwrap();
    a.apply_remote(&b.events_since(&a.remote_version(a.version())))
        .unwrap();
    assert_eq!(a.text().to_string(), "zero one two");
    let rv = a.remote_version(a.version());
    assert_eq!(rv, RemoteVersion::from([("x".into(), 8), ("y".into(), 2)]));
    assert_eq!(a.frontier_of(&rv).unwrap(), *a.version());
    let rv1 = a.remote_version(&v1);
    assert_eq!(rv1, RemoteVersion::from([("x".into(), 3)]));
    assert_eq!(a.frontier_of(&rv1).unwrap(), v1);
    assert!(matches!(
        a.frontier_of(&RemoteVersion::from([("x".into(), 99)])),
        Err(VersionError::UnknownRemote { .. })
    ));
    // y:0 depends on x:0..3; "y up to 0 without any x" is not a version.
    assert_eq!(
        a.frontier_of(&RemoteVersion::from([("y".into(), 0)])),
        Err(VersionError::NotClosed)
    );
    // events_since sends only what is missing.
    let missing = a.events_since(&RemoteVersion::from([("x".into(), 3)]));
    assert_eq!(missing.iter().map(|e| e.len()).sum::<usize>(), 5 + 3);
}

#[test]
fn checkout_transform_and_positions() {
    let (mut d, a) = doc_with("abc");
    let v0 = d.version().clone();
    d.insert(a, 1, "XY").unwrap();
    let v1 = d.version().clone();
    d.delete(a, 0..2).unwrap();
    let v2 = d.version().clone();
    assert_eq!(d.checkout(&v0).unwrap().to_string(), "abc");
    assert_eq!(d.checkout(&v1).unwrap().to_string(), "aXYbc");
    assert_eq!(d.checkout(&Frontier::root()).unwrap().to_string(), "");
    assert_eq!(
        d.checkout(&Frontier::single(1000)),
        Err(VersionError::Unknown)
    );
    let ops = d.transform(&v0, &v2).unwrap();
    let mut r = d.checkout(&v0).unwrap();
    for op in &ops {
        op.apply(&mut r);
    }
    assert_eq!(r.to_string(), d.text().to_string());
    // Position 1 at v0 (before 'b'): inserts at it move it right with Bias::Right.
    assert_eq!(d.transform_pos(1, &v0, &v1, Bias::Right).unwrap(), 3);
    assert_eq!(d.transform_pos(1, &v0, &v1, Bias::Left).unwrap(), 1);
    assert_eq!(d.transform_pos(2, &v0, &v2, Bias::Left).unwrap(), 2);
}

#[test]
fn encoding_round_trips_and_syncs() {
    let mut a = Document::new();
    let x = a.agent("x");
    a.insert(x, 0, "héllo 🙂 world").unwrap();
    for i in (0..5).rev() {
        a.delete(x, i..i + 1).unwrap();
    }
    let mut b = Document::decode(&a.encode()).unwrap();
    assert_eq!(b.text().to_string(), a.text().to_string());
    assert_eq!(b.remote_version(b.version()), a.remote_version(a.version()));
    let y = b.agent("y");
    b.insert(y, 0, "Yo").unwrap();
    a.insert(x, 3, "!").unwrap();
    let since = b.encode_since(&b.remote_version(&Frontier::from_unsorted(&[0])));
    a.apply_encoded(&since).unwrap();
    b.apply_encoded(&a.encode()).unwrap();
    assert_eq!(a.text().to_string(), b.text().to_string());
    let empty = Document::decode(&Document::new().encode()).unwrap();
    assert_eq!(empty.len_chars(), 0);
}

#[test]
fn corrupt_or_truncated_encodings_are_errors() {
    let (d, _) = doc_with("some text that is long enough to compress a little bit");
    let bytes = d.encode();
    for n in 0..bytes.len() {
        assert!(
            Document::decode(&bytes[..n]).is_err(),
            "prefix of {n} bytes decoded"
        );
    }
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(Document::decode(&b).is_err(), "flip at {i} decoded");
        }
    }
    assert_eq!(
        Document::decode(b"not a log at all").unwrap_err(),
        DecodeError::BadMagic
    );
}

#[test]
fn documents_with_a_base_text() {
    let mut d = Document::from_text(engine::Rope::from_str("fn main() {}\n"));
    assert_eq!(d.version(), &Frontier::root());
    assert_eq!(d.oplog().len(), 0);
    let a = d.agent("me");
    d.insert(a, 12, "\n").unwrap();
    assert_eq!(
        d.checkout(&Frontier::root()).unwrap().to_string(),
        "fn main() {}\n"
    );
    // Another replica from the same base syncs through encoded chunks.
    let mut e = Document::from_text(engine::Rope::from_str("fn main() {}\n"));
    let b = e.agent("other");
    e.insert(b, 0, "// hi\n").unwrap();
    e.apply_encoded(&d.encode_since(&RemoteVersion::new()))
        .unwrap();
    d.apply_encoded(&e.encode_since(&d.remote_version(d.version())))
        .unwrap();
    assert_eq!(d.text().to_string(), "// hi\nfn main() {}\n\n");
    assert_eq!(e.text().to_string(), d.text().to_string());
    // A whole-log encoding carries the base.
    let mut f = Document::decode(&d.encode()).unwrap();
    assert_eq!(f.text().to_string(), d.text().to_string());
    // Chunks for another base are refused.
    let mut g = Document::from_text(engine::Rope::from_str("something else"));
    assert!(g
        .apply_encoded(&d.encode_since(&RemoteVersion::new()))
        .is_err());
    assert_eq!(g.text().to_string(), "something else");
}

/// A forward delete followed by a backspace run at the same place: the receiver must store the
/// same runs (found by the convergence property test).
#[test]
fn forward_delete_then_backspace_run_syncs_exactly() {
    let (mut a, x) = doc_with("a日本xyz");
    a.delete(x, 0..1).unwrap(); // forward delete at 0
    a.delete(x, 1..2).unwrap(); // then backspace twice: 1, then 0
    a.delete(x, 0..1).unwrap();
    let mut b = Document::new();
    b.apply_remote(&a.events_since(&RemoteVersion::new()))
        .unwrap();
    assert_eq!(b.text().to_string(), a.text().to_string());
    assert_eq!(b.text().to_string(), "xyz");
    // Everything again: only duplicates, no conflict.
    let r = b
        .apply_remote(&a.events_since(&RemoteVersion::new()))
        .unwrap();
    assert_eq!(r.new_events, 0);
    assert_eq!(b.all_events(), a.all_events());
}
