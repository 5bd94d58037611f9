//! Versions. A [`Frontier`] names a version by the set of events nothing else in the version
//! descends from; the full version is the frontier plus its causal history.

use smallvec::SmallVec;

/// Local version: the index of one event (one inserted or deleted char) in this replica's log.
pub type LV = usize;

/// A version, named by its frontier: a sorted, duplicate-free set of local versions none of
/// which is an ancestor of another. The empty frontier is the root (the empty document).
#[derive(Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Frontier(pub(crate) SmallVec<[LV; 2]>);

impl Clone for Frontier {
    #[inline]
    fn clone(&self) -> Self {
        Frontier(SmallVec::from_slice(&self.0))
    }
}

impl Frontier {
    /// The root version: before any event.
    pub fn root() -> Self {
        Frontier(SmallVec::new())
    }

    /// A frontier of a single event.
    pub fn single(lv: LV) -> Self {
        let mut v = SmallVec::new();
        v.push(lv);
        Frontier(v)
    }

    /// Builds a frontier from arbitrary local versions (sorted and de-duplicated here). The caller
    /// is responsible for them being mutually concurrent; [`crate::OpLog::reduce`] makes any set so.
    pub fn from_unsorted(lvs: &[LV]) -> Self {
        let mut v: SmallVec<[LV; 2]> = lvs.into();
        v.sort_unstable();
        v.dedup();
        Frontier(v)
    }

    pub fn as_slice(&self) -> &[LV] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn replace_with_single(&mut self, lv: LV) {
        self.0.clear();
        self.0.push(lv);
    }

    pub(crate) fn insert_sorted(&mut self, lv: LV) {
        if let Err(i) = self.0.binary_search(&lv) {
            self.0.insert(i, lv);
        }
    }

    pub(crate) fn remove(&mut self, lv: LV) -> bool {
        if let Ok(i) = self.0.binary_search(&lv) {
            self.0.remove(i);
            true
        } else {
            false
        }
    }
}

impl From<&[LV]> for Frontier {
    fn from(s: &[LV]) -> Self {
        Frontier::from_unsorted(s)
    }
}
