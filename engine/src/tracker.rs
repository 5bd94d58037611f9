//! The eg-walker's transient CRDT state ("tracker"): the sequence of items inserted by the
//! events walked so far, each with its state at the *prepare* version (not yet inserted,
//! inserted, deleted n times) and whether it is deleted in the *effect* version (`ever_deleted`).
//!
//! Items are kept in a chunked list: leaves of at most [`LEAF_MAX`] items, in document order,
//! with per-leaf cached lengths. An id index (id range -> leaf) finds the item of an event, and a
//! delete index (delete event -> target ids) lets retreat/advance undo and redo deletes.
//!
//! Concurrent inserts at one place are ordered with diamond-types' YjsMod rules (equivalent to
//! FugueMax): origin-left, then origin-right, then agent name, then seq.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use crate::frontier::LV;
use crate::oplog::{OpKind, OpLog};

/// Ids at and above this are placeholder ("underwater") items: the document content at the
/// version the tracker started from, which is not known item by item.
pub(crate) const UNDERWATER: usize = usize::MAX / 4;
/// "No origin": the document start (as origin-left) or end (as origin-right).
pub(crate) const NONE: usize = usize::MAX;

const NIY: u32 = 0;
const INS: u32 = 1;

const LEAF_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Item {
    id: usize,
    len: usize,
    /// Origin-left of the first char; each later char's origin-left is its predecessor.
    origin_left: usize,
    origin_right: usize,
    /// 0 = not inserted yet, 1 = inserted, n >= 2 = deleted n-1 times (prepare version).
    state: u32,
    /// Deleted in the effect version (the document being produced).
    ever_deleted: bool,
}

impl Item {
    #[inline]
    fn cur(&self) -> usize {
        if self.state == INS {
            self.len
        } else {
            0
        }
    }
    #[inline]
    fn end(&self) -> usize {
        if self.ever_deleted {
            0
        } else {
            self.len
        }
    }
    #[inline]
    fn origin_left_at(&self, off: usize) -> usize {
        if off == 0 {
            self.origin_left
        } else {
            self.id + off - 1
        }
    }
    /// Splits off and returns the part from `at`.
    fn split(&mut self, at: usize) -> Item {
        debug_assert!(at > 0 && at < self.len);
        let right = Item {
            id: self.id + at,
            len: self.len - at,
            origin_left: self.id + at - 1,
            origin_right: self.origin_right,
            state: self.state,
            ever_deleted: self.ever_deleted,
        };
        self.len = at;
        right
    }
    fn can_append(&self, o: &Item) -> bool {
        self.id + self.len == o.id
            && o.origin_left == o.id.wrapping_sub(1)
            && self.origin_right == o.origin_right
            && self.state == o.state
            && self.ever_deleted == o.ever_deleted
    }
}

/// Prefix sums over leaves in document order.
#[derive(Debug, Default)]
struct Fenwick {
    /// 1-based.
    t: Vec<usize>,
}

impl Fenwick {
    fn build(vals: impl Iterator<Item = usize>) -> Self {
        let mut t = vec![0];
        t.extend(vals);
        let n = t.len() - 1;
        for i in 1..=n {
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                t[j] += t[i];
            }
        }
        Fenwick { t }
    }
    fn add(&mut self, i: usize, delta: isize) {
        let mut i = i + 1;
        while i < self.t.len() {
            self.t[i] = (self.t[i] as isize + delta) as usize;
            i += i & i.wrapping_neg();
        }
    }
    /// Sum of the first `i` values.
    fn prefix(&self, mut i: usize) -> usize {
        let mut s = 0;
        while i > 0 {
            s += self.t[i];
            i -= i & i.wrapping_neg();
        }
        s
    }
    /// The index whose range holds `pos`, and `pos` minus the values before it.
    fn search(&self, mut pos: usize) -> (usize, usize) {
        let n = self.t.len() - 1;
        let mut idx = 0;
        let mut bit = if n == 0 {
            0
        } else {
            1usize << (usize::BITS - 1 - n.leading_zeros())
        };
        while bit > 0 {
            let next = idx + bit;
            if next <= n && self.t[next] <= pos {
                idx = next;
                pos -= self.t[next];
            }
            bit >>= 1;
        }
        (idx, pos)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cur {
    leaf: u32,
    idx: usize,
    off: usize,
}

#[derive(Clone, Copy, Debug)]
struct DelTarget {
    end: LV,
    target: usize,
    fwd: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfRange;

#[derive(Debug)]
pub(crate) struct Tracker {
    items: Vec<Vec<Item>>,
    order: Vec<u32>,
    pos_of: Vec<u32>,
    cur_len: Vec<usize>,
    end_len: Vec<usize>,
    fen_cur: Fenwick,
    fen_end: Fenwick,
    /// Inserted id ranges -> leaf.
    index: BTreeMap<usize, (usize, u32)>,
    /// Delete events -> the ids they deleted.
    dels: BTreeMap<LV, DelTarget>,
    total_cur: usize,
    /// `total_cur - len_offset` is the true visible length at the prepare version (the
    /// placeholder may be longer than the real content when its length was not known).
    pub len_offset: usize,
}

impl Tracker {
    /// A tracker whose prepare and effect versions hold `placeholder` chars of unknown identity.
    pub fn new(placeholder: usize) -> Self {
        let mut t = Tracker {
            items: vec![Vec::new()],
            order: vec![0],
            pos_of: vec![0],
            cur_len: vec![0],
            end_len: vec![0],
            fen_cur: Fenwick::default(),
            fen_end: Fenwick::default(),
            index: BTreeMap::new(),
            dels: BTreeMap::new(),
            total_cur: 0,
            len_offset: 0,
        };
        if placeholder > 0 {
            t.items[0].push(Item {
                id: UNDERWATER,
                len: placeholder,
                origin_left: NONE,
                origin_right: NONE,
                state: INS,
                ever_deleted: false,
            });
            t.cur_len[0] = placeholder;
            t.end_len[0] = placeholder;
            t.total_cur = placeholder;
            t.index.insert(UNDERWATER, (UNDERWATER + placeholder, 0));
        }
        t.rebuild_fenwicks();
        t
    }

    fn rebuild_fenwicks(&mut self) {
        self.fen_cur = Fenwick::build(self.order.iter().map(|l| self.cur_len[*l as usize]));
        self.fen_end = Fenwick::build(self.order.iter().map(|l| self.end_len[*l as usize]));
    }

    /// Changes a leaf's cached lengths.
    #[inline]
    fn adjust(&mut self, leaf: u32, dcur: isize, dend: isize) {
        let l = leaf as usize;
        let p = self.pos_of[l] as usize;
        if dcur != 0 {
            self.cur_len[l] = (self.cur_len[l] as isize + dcur) as usize;
            self.total_cur = (self.total_cur as isize + dcur) as usize;
            self.fen_cur.add(p, dcur);
        }
        if dend != 0 {
            self.end_len[l] = (self.end_len[l] as isize + dend) as usize;
            self.fen_end.add(p, dend);
        }
    }

    /// Visible length at the prepare version.
    pub fn visible_len(&self) -> usize {
        self.total_cur - self.len_offset
    }

    pub fn raw_visible_len(&self) -> usize {
        self.total_cur
    }

    // ------------------------------------------------------------ navigation

    fn item(&self, c: Cur) -> Option<&Item> {
        self.items[c.leaf as usize].get(c.idx)
    }

    fn is_end(&self, c: Cur) -> bool {
        self.item(c).is_none()
    }

    fn end_cursor(&self) -> Cur {
        let last = *self.order.last().unwrap();
        Cur {
            leaf: last,
            idx: self.items[last as usize].len(),
            off: 0,
        }
    }

    /// Normalises a cursor whose idx may be past its leaf onto the next leaf's first item.
    fn roll(&self, mut c: Cur) -> Cur {
        while c.idx >= self.items[c.leaf as usize].len() {
            let p = self.pos_of[c.leaf as usize] as usize;
            if p + 1 >= self.order.len() {
                return self.end_cursor();
            }
            c = Cur {
                leaf: self.order[p + 1],
                idx: 0,
                off: 0,
            };
        }
        c
    }

    fn start_cursor(&self) -> Cur {
        self.roll(Cur {
            leaf: self.order[0],
            idx: 0,
            off: 0,
        })
    }

    fn next_item(&self, c: Cur) -> Cur {
        self.roll(Cur {
            leaf: c.leaf,
            idx: c.idx + 1,
            off: 0,
        })
    }

    /// Sort key of a (normalised) cursor in document order.
    fn key(&self, c: Cur) -> (usize, usize, usize) {
        if self.is_end(c) {
            (usize::MAX, 0, 0)
        } else {
            (self.pos_of[c.leaf as usize] as usize, c.idx, c.off)
        }
    }

    /// The cursor at the `pos`-th visible item (prepare version). `pos < total_cur`.
    fn find_visible(&self, pos: usize) -> Cur {
        debug_assert!(pos < self.total_cur);
        let (p, mut pos) = self.fen_cur.search(pos);
        let leaf = self.order[p];
        for (idx, it) in self.items[leaf as usize].iter().enumerate() {
            let c = it.cur();
            if pos < c {
                return Cur {
                    leaf,
                    idx,
                    off: pos,
                };
            }
            pos -= c;
        }
        unreachable!("leaf length cache out of date")
    }

    /// The cursor at the item with this id.
    fn find_id(&self, id: usize) -> Cur {
        let (_, &(end, leaf)) = self
            .index
            .range(..=id)
            .next_back()
            .expect("id not in tracker");
        debug_assert!(id < end);
        let _ = end;
        for (idx, it) in self.items[leaf as usize].iter().enumerate() {
            if id >= it.id && id < it.id + it.len {
                return Cur {
                    leaf,
                    idx,
                    off: id - it.id,
                };
            }
        }
        unreachable!("id index out of date")
    }

    /// Position right after item `id` (start of document for NONE), rolled forward.
    fn cursor_after(&self, id: usize) -> Cur {
        if id == NONE {
            return self.start_cursor();
        }
        let mut c = self.find_id(id);
        c.off += 1;
        if c.off >= self.item(c).unwrap().len {
            c = self.next_item(c);
        }
        c
    }

    /// Position of item `id` (end of document for NONE).
    fn cursor_before(&self, id: usize) -> Cur {
        if id == NONE {
            self.end_cursor()
        } else {
            self.find_id(id)
        }
    }

    /// Effect-document position of a cursor.
    fn end_pos(&self, c: Cur) -> usize {
        let p = self.pos_of[c.leaf as usize] as usize;
        let mut pos: usize = self.fen_end.prefix(p);
        let items = &self.items[c.leaf as usize];
        for it in &items[..c.idx.min(items.len())] {
            pos += it.end();
        }
        if let Some(it) = items.get(c.idx) {
            if !it.ever_deleted {
                pos += c.off;
            }
        }
        pos
    }

    // ------------------------------------------------------------ mutation helpers

    fn recount(&mut self, leaf: u32) {
        let (mut c, mut e) = (0, 0);
        for it in &self.items[leaf as usize] {
            c += it.cur();
            e += it.end();
        }
        self.total_cur = self.total_cur - self.cur_len[leaf as usize] + c;
        self.cur_len[leaf as usize] = c;
        self.end_len[leaf as usize] = e;
    }

    /// Records that new ids `start..end` are in `leaf`.
    fn index_add(&mut self, start: usize, end: usize, leaf: u32) {
        if let Some((_, e)) = self.index.range_mut(..start).next_back() {
            if e.0 == start && e.1 == leaf {
                e.0 = end;
                return;
            }
        }
        self.index.insert(start, (end, leaf));
    }

    fn index_set(&mut self, start: usize, end: usize, leaf: u32) {
        // Split entries straddling start or end, then retarget everything inside.
        if let Some((&s, &(e, l))) = self.index.range(..start).next_back() {
            if e > start {
                self.index.insert(s, (start, l));
                self.index.insert(start, (e, l));
            }
        }
        if let Some((&s, &(e, l))) = self.index.range(..end).next_back() {
            if e > end {
                self.index.insert(s, (end, l));
                self.index.insert(end, (e, l));
            }
        }
        let keys: Vec<usize> = self.index.range(start..end).map(|(k, _)| *k).collect();
        if keys.is_empty() {
            self.index.insert(start, (end, leaf));
        }
        for k in keys {
            self.index.get_mut(&k).unwrap().1 = leaf;
        }
    }

    /// Splits a leaf that has grown past LEAF_MAX.
    fn maybe_split_leaf(&mut self, leaf: u32) {
        if self.items[leaf as usize].len() <= LEAF_MAX {
            return;
        }
        let half = self.items[leaf as usize].len() / 2;
        let moved: Vec<Item> = self.items[leaf as usize].split_off(half);
        let new_leaf = self.items.len() as u32;
        let p = self.pos_of[leaf as usize] as usize;
        self.items.push(moved);
        self.cur_len.push(0);
        self.end_len.push(0);
        self.pos_of.push(0);
        self.order.insert(p + 1, new_leaf);
        for (i, l) in self.order.iter().enumerate().skip(p + 1) {
            self.pos_of[*l as usize] = i as u32;
        }
        let ranges: Vec<(usize, usize)> = self.items[new_leaf as usize]
            .iter()
            .map(|it| (it.id, it.id + it.len))
            .collect();
        for (s, e) in ranges {
            self.index_set(s, e, new_leaf);
        }
        // Recount both (total_cur adjusts through recount's delta), then the prefix sums.
        self.recount(leaf);
        self.recount(new_leaf);
        self.rebuild_fenwicks();
    }

    /// Makes `[c.off, c.off+n)` of the item at `c` an item of its own; returns its cursor.
    fn isolate(&mut self, c: Cur, n: usize) -> Cur {
        let items = &mut self.items[c.leaf as usize];
        let mut idx = c.idx;
        if c.off > 0 {
            let right = items[idx].split(c.off);
            items.insert(idx + 1, right);
            idx += 1;
        }
        if n < items[idx].len {
            let right = items[idx].split(n);
            items.insert(idx + 1, right);
        }
        Cur {
            leaf: c.leaf,
            idx,
            off: 0,
        }
    }

    /// Applies `f` to the items with ids `id..id+n` (which must all be in the tracker).
    fn mutate_ids(&mut self, mut id: usize, mut n: usize, f: impl Fn(&mut Item)) {
        while n > 0 {
            let c = self.find_id(id);
            let avail = self.item(c).unwrap().len - c.off;
            let k = avail.min(n);
            let c = self.isolate(c, k);
            let it = &mut self.items[c.leaf as usize][c.idx];
            let (c0, e0) = (it.cur(), it.end());
            f(it);
            let (c1, e1) = (it.cur(), it.end());
            self.adjust(c.leaf, c1 as isize - c0 as isize, e1 as isize - e0 as isize);
            self.merge_around(c.leaf, c.idx);
            self.maybe_split_leaf(c.leaf);
            id += k;
            n -= k;
        }
    }

    /// Joins the item at `idx` with its neighbours in the leaf when they form one run again
    /// (retreat/advance split items and then often restore their state).
    fn merge_around(&mut self, leaf: u32, idx: usize) {
        let items = &mut self.items[leaf as usize];
        if idx + 1 < items.len() && items[idx].can_append(&items[idx + 1]) {
            items[idx].len += items[idx + 1].len;
            items.remove(idx + 1);
        }
        if idx > 0 && items[idx - 1].can_append(&items[idx]) {
            items[idx - 1].len += items[idx].len;
            items.remove(idx);
        }
    }

    // ------------------------------------------------------------ ops

    /// Inserts `n` chars with ids `id..` at visible position `pos` of the prepare version.
    /// Returns the position in the effect document.
    pub fn insert(
        &mut self,
        oplog: &OpLog,
        id: usize,
        n: usize,
        pos: usize,
    ) -> Result<usize, OutOfRange> {
        if pos > self.visible_len() {
            return Err(OutOfRange);
        }
        let (origin_left, cursor) = if pos == 0 {
            (NONE, self.start_cursor())
        } else {
            let c = self.find_visible(pos - 1);
            let ol = self.item(c).unwrap().id + c.off;
            let mut c2 = c;
            c2.off += 1;
            if c2.off >= self.item(c2).unwrap().len {
                c2 = self.next_item(c2);
            }
            (ol, c2)
        };
        // Origin-right: the next item that is not "not inserted yet".
        let mut origin_right = NONE;
        let mut c = cursor;
        while let Some(it) = self.item(c) {
            if it.state != NIY {
                origin_right = it.id + c.off;
                break;
            }
            c = self.next_item(c);
        }
        let item = Item {
            id,
            len: n,
            origin_left,
            origin_right,
            state: INS,
            ever_deleted: false,
        };
        let at = self.integrate(oplog, item, cursor);
        Ok(self.put(at, item))
    }

    /// Finds where `item` goes among concurrent inserts (YjsMod / FugueMax).
    fn integrate(&self, oplog: &OpLog, item: Item, start: Cur) -> Cur {
        let left = start;
        let left_key = self.key(left);
        let mut cursor = start;
        let mut scan_start = cursor;
        let mut scanning = false;
        while let Some(other) = self.item(cursor).copied() {
            let other_id = other.id + cursor.off;
            if other_id == item.origin_right {
                break;
            }
            debug_assert_eq!(other.state, NIY);
            let other_left = other.origin_left_at(cursor.off);
            let other_left_key = self.key(self.cursor_after(other_left));
            match other_left_key.cmp(&left_key) {
                Ordering::Less => break,
                Ordering::Greater => {}
                Ordering::Equal => {
                    if item.origin_right == other.origin_right {
                        let (my_agent, my_seq) = oplog.lv_to_id(item.id);
                        let (o_agent, o_seq) = oplog.lv_to_id(other.id);
                        let ins_here =
                            match oplog.agent_name(my_agent).cmp(oplog.agent_name(o_agent)) {
                                Ordering::Less => true,
                                Ordering::Equal => my_seq < o_seq,
                                Ordering::Greater => false,
                            };
                        if ins_here {
                            break;
                        }
                        scanning = false;
                    } else {
                        let my_right = self.key(self.cursor_before(item.origin_right));
                        let other_right = self.key(self.cursor_before(other.origin_right));
                        if other_right < my_right {
                            if !scanning {
                                scanning = true;
                                scan_start = cursor;
                            }
                        } else {
                            scanning = false;
                        }
                    }
                }
            }
            cursor = self.next_item(cursor);
        }
        if scanning {
            scan_start
        } else {
            cursor
        }
    }

    /// Puts a new item at cursor `c`, returning its effect-document position.
    fn put(&mut self, c: Cur, item: Item) -> usize {
        let (leaf, idx) = if self.is_end(c) {
            let leaf = *self.order.last().unwrap();
            (leaf, self.items[leaf as usize].len())
        } else if c.off > 0 {
            let items = &mut self.items[c.leaf as usize];
            let right = items[c.idx].split(c.off);
            items.insert(c.idx + 1, right);
            (c.leaf, c.idx + 1)
        } else {
            (c.leaf, c.idx)
        };
        let pos = self.end_pos(Cur { leaf, idx, off: 0 });
        let items = &mut self.items[leaf as usize];
        if idx > 0 && items[idx - 1].can_append(&item) {
            items[idx - 1].len += item.len;
        } else {
            items.insert(idx, item);
        }
        self.index_add(item.id, item.id + item.len, leaf);
        self.adjust(leaf, item.cur() as isize, item.end() as isize);
        self.maybe_split_leaf(leaf);
        pos
    }

    /// Deletes the visible range `pos..pos+n` of the prepare version on behalf of delete events
    /// `lv..lv+n` (`fwd`: first event deletes the first char). Returns the chunks to delete from
    /// the effect document, in order.
    pub fn delete(
        &mut self,
        lv: LV,
        pos: usize,
        n: usize,
        fwd: bool,
    ) -> Result<Vec<(usize, usize)>, OutOfRange> {
        if pos + n > self.visible_len() {
            return Err(OutOfRange);
        }
        let mut targets: Vec<(usize, usize)> = Vec::new();
        let mut out: Vec<(usize, usize)> = Vec::new();
        let mut remaining = n;
        while remaining > 0 {
            let c = self.find_visible(pos);
            let k = (self.item(c).unwrap().len - c.off).min(remaining);
            let c = self.isolate(c, k);
            let epos = self.end_pos(c);
            let it = &mut self.items[c.leaf as usize][c.idx];
            it.state += 1;
            // It was visible (state INS) and is now deleted.
            let newly = !it.ever_deleted;
            it.ever_deleted = true;
            let id = it.id;
            self.adjust(c.leaf, -(k as isize), if newly { -(k as isize) } else { 0 });
            if newly {
                match out.last_mut() {
                    Some(last) if last.0 == epos => last.1 += k,
                    _ => out.push((epos, k)),
                }
            }
            targets.push((id, k));
            self.merge_around(c.leaf, c.idx);
            self.maybe_split_leaf(c.leaf);
            remaining -= k;
        }
        let mut at = lv;
        if fwd {
            for (t, k) in targets {
                self.dels.insert(
                    at,
                    DelTarget {
                        end: at + k,
                        target: t,
                        fwd: true,
                    },
                );
                at += k;
            }
        } else {
            for (t, k) in targets.into_iter().rev() {
                self.dels.insert(
                    at,
                    DelTarget {
                        end: at + k,
                        target: t,
                        fwd: false,
                    },
                );
                at += k;
            }
        }
        Ok(out)
    }

    /// Target ids of delete events `lv..lv+n`, as (id start, len) pieces.
    fn del_targets(&self, lv: LV, n: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut at = lv;
        let end = lv + n;
        while at < end {
            let (&s, d) = self
                .dels
                .range(..=at)
                .next_back()
                .expect("delete not in tracker");
            debug_assert!(at < d.end);
            let off = at - s;
            let k = (d.end - at).min(end - at);
            let len = d.end - s;
            let t = if d.fwd {
                d.target + off
            } else {
                // Event s+i deleted target+len-1-i; events at..at+k cover a descending span.
                d.target + len - off - k
            };
            out.push((t, k));
            at += k;
        }
        out
    }

    /// Moves the prepare version forward over events `range` (already walked once).
    pub fn advance(&mut self, oplog: &OpLog, range: Range<LV>) {
        let pieces: Vec<(OpKind, LV, usize)> =
            oplog.ops_in(range).map(|p| (p.kind, p.lv, p.len)).collect();
        for (kind, lv, len) in pieces {
            match kind {
                OpKind::Ins => self.mutate_ids(lv, len, |it| {
                    debug_assert_eq!(it.state, NIY);
                    it.state = INS
                }),
                OpKind::Del => {
                    for (t, k) in self.del_targets(lv, len) {
                        self.mutate_ids(t, k, |it| it.state += 1);
                    }
                }
            }
        }
    }

    /// Moves the prepare version back over events `range`.
    pub fn retreat(&mut self, oplog: &OpLog, range: Range<LV>) {
        let pieces: Vec<(OpKind, LV, usize)> =
            oplog.ops_in(range).map(|p| (p.kind, p.lv, p.len)).collect();
        for (kind, lv, len) in pieces.into_iter().rev() {
            match kind {
                OpKind::Ins => self.mutate_ids(lv, len, |it| {
                    debug_assert_eq!(it.state, INS);
                    it.state = NIY
                }),
                OpKind::Del => {
                    for (t, k) in self.del_targets(lv, len) {
                        self.mutate_ids(t, k, |it| {
                            debug_assert!(it.state > INS);
                            it.state -= 1
                        });
                    }
                }
            }
        }
    }
}
