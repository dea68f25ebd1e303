//! The primary-key index of a table: a persistent (copy-on-write) B+tree from key to row id.
//!
//! Why a B+tree of our own rather than `imbl::OrdMap` (used until this crate's 0.1) or a hash
//! trie: loading an image or replaying a log inserts keys one by one, most often in increasing
//! order (an `id` column). Here such an append compares the key with the last key of each node
//! on the rightmost path and never binary-searches, and a full rightmost node splits by moving
//! only the new entry to a fresh node, so bulk-loaded leaves are full (no half-empty leaves).
//! A hash trie was measured first and lost: every insert and lookup became a random walk of
//! cache misses (1 µs a lookup at 1M keys), where an ordered tree keeps sequential keys close.
//!
//! Layout: a leaf holds up to [`CAP`] `(key, id)` entries sorted by key; an inner node holds
//! `n + 1` children and `n` separators, every key of `children[i]` being `< seps[i]` and every
//! key of `children[i + 1]` being `>= seps[i]`. Nodes are shared through `Arc` (triomphe's,
//! for a cheap `make_mut`: see `rowmap`); cloning the index is O(1) and a change copies only the
//! shared nodes on its path.
//!
//! Invariants, kept by every method:
//! - keys are unique; `len` is the number of entries;
//! - no reachable node is empty (removal prunes empty nodes and collapses a root with one
//!   child). Removal does not merge underfull siblings: a node keeps its place while it holds
//!   one entry, which bounds the height by the insert history, not by the live keys;
//! - `root` is `None` exactly when `len == 0`.

use std::cmp::Ordering;
use triomphe::Arc;

use crate::table::RowId;
use crate::value::Value;

/// Most entries (leaves) or children (inner nodes) a node holds.
const CAP: usize = 64;

#[derive(Debug)]
enum Node<K> {
    Leaf(Vec<(K, RowId)>),
    Inner {
        seps: Vec<K>,
        children: Vec<Arc<Node<K>>>,
    },
}

/// A copy made by `Arc::make_mut` is copied to be changed, by an insert nearly always: it gets
/// room for one more entry, so that insert (and the split after it, which only moves entries
/// out) does not reallocate and copy the node a second time. (A derived clone has no spare
/// capacity: in the 16-writer profile the leaf insert's reallocation was 2 % of the CPU.)
impl<K: Clone> Clone for Node<K> {
    fn clone(&self) -> Self {
        fn roomy<T: Clone>(v: &[T]) -> Vec<T> {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.extend_from_slice(v);
            out
        }
        match self {
            Node::Leaf(entries) => Node::Leaf(roomy(entries)),
            Node::Inner { seps, children } => Node::Inner {
                seps: roomy(seps),
                children: roomy(children),
            },
        }
    }
}

/// Which child of an inner node covers `key`.
fn child_for<K: Ord>(seps: &[K], key: &K) -> usize {
    match seps.last() {
        // The append fast path: one comparison instead of a binary search.
        Some(last) if last <= key => seps.len(),
        _ => seps.partition_point(|s| s <= key),
    }
}

/// The primary-key index of a table: integer keys (the common case) in a B+tree of `i64`
/// (16 bytes an entry, and integer comparisons), every other key in a B+tree of [`Value`]
/// (40 bytes an entry). A key lives in exactly one of the two, chosen by its variant, and the
/// index only answers equality lookups, so the split is invisible to callers.
#[derive(Clone, Debug, Default)]
pub(crate) struct PrimaryIndex {
    ints: KeyIndex<i64>,
    others: KeyIndex<Value>,
}

impl PrimaryIndex {
    pub(crate) fn get(&self, key: &Value) -> Option<RowId> {
        match key {
            Value::Int(i) => self.ints.get(i),
            other => self.others.get(other),
        }
    }

    /// Files `id` under `key`; if the key is taken, returns its row id and changes nothing.
    pub(crate) fn insert(&mut self, key: &Value, id: RowId) -> Result<(), RowId> {
        match key {
            Value::Int(i) => self.ints.insert(*i, id),
            other => self.others.insert(other.clone(), id),
        }
    }

    /// Removes `key` and returns its row id.
    pub(crate) fn remove(&mut self, key: &Value) -> Option<RowId> {
        match key {
            Value::Int(i) => self.ints.remove(i),
            other => self.others.remove(other),
        }
    }
}

/// A persistent map from key to row id.
#[derive(Clone, Debug)]
pub(crate) struct KeyIndex<K> {
    root: Option<Arc<Node<K>>>,
    len: usize,
}

impl<K> Default for KeyIndex<K> {
    fn default() -> Self {
        KeyIndex { root: None, len: 0 }
    }
}

impl<K: Ord + Clone> KeyIndex<K> {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, key: &K) -> Option<RowId> {
        let mut node = self.root.as_deref()?;
        loop {
            match node {
                Node::Leaf(entries) => {
                    return entries
                        .binary_search_by(|(k, _)| k.cmp(key))
                        .ok()
                        .map(|i| entries[i].1);
                }
                Node::Inner { seps, children } => node = &children[child_for(seps, key)],
            }
        }
    }

    /// Files `id` under `key`; if the key is taken, returns its row id and changes nothing.
    pub(crate) fn insert(&mut self, key: K, id: RowId) -> Result<(), RowId> {
        let Some(root) = self.root.as_mut() else {
            let mut entries = Vec::with_capacity(CAP + 1);
            entries.push((key, id));
            self.root = Some(Arc::new(Node::Leaf(entries)));
            self.len = 1;
            return Ok(());
        };
        if let Some((sep, right)) = insert_in(Arc::make_mut(root), key, id)? {
            let left = Arc::clone(root);
            let mut children = Vec::with_capacity(CAP + 1);
            children.push(left);
            children.push(right);
            self.root = Some(Arc::new(Node::Inner {
                seps: vec![sep],
                children,
            }));
        }
        self.len += 1;
        Ok(())
    }

    /// Removes `key` and returns its row id.
    pub(crate) fn remove(&mut self, key: &K) -> Option<RowId> {
        self.get(key)?;
        let root = self.root.as_mut()?;
        let (removed, empty) = remove_in(Arc::make_mut(root), key);
        if empty {
            self.root = None;
        } else {
            // A root with one child is one level too many.
            while let Some(Node::Inner { children, .. }) = self.root.as_deref() {
                if children.len() != 1 {
                    break;
                }
                let only = Arc::clone(&children[0]);
                self.root = Some(only);
            }
        }
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }
}

type Split<K> = Option<(K, Arc<Node<K>>)>;

/// Inserts below `node`; on overflow returns the separator and the new right sibling.
fn insert_in<K: Ord + Clone>(node: &mut Node<K>, key: K, id: RowId) -> Result<Split<K>, RowId> {
    match node {
        Node::Leaf(entries) => {
            let pos = match entries.last().map(|(k, _)| k.cmp(&key)) {
                Some(Ordering::Less) | None => entries.len(),
                Some(Ordering::Equal) => return Err(entries[entries.len() - 1].1),
                Some(Ordering::Greater) => match entries.binary_search_by(|(k, _)| k.cmp(&key)) {
                    Ok(i) => return Err(entries[i].1),
                    Err(pos) => pos,
                },
            };
            entries.insert(pos, (key, id));
            if entries.len() <= CAP {
                return Ok(None);
            }
            let right = if pos == CAP {
                // Appended at the end: keep this leaf full, start a new one.
                let mut right = Vec::with_capacity(CAP + 1);
                right.extend(entries.pop());
                right
            } else {
                let mut right = Vec::with_capacity(CAP + 1);
                right.extend(entries.drain(CAP / 2..));
                right
            };
            let sep = right[0].0.clone();
            Ok(Some((sep, Arc::new(Node::Leaf(right)))))
        }
        Node::Inner { seps, children } => {
            let i = child_for(seps, &key);
            let Some((sep, right)) = insert_in(Arc::make_mut(&mut children[i]), key, id)? else {
                return Ok(None);
            };
            seps.insert(i, sep);
            children.insert(i + 1, right);
            if children.len() <= CAP {
                return Ok(None);
            }
            let (up, right_seps, right_children) = if i + 1 == CAP {
                // Appended at the end: the new child alone starts the right sibling.
                let up = seps.pop();
                let mut rc = Vec::with_capacity(CAP + 1);
                rc.extend(children.pop());
                (up, Vec::with_capacity(CAP), rc)
            } else {
                let mid = seps.len() / 2;
                let right_seps: Vec<K> = seps.drain(mid + 1..).collect();
                let up = seps.pop();
                let mut rc = Vec::with_capacity(CAP + 1);
                rc.extend(children.drain(mid + 1..));
                (up, right_seps, rc)
            };
            match up {
                Some(up) => Ok(Some((
                    up,
                    Arc::new(Node::Inner {
                        seps: right_seps,
                        children: right_children,
                    }),
                ))),
                // Unreachable (an overfull node has CAP separators); putting the children
                // back keeps the tree whole even so.
                None => {
                    children.extend(right_children);
                    seps.extend(right_seps);
                    Ok(None)
                }
            }
        }
    }
}

/// Removes `key` below `node`; returns its id and whether `node` is now empty.
fn remove_in<K: Ord + Clone>(node: &mut Node<K>, key: &K) -> (Option<RowId>, bool) {
    match node {
        Node::Leaf(entries) => {
            let removed = match entries.binary_search_by(|(k, _)| k.cmp(key)) {
                Ok(i) => Some(entries.remove(i).1),
                Err(_) => None,
            };
            (removed, entries.is_empty())
        }
        Node::Inner { seps, children } => {
            let i = child_for(seps, key);
            let (removed, child_empty) = remove_in(Arc::make_mut(&mut children[i]), key);
            if child_empty {
                children.remove(i);
                // Drop the separator between the removed child and a neighbour.
                if i > 0 {
                    seps.remove(i - 1);
                } else if !seps.is_empty() {
                    seps.remove(0);
                }
            }
            (removed, children.is_empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Checks the layout of the module docs below `node` (keys within `lo..hi`); returns the
    /// entries in order.
    fn check(
        node: &Node<Value>,
        lo: Option<&Value>,
        hi: Option<&Value>,
        out: &mut Vec<(Value, RowId)>,
    ) {
        let within = |k: &Value| lo.is_none_or(|lo| k >= lo) && hi.is_none_or(|hi| k < hi);
        match node {
            Node::Leaf(entries) => {
                assert!(!entries.is_empty() && entries.len() <= CAP);
                assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
                assert!(entries.iter().all(|(k, _)| within(k)));
                out.extend(entries.iter().cloned());
            }
            Node::Inner { seps, children } => {
                assert_eq!(children.len(), seps.len() + 1);
                assert!(!children.is_empty() && children.len() <= CAP);
                assert!(seps.windows(2).all(|w| w[0] < w[1]));
                for (i, child) in children.iter().enumerate() {
                    let clo = if i == 0 { lo } else { Some(&seps[i - 1]) };
                    let chi = seps.get(i).or(hi);
                    check(child, clo, chi, out);
                }
            }
        }
    }

    fn entries(index: &KeyIndex<Value>) -> Vec<(Value, RowId)> {
        let mut out = Vec::new();
        if let Some(root) = index.root.as_deref() {
            check(root, None, None, &mut out);
        }
        assert_eq!(out.len(), index.len);
        out
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(i64),
        Remove(i64),
        Append,
        Snapshot,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (-300i64..300).prop_map(Op::Insert),
            3 => (-300i64..300).prop_map(Op::Remove),
            4 => Just(Op::Append),
            1 => Just(Op::Snapshot),
        ]
    }

    proptest! {
        /// The index behaves like a `BTreeMap` and keeps its layout, with random and appended
        /// keys mixed; clones taken along the way never change.
        #[test]
        fn behaves_like_a_btreemap_and_clones_are_frozen(ops in proptest::collection::vec(op(), 0..600)) {
            let mut index: KeyIndex<Value> = KeyIndex::default();
            let mut model: BTreeMap<Value, RowId> = BTreeMap::new();
            let mut frozen = Vec::new();
            let mut next = 1000i64;
            for (n, op) in ops.into_iter().enumerate() {
                let id = n as RowId;
                match op {
                    Op::Insert(k) => {
                        let want = model.get(&Value::Int(k)).copied();
                        let got = index.insert(Value::Int(k), id).err();
                        if want.is_none() { model.insert(Value::Int(k), id); }
                        prop_assert_eq!(got, want);
                    }
                    Op::Append => {
                        next += 1;
                        prop_assert!(index.insert(Value::Int(next), id).is_ok());
                        model.insert(Value::Int(next), id);
                    }
                    Op::Remove(k) => prop_assert_eq!(index.remove(&Value::Int(k)), model.remove(&Value::Int(k))),
                    Op::Snapshot => frozen.push((index.clone(), model.clone())),
                }
                prop_assert_eq!(index.root.is_none(), model.is_empty());
            }
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
            prop_assert_eq!(entries(&index), want);
            for (k, v) in &model {
                prop_assert_eq!(index.get(k), Some(*v));
            }
            for (old, old_model) in frozen {
                let want: Vec<_> = old_model.into_iter().collect();
                prop_assert_eq!(entries(&old), want);
            }
        }
    }

    #[test]
    fn appended_keys_fill_their_leaves() {
        let mut index: KeyIndex<Value> = KeyIndex::default();
        for k in 0..(CAP * CAP * 2) as i64 {
            index.insert(Value::Int(k), k as RowId).expect("new key");
        }
        let mut leaves = Vec::new();
        fn walk(node: &Node<Value>, out: &mut Vec<usize>) {
            match node {
                Node::Leaf(e) => out.push(e.len()),
                Node::Inner { children, .. } => children.iter().for_each(|c| walk(c, out)),
            }
        }
        walk(index.root.as_deref().expect("root"), &mut leaves);
        assert_eq!(leaves.len(), CAP * 2);
        assert!(leaves.iter().all(|n| *n == CAP));
        assert_eq!(entries(&index).len(), CAP * CAP * 2);
    }

    #[test]
    fn removing_every_key_empties_the_tree() {
        let mut index: KeyIndex<Value> = KeyIndex::default();
        for k in 0..5_000i64 {
            index
                .insert(Value::Int((k * 7919) % 5_000), k as RowId)
                .expect("new key");
        }
        for k in 0..5_000i64 {
            assert!(index.remove(&Value::Int(k)).is_some());
            if k % 500 == 0 {
                entries(&index);
            }
        }
        assert!(index.root.is_none());
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn primary_index_keeps_every_kind_of_key_apart() {
        let mut index = PrimaryIndex::default();
        let keys = [
            Value::Int(1),
            Value::Float(1.0),
            Value::from("1"),
            Value::Bool(true),
            Value::Int(-7),
        ];
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(index.insert(key, id as RowId), Ok(()));
        }
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(index.get(key), Some(id as RowId));
            assert_eq!(index.insert(key, 99), Err(id as RowId));
        }
        assert_eq!(index.ints.len(), 2);
        assert_eq!(index.others.len(), 3);
        assert_eq!(index.remove(&Value::Int(1)), Some(0));
        assert_eq!(index.get(&Value::Int(1)), None);
        assert_eq!(index.get(&Value::Float(1.0)), Some(1));
        assert_eq!(index.remove(&Value::Int(1)), None);
    }
}
