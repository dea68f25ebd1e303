//! The rows of a table: a persistent (copy-on-write) radix trie from [`RowId`] to [`Row`].
//!
//! Row ids are small, dense and handed out in increasing order, so a trie indexed by the id's
//! bits beats a search tree: a lookup is one array index per level (no comparisons), appending
//! in id order — what image loading and log replay do a million times — touches only the
//! rightmost path, and iteration in id order is a depth-first walk.
//!
//! Layout: every node has [`WIDTH`] (32) slots; a trie of height `h` has `h` levels of inner
//! nodes above one level of leaves and holds the ids below `32^(h+1)` (height 3 holds
//! 1,048,576 ids; ids are `u64`, so the height never exceeds 12). Slot `i` of a node at level
//! `l` (leaves are level 0) covers the ids whose bits `5l .. 5l+5` equal `i`.
//!
//! Persistence: nodes are shared through `Arc`; cloning a map is O(1), and a change copies
//! only the nodes on its path that are shared with another clone (`Arc::make_mut`), so a
//! snapshot holding an old clone keeps seeing the old rows. The `Arc` is `triomphe`'s: with no
//! weak count, `make_mut` on a node nobody else holds is one atomic load, where std's is a
//! compare-and-swap of the weak count and a load of the strong one — and an append calls it
//! once per level (loading 1M rows from a binary image: 196 → 134 ms with the key index's
//! nodes changed alike, `docs/performance.md`).
//!
//! Invariants, kept by every method:
//! - `len` is the number of occupied leaf slots;
//! - every node's `live` is the number of its occupied slots, and no reachable node is empty
//!   (a removal prunes nodes that become empty, so memory follows the live rows, at worst one
//!   leaf of 32 slots per live row when deletions leave one survivor per leaf);
//! - `root` is `None` exactly when `len == 0`.

use triomphe::Arc;

use crate::table::{Row, RowId};

const BITS: u32 = 5;
/// Slots per node.
const WIDTH: usize = 1 << BITS;
const MASK: u64 = (WIDTH as u64) - 1;
/// The greatest height a `u64` id needs: `5 * (12 + 1) >= 64`.
const MAX_HEIGHT: u32 = 12;

// Inner nodes take a leaf's size (520 bytes, 264 used): they are 1 in 32 nodes, and boxing
// the leaves' arrays instead would add a second pointer hop on every level of every lookup.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Node {
    Inner {
        children: [Option<Arc<Node>>; WIDTH],
        live: u8,
    },
    Leaf {
        rows: [Option<Row>; WIDTH],
        live: u8,
    },
}

impl Node {
    fn empty(level: u32) -> Node {
        if level == 0 {
            Node::Leaf {
                rows: std::array::from_fn(|_| None),
                live: 0,
            }
        } else {
            Node::Inner {
                children: std::array::from_fn(|_| None),
                live: 0,
            }
        }
    }
}

fn slot(id: RowId, level: u32) -> usize {
    // The mask keeps the value below WIDTH, so the cast cannot truncate.
    ((id >> (BITS * level)) & MASK) as usize
}

/// `true` when a trie of `height` can hold `id`.
fn fits(id: RowId, height: u32) -> bool {
    let bits = BITS * (height + 1);
    bits >= u64::BITS || id >> bits == 0
}

/// A persistent map from row id to row, in id order.
#[derive(Clone, Debug, Default)]
pub(crate) struct RowMap {
    root: Option<Arc<Node>>,
    height: u32,
    len: usize,
}

impl RowMap {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, id: RowId) -> Option<&Row> {
        if !fits(id, self.height) {
            return None;
        }
        let mut node = self.root.as_deref()?;
        let mut level = self.height;
        loop {
            match node {
                Node::Inner { children, .. } => {
                    node = children[slot(id, level)].as_deref()?;
                    level -= 1;
                }
                Node::Leaf { rows, .. } => return rows[slot(id, 0)].as_ref(),
            }
        }
    }

    /// Inserts `row` under `id` if the id is free; hands the row back if it is taken.
    ///
    /// One walk down, not a lookup and then an insert: an id that is taken has its leaf, so the
    /// walk creates no node on the way to it, and only makes its own copy of any shared node
    /// on the path (equal to the original) before handing the row back.
    pub(crate) fn insert_new(&mut self, id: RowId, row: Row) -> Result<(), Row> {
        while !fits(id, self.height) {
            // Grow upwards: the old root becomes slot 0 of a new root one level higher.
            debug_assert!(self.height < MAX_HEIGHT);
            self.height += 1;
            if let Some(old) = self.root.take() {
                let mut root = Node::empty(self.height);
                if let Node::Inner { children, live } = &mut root {
                    children[0] = Some(old);
                    *live = 1;
                }
                self.root = Some(Arc::new(root));
            }
        }
        let height = self.height;
        let mut node = Arc::make_mut(
            self.root
                .get_or_insert_with(|| Arc::new(Node::empty(height))),
        );
        let mut level = height;
        loop {
            match node {
                Node::Inner { children, live } => {
                    let child = &mut children[slot(id, level)];
                    if child.is_none() {
                        *live += 1;
                    }
                    level -= 1;
                    node = Arc::make_mut(child.get_or_insert_with(|| Arc::new(Node::empty(level))));
                }
                Node::Leaf { rows, live } => {
                    let place = &mut rows[slot(id, 0)];
                    if place.is_some() {
                        return Err(row);
                    }
                    *place = Some(row);
                    *live += 1;
                    self.len += 1;
                    return Ok(());
                }
            }
        }
    }

    /// Replaces the row under `id`; returns the old row, or hands `row` back if `id` is free.
    pub(crate) fn replace(&mut self, id: RowId, row: Row) -> Result<Row, Row> {
        if self.get(id).is_none() {
            return Err(row);
        }
        let Some(root) = self.root.as_mut() else {
            return Err(row);
        };
        let mut node = Arc::make_mut(root);
        let mut level = self.height;
        loop {
            match node {
                Node::Inner { children, .. } => {
                    let Some(child) = children[slot(id, level)].as_mut() else {
                        return Err(row);
                    };
                    node = Arc::make_mut(child);
                    level -= 1;
                }
                Node::Leaf { rows, .. } => {
                    let place = &mut rows[slot(id, 0)];
                    // Occupied: `get` found it above.
                    return match place.take() {
                        Some(old) => {
                            *place = Some(row);
                            Ok(old)
                        }
                        None => Err(row),
                    };
                }
            }
        }
    }

    /// Removes and returns the row under `id`.
    pub(crate) fn remove(&mut self, id: RowId) -> Option<Row> {
        self.get(id)?;
        let root = self.root.as_mut()?;
        let (removed, now_empty) = remove_in(Arc::make_mut(root), id, self.height);
        if now_empty {
            self.root = None;
            self.height = 0;
        }
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// The rows in id order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        let mut stack = Vec::with_capacity(MAX_HEIGHT as usize + 1);
        if let Some(root) = self.root.as_deref() {
            stack.push(Frame {
                node: root,
                next: 0,
                base: 0,
                level: self.height,
            });
        }
        Iter {
            stack,
            remaining: self.len,
        }
    }
}

/// Removes `id` below `node` (at `level`); returns the row and whether `node` is now empty.
fn remove_in(node: &mut Node, id: RowId, level: u32) -> (Option<Row>, bool) {
    match node {
        Node::Leaf { rows, live } => {
            let removed = rows[slot(id, 0)].take();
            if removed.is_some() {
                *live -= 1;
            }
            (removed, *live == 0)
        }
        Node::Inner { children, live } => {
            let index = slot(id, level);
            let Some(child) = children[index].as_mut() else {
                return (None, *live == 0);
            };
            let (removed, child_empty) = remove_in(Arc::make_mut(child), id, level - 1);
            if child_empty {
                children[index] = None;
                *live -= 1;
            }
            (removed, *live == 0)
        }
    }
}

impl PartialEq for RowMap {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

struct Frame<'a> {
    node: &'a Node,
    next: usize,
    base: RowId,
    level: u32,
}

/// Iterator over `(id, row)` in id order.
pub(crate) struct Iter<'a> {
    stack: Vec<Frame<'a>>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (RowId, &'a Row);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let frame = self.stack.last_mut()?;
            if frame.next >= WIDTH {
                self.stack.pop();
                continue;
            }
            let index = frame.next;
            frame.next += 1;
            let id = frame.base | ((index as u64) << (BITS * frame.level));
            match frame.node {
                Node::Leaf { rows, .. } => {
                    if let Some(row) = &rows[index] {
                        self.remaining -= 1;
                        return Some((id, row));
                    }
                }
                Node::Inner { children, .. } => {
                    if let Some(child) = children[index].as_deref() {
                        let level = frame.level - 1;
                        self.stack.push(Frame {
                            node: child,
                            next: 0,
                            base: id,
                            level,
                        });
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.remaining)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::value::Value;

    fn row(n: u64) -> Row {
        Row::from(vec![Value::Int(n as i64)])
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(RowId),
        Replace(RowId),
        Remove(RowId),
        Snapshot,
    }

    fn id() -> impl Strategy<Value = RowId> {
        prop_oneof![
            0u64..80,
            0u64..5_000,
            Just(u64::MAX),
            Just(u64::MAX - 1),
            (0u32..64).prop_map(|b| 1u64 << b),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => id().prop_map(Op::Insert),
            2 => id().prop_map(Op::Replace),
            3 => id().prop_map(Op::Remove),
            1 => Just(Op::Snapshot),
        ]
    }

    proptest! {
        /// The trie behaves like a `BTreeMap`, and clones taken along the way never change.
        #[test]
        fn behaves_like_a_btreemap_and_clones_are_frozen(ops in proptest::collection::vec(op(), 0..300)) {
            let mut map = RowMap::default();
            let mut model = BTreeMap::new();
            let mut frozen: Vec<(RowMap, BTreeMap<RowId, Row>)> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                let n = n as u64;
                match op {
                    Op::Insert(id) => {
                        let got = map.insert_new(id, row(n)).is_ok();
                        let want = !model.contains_key(&id);
                        if want { model.insert(id, row(n)); }
                        prop_assert_eq!(got, want);
                    }
                    Op::Replace(id) => {
                        let got = map.replace(id, row(n)).ok();
                        let want = model.get_mut(&id).map(|r| std::mem::replace(r, row(n)));
                        prop_assert_eq!(got, want);
                    }
                    Op::Remove(id) => prop_assert_eq!(map.remove(id), model.remove(&id)),
                    Op::Snapshot => frozen.push((map.clone(), model.clone())),
                }
                prop_assert_eq!(map.len(), model.len());
                prop_assert_eq!(map.root.is_none(), model.is_empty());
            }
            let all: Vec<_> = map.iter().map(|(id, r)| (id, r.clone())).collect();
            let want: Vec<_> = model.iter().map(|(id, r)| (*id, r.clone())).collect();
            prop_assert_eq!(all, want);
            for (id, r) in &model {
                prop_assert_eq!(map.get(*id), Some(r));
            }
            for (old, old_model) in frozen {
                let got: Vec<_> = old.iter().map(|(id, r)| (id, r.clone())).collect();
                let want: Vec<_> = old_model.into_iter().collect();
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn removing_every_row_frees_every_node() {
        let mut map = RowMap::default();
        for id in 0..10_000 {
            map.insert_new(id, row(id)).expect("free id");
        }
        assert_eq!(map.height, 2);
        for id in (0..10_000).rev() {
            assert!(map.remove(id).is_some());
        }
        assert!(map.root.is_none());
        assert_eq!(map.len(), 0);
        assert_eq!(map.iter().count(), 0);
    }

    #[test]
    fn the_largest_id_fits() {
        let mut map = RowMap::default();
        map.insert_new(u64::MAX, row(1)).expect("free id");
        map.insert_new(0, row(0)).expect("free id");
        assert_eq!(map.height, MAX_HEIGHT);
        let ids: Vec<_> = map.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![0, u64::MAX]);
        assert_eq!(map.get(u64::MAX), Some(&row(1)));
    }
}
