//! The garbage collector's dependency graph and the decisions made from it, with no IO: which
//! objects own which (by uid, from `metadata.ownerReferences`), what must be looked at again
//! when an object changes, and what to do with an object given the state of its owners.
//! Kubernetes' `garbagecollector` package draws the same graph (`graph_builder.go`) and makes
//! the same decisions (`attemptToDeleteItem`, `processDeletingDependentsItem`).

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Set on an owner deleted with `propagationPolicy: Foreground`: its blocking dependents go
/// first.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Set on an owner deleted with `propagationPolicy: Orphan`: its dependents are let go.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// One object as the graph keeps it: identity, owners and deletion state.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl Node {
    /// The node of an object; `None` without a uid (nothing can own or be owned by it).
    pub fn new(api_version: &str, kind: &str, meta: &ObjectMeta) -> Option<Node> {
        let uid = meta.uid.clone().filter(|u| !u.is_empty())?;
        Some(Node {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
            uid,
            owners: meta.owner_references.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        })
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waiting for its blocking dependents.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND_FINALIZER)
    }

    /// Being deleted with its dependents orphaned.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN_FINALIZER)
    }

    fn owner_ref(&self, owner_uid: &str) -> Option<&OwnerReference> {
        self.owners.iter().find(|r| r.uid == owner_uid)
    }

    /// Whether this object's reference to `owner_uid` blocks the owner's foreground deletion.
    pub fn blocks(&self, owner_uid: &str) -> bool {
        self.owner_ref(owner_uid)
            .is_some_and(|r| r.block_owner_deletion == Some(true))
    }

    /// Whether the collector has work to do on this object itself.
    fn interesting(&self) -> bool {
        !self.owners.is_empty() || self.deleting_dependents() || self.orphaning()
    }
}

/// Objects by uid, and who depends on whom. Dependents are indexed by their owners' uids even
/// when the owner itself was never seen (Kubernetes' "virtual" nodes): the owner may be of a
/// kind nobody watches, or gone already.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The observed objects that name `uid` as an owner.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d))
            .collect()
    }

    pub fn has_dependents(&self, uid: &str) -> bool {
        !self.dependents(uid).is_empty()
    }

    /// Dependents whose reference blocks `uid`'s foreground deletion.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents(uid)
            .into_iter()
            .filter(|d| d.blocks(uid))
            .collect()
    }

    fn link(&mut self, node: &Node) {
        for r in &node.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
    }

    fn unlink(&mut self, node: &Node) {
        for r in &node.owners {
            if let Some(deps) = self.dependents.get_mut(&r.uid) {
                deps.remove(&node.uid);
                if deps.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
    }

    /// Adds or updates an object; returns the uids to look at because of the change.
    pub fn upsert(&mut self, node: Node) -> Vec<String> {
        let mut todo = BTreeSet::new();
        let old = self.nodes.remove(&node.uid);
        if let Some(old) = &old {
            self.unlink(old);
        }
        self.link(&node);
        if node.interesting() {
            todo.insert(node.uid.clone());
        }
        let became_deleting =
            old.as_ref().is_none_or(|o| !o.deleting_dependents()) && node.deleting_dependents();
        if became_deleting {
            // Its dependents now see an owner waiting for them.
            todo.extend(
                self.dependents
                    .get(&node.uid)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        if let Some(old) = &old
            && old.owners != node.owners
        {
            // An owner waiting for this object may no longer have to, and one it was just
            // added to may have to look again.
            for r in old.owners.iter().chain(&node.owners) {
                if self
                    .nodes
                    .get(&r.uid)
                    .is_some_and(Node::deleting_dependents)
                {
                    todo.insert(r.uid.clone());
                }
            }
        }
        self.nodes.insert(node.uid.clone(), node);
        todo.into_iter().collect()
    }

    /// Removes an object; returns the uids to look at because it is gone: its dependents
    /// (their owner may be dangling now) and its owners (one may have been waiting for it).
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let mut todo = BTreeSet::new();
        if let Some(node) = self.nodes.remove(uid) {
            self.unlink(&node);
            todo.extend(
                node.owners
                    .iter()
                    .filter(|r| self.nodes.contains_key(&r.uid))
                    .map(|r| r.uid.clone()),
            );
        }
        todo.extend(self.dependents.get(uid).into_iter().flatten().cloned());
        todo.into_iter().collect()
    }
}

/// What became of one owner a dependent names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not being deleted in the foreground.
    Solid,
    /// Gone, or replaced by another object under the same name.
    Dangling,
    /// Being deleted in the foreground, waiting for its dependents.
    Waiting,
}

/// The deletion propagation the collector asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// What to do with a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    /// Drop the references to these owners; a solid owner keeps the object alive.
    RemoveOwnerRefs(Vec<String>),
    Delete(Propagation),
}

/// Decides about an object that is not itself being deleted, given its owners' states
/// (Kubernetes' `attemptToDeleteItem`).
pub fn decide(item: &Node, owners: &[(String, OwnerState)], has_dependents: bool) -> Decision {
    if item.deleting || owners.is_empty() {
        return Decision::Nothing;
    }
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Solid);
    let gone_or_waiting: Vec<String> = owners
        .iter()
        .filter(|(_, s)| *s != OwnerState::Solid)
        .map(|(u, _)| u.clone())
        .collect();
    let waiting = owners.iter().any(|(_, s)| *s == OwnerState::Waiting);
    if solid {
        if gone_or_waiting.is_empty() {
            return Decision::Nothing;
        }
        // A waiting owner must be let go of, or its foreground deletion never finishes.
        return Decision::RemoveOwnerRefs(gone_or_waiting);
    }
    if waiting && has_dependents {
        // Foreground deletion carries on down the tree.
        return Decision::Delete(Propagation::Foreground);
    }
    let policy = if item.has_finalizer(ORPHAN_FINALIZER) {
        Propagation::Orphan
    } else if item.has_finalizer(FOREGROUND_FINALIZER) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Decision::Delete(policy)
}

/// What to do with an owner that is being deleted with a collector finalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerPlan {
    /// Remove the reference to the owner from these dependents, then the `orphan` finalizer.
    Orphan(Vec<String>),
    /// Blocking dependents remain: look at these (not yet deleting) dependents.
    WaitFor(Vec<String>),
    /// Nothing blocks any more: remove the finalizer.
    RemoveFinalizer(&'static str),
    Nothing,
}

/// Plans for an owner being deleted (Kubernetes' `orphanDependents` and
/// `processDeletingDependentsItem`).
pub fn plan_owner(graph: &Graph, owner: &Node) -> OwnerPlan {
    if owner.orphaning() {
        return OwnerPlan::Orphan(
            graph
                .dependents(&owner.uid)
                .iter()
                .map(|d| d.uid.clone())
                .collect(),
        );
    }
    if owner.deleting_dependents() {
        if graph.blocking_dependents(&owner.uid).is_empty() {
            return OwnerPlan::RemoveFinalizer(FOREGROUND_FINALIZER);
        }
        // All dependents, blocking or not, go: the non-blocking ones just do not hold up the
        // owner.
        return OwnerPlan::WaitFor(
            graph
                .dependents(&owner.uid)
                .iter()
                .filter(|d| !d.deleting)
                .map(|d| d.uid.clone())
                .collect(),
        );
    }
    OwnerPlan::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("name-{uid}"),
            uid: uid.into(),
            controller: None,
            block_owner_deletion: Some(block),
        }
    }

    fn node(uid: &str, owners: Vec<OwnerReference>) -> Node {
        Node {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: format!("name-{uid}"),
            uid: uid.into(),
            owners,
            finalizers: Vec::new(),
            deleting: false,
        }
    }

    fn deleting(mut n: Node, finalizer: &str) -> Node {
        n.deleting = true;
        n.finalizers.push(finalizer.into());
        n
    }

    #[test]
    fn dependents_follow_owner_references() {
        let mut g = Graph::new();
        assert_eq!(g.upsert(node("a", vec![])), Vec::<String>::new());
        assert_eq!(g.upsert(node("b", vec![owner_ref("a", true)])), ["b"]);
        assert_eq!(g.upsert(node("c", vec![owner_ref("a", false)])), ["c"]);
        // An owner never seen still indexes its dependents.
        g.upsert(node("d", vec![owner_ref("ghost", false)]));
        let deps: Vec<&str> = g.dependents("a").iter().map(|n| n.uid.as_str()).collect();
        assert_eq!(deps, ["b", "c"]);
        assert_eq!(g.dependents("ghost").len(), 1);
        let blocking: Vec<&str> = g
            .blocking_dependents("a")
            .iter()
            .map(|n| n.uid.as_str())
            .collect();
        assert_eq!(blocking, ["b"]);
        // Dropping the reference unlinks it.
        g.upsert(node("c", vec![]));
        assert_eq!(g.dependents("a").len(), 1);
        assert_eq!(g.len(), 4);
    }

    #[test]
    fn removal_wakes_dependents_and_owners() {
        let mut g = Graph::new();
        g.upsert(node("a", vec![]));
        g.upsert(node("b", vec![owner_ref("a", true)]));
        g.upsert(node("c", vec![owner_ref("b", true)]));
        // b's dependents (c) may be dangling; its owner (a) may have been waiting.
        assert_eq!(g.remove("b"), ["a", "c"]);
        assert!(g.get("b").is_none());
        assert!(g.dependents("a").is_empty());
        // Removing something unknown still wakes what referenced it.
        assert_eq!(g.remove("zzz"), Vec::<String>::new());
    }

    #[test]
    fn foreground_deletion_wakes_dependents() {
        let mut g = Graph::new();
        g.upsert(node("a", vec![]));
        g.upsert(node("b", vec![owner_ref("a", true)]));
        g.upsert(node("c", vec![owner_ref("a", false)]));
        let todo = g.upsert(deleting(node("a", vec![]), FOREGROUND_FINALIZER));
        assert_eq!(todo, ["a", "b", "c"]);
        // A dependent letting go of a waiting owner wakes it.
        assert_eq!(g.upsert(node("b", vec![])), ["a"]);
    }

    #[test]
    fn decisions_for_dependents() {
        let item = node("x", vec![owner_ref("a", true), owner_ref("b", true)]);
        let st = |a: OwnerState, b: OwnerState| vec![("a".to_string(), a), ("b".to_string(), b)];
        use OwnerState::*;
        assert_eq!(decide(&item, &st(Solid, Solid), false), Decision::Nothing);
        assert_eq!(
            decide(&item, &st(Solid, Dangling), false),
            Decision::RemoveOwnerRefs(vec!["b".into()])
        );
        assert_eq!(
            decide(&item, &st(Waiting, Solid), true),
            Decision::RemoveOwnerRefs(vec!["a".into()])
        );
        assert_eq!(
            decide(&item, &st(Dangling, Dangling), true),
            Decision::Delete(Propagation::Background)
        );
        assert_eq!(
            decide(&item, &st(Waiting, Dangling), true),
            Decision::Delete(Propagation::Foreground)
        );
        assert_eq!(
            decide(&item, &st(Waiting, Dangling), false),
            Decision::Delete(Propagation::Background)
        );
        let mut orphaner = item.clone();
        orphaner.finalizers.push(ORPHAN_FINALIZER.into());
        assert_eq!(
            decide(&orphaner, &st(Dangling, Dangling), false),
            Decision::Delete(Propagation::Orphan)
        );
        // Objects already being deleted and objects without owners are left alone.
        assert_eq!(
            decide(&deleting(item.clone(), "x"), &st(Dangling, Dangling), false),
            Decision::Nothing
        );
        assert_eq!(decide(&node("y", vec![]), &[], false), Decision::Nothing);
    }

    #[test]
    fn plans_for_owners() {
        let mut g = Graph::new();
        g.upsert(node("b", vec![owner_ref("a", true)]));
        g.upsert(node("c", vec![owner_ref("a", false)]));
        let orphaning = deleting(node("a", vec![]), ORPHAN_FINALIZER);
        g.upsert(orphaning.clone());
        assert_eq!(
            plan_owner(&g, &orphaning),
            OwnerPlan::Orphan(vec!["b".into(), "c".into()])
        );
        let fg = deleting(node("a", vec![]), FOREGROUND_FINALIZER);
        g.upsert(fg.clone());
        assert_eq!(
            plan_owner(&g, &fg),
            OwnerPlan::WaitFor(vec!["b".into(), "c".into()])
        );
        // b is on its way: only c still needs a push, and b still blocks.
        g.upsert(deleting(node("b", vec![owner_ref("a", true)]), "other"));
        assert_eq!(plan_owner(&g, &fg), OwnerPlan::WaitFor(vec!["c".into()]));
        g.remove("b");
        // c does not block: the owner can go now.
        assert_eq!(
            plan_owner(&g, &fg),
            OwnerPlan::RemoveFinalizer(FOREGROUND_FINALIZER)
        );
        assert_eq!(plan_owner(&g, &node("q", vec![])), OwnerPlan::Nothing);
    }
}
