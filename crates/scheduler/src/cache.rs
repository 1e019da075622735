//! The scheduler's view of the cluster, fed by watches of Nodes, Pods, RuntimeClasses,
//! Namespaces, and the PersistentVolumeClaims, PersistentVolumes and StorageClasses that
//! volume binding reads.
//!
//! Pods count on a node from the moment the scheduler decides to bind them ("assumed"), not
//! only once the watch shows `spec.nodeName`: otherwise the next pod, scheduled before that
//! event arrives, would see the node emptier than it is. The watch later confirms the
//! assumption; a failed binding forgets it.
//!
//! Per node the cache keeps its pods and the sums of their requests, updated as pods come and
//! go, so a scheduling cycle reads them without adding up every pod again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::storage::v1::StorageClass;

use crate::resources::{Resources, pod_requests};

/// `namespace/name` of a pod.
pub type PodKey = String;

/// The key of a pod.
pub fn pod_key(pod: &Pod) -> PodKey {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Whether the pod has finished for good (its resources are free again).
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The node a pod is bound to, if any.
pub fn bound_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// A pod counted on a node.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// What it requests (for fitting).
    pub requests: Resources,
    /// What it requests with the scoring defaults (for scoring).
    pub non_zero_requests: Resources,
    /// Bound by us, not yet seen bound by the watch.
    pub assumed: bool,
}

impl PodInfo {
    fn new(pod: Arc<Pod>, assumed: bool) -> Self {
        PodInfo {
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            pod,
            assumed,
        }
    }
}

/// One node and what runs on it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// `None` while pods name a node the watch has not shown (or that was deleted).
    pub node: Option<Arc<Node>>,
    pub pods: BTreeMap<PodKey, PodInfo>,
    /// Sum of the pods' requests.
    pub requested: Resources,
    /// Sum of the pods' requests with the scoring defaults.
    pub non_zero_requested: Resources,
}

impl NodeInfo {
    fn add(&mut self, key: PodKey, info: PodInfo) {
        self.remove(&key);
        self.requested.add(&info.requests);
        self.non_zero_requested.add(&info.non_zero_requests);
        self.pods.insert(key, info);
    }

    fn remove(&mut self, key: &str) -> Option<PodInfo> {
        let info = self.pods.remove(key)?;
        self.requested.sub(&info.requests);
        self.non_zero_requested.sub(&info.non_zero_requests);
        Some(info)
    }

    /// The node's pods.
    pub fn pod_objects(&self) -> impl Iterator<Item = &Pod> {
        self.pods.values().map(|p| p.pod.as_ref())
    }
}

/// What a change to the cache may mean for pods waiting as unschedulable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing a filter reads changed.
    None,
    /// Something changed that may let an unschedulable pod fit now.
    MayHelp,
}

/// The cluster as the scheduler sees it.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeInfo>,
    /// Which node each counted pod is on.
    pod_nodes: HashMap<PodKey, String>,
    runtime_classes: HashMap<String, Arc<RuntimeClass>>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    pub claims: Objects<PersistentVolumeClaim>,
    pub volumes: Objects<PersistentVolume>,
    pub storage_classes: Objects<StorageClass>,
}

/// Objects of one kind by `namespace/name` (`name` for cluster-scoped ones). Any change may
/// let a pod waiting for its volumes fit.
#[derive(Debug)]
pub struct Objects<K> {
    by_key: HashMap<String, Arc<K>>,
}

impl<K> Default for Objects<K> {
    fn default() -> Self {
        Objects {
            by_key: HashMap::new(),
        }
    }
}

fn object_key<K: kube::Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or("");
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

impl<K: kube::Resource> Objects<K> {
    /// The object `name` of `namespace` (`""` for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<&K> {
        let key = if namespace.is_empty() {
            name.to_string()
        } else {
            format!("{namespace}/{name}")
        };
        self.by_key.get(&key).map(Arc::as_ref)
    }

    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.by_key.values().map(Arc::as_ref)
    }

    pub fn upsert(&mut self, obj: K) -> Change {
        self.by_key.insert(object_key(&obj), Arc::new(obj));
        Change::MayHelp
    }

    pub fn remove(&mut self, obj: &K) {
        self.by_key.remove(&object_key(obj));
    }

    pub fn replace(&mut self, all: Vec<K>) -> Change {
        self.by_key = all
            .into_iter()
            .map(|o| (object_key(&o), Arc::new(o)))
            .collect();
        Change::MayHelp
    }
}

impl Cache {
    pub fn new() -> Self {
        Cache::default()
    }

    /// Nodes the watch has shown, with their pods.
    pub fn nodes(&self) -> impl Iterator<Item = (&Node, &NodeInfo)> {
        self.nodes
            .values()
            .filter_map(|info| info.node.as_deref().map(|n| (n, info)))
    }

    /// How many nodes exist.
    pub fn node_count(&self) -> usize {
        self.nodes().count()
    }

    /// One node's info.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// A RuntimeClass by name.
    pub fn runtime_class(&self, name: &str) -> Option<&RuntimeClass> {
        self.runtime_classes.get(name).map(Arc::as_ref)
    }

    /// Labels of every namespace, for pod affinity terms with a `namespaceSelector`.
    pub fn namespace_labels(&self) -> &HashMap<String, BTreeMap<String, String>> {
        &self.namespaces
    }

    /// Adds or updates a node.
    pub fn upsert_node(&mut self, node: Node) -> Change {
        let Some(name) = node.metadata.name.clone() else {
            return Change::None;
        };
        let info = self.nodes.entry(name).or_default();
        let change = match info.node.as_deref() {
            Some(old) if !node_changed_for_scheduling(old, &node) => Change::None,
            _ => Change::MayHelp,
        };
        info.node = Some(Arc::new(node));
        change
    }

    /// Removes a node; its pods stay counted until their own deletion arrives.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            info.node = None;
            if info.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
    }

    /// Replaces every node after a re-list.
    pub fn replace_nodes(&mut self, nodes: Vec<Node>) -> Change {
        let names: std::collections::HashSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(name, info)| info.node.is_some() && !names.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.remove_node(&name);
        }
        let mut change = Change::None;
        for node in nodes {
            if self.upsert_node(node) == Change::MayHelp {
                change = Change::MayHelp;
            }
        }
        change
    }

    /// Whether the pod is counted on a node because we bound it and the watch has not yet
    /// confirmed it.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.counted(key).is_some_and(|p| p.assumed)
    }

    fn counted(&self, key: &str) -> Option<&PodInfo> {
        let node = self.pod_nodes.get(key)?;
        self.nodes.get(node)?.pods.get(key)
    }

    /// Counts `pod` on `node` ahead of the binding.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let mut bound = pod.clone();
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some(node.to_string());
        }
        self.count(pod_key(pod), node, Arc::new(bound), true);
    }

    /// Undoes [`Cache::assume`] after a failed binding; a pod the watch already showed bound
    /// stays.
    pub fn forget(&mut self, key: &str) {
        if self.is_assumed(key) {
            self.uncount(key);
        }
    }

    fn count(&mut self, key: PodKey, node: &str, pod: Arc<Pod>, assumed: bool) {
        if let Some(old) = self.pod_nodes.get(&key).cloned()
            && old != node
        {
            self.uncount(&key);
        }
        self.nodes
            .entry(node.to_string())
            .or_default()
            .add(key.clone(), PodInfo::new(pod, assumed));
        self.pod_nodes.insert(key, node.to_string());
    }

    fn uncount(&mut self, key: &str) -> Option<PodInfo> {
        let node = self.pod_nodes.remove(key)?;
        let info = self.nodes.get_mut(&node)?;
        let removed = info.remove(key);
        if info.node.is_none() && info.pods.is_empty() {
            self.nodes.remove(&node);
        }
        removed
    }

    /// Applies a pod from the watch. Bound, running pods are counted on their node; a pod
    /// that finished or is not bound is not (unless we assumed it: the watch may still be
    /// catching up with our binding).
    pub fn upsert_pod(&mut self, pod: Pod) -> Change {
        let key = pod_key(&pod);
        let previous = self.counted(&key).cloned();
        match bound_node(&pod).map(str::to_string) {
            Some(node) if !is_terminal(&pod) => {
                let change = match &previous {
                    // Other pods' affinity rules read labels.
                    Some(p) if !p.assumed && p.pod.metadata.labels != pod.metadata.labels => {
                        Change::MayHelp
                    }
                    _ => Change::None,
                };
                self.count(key, &node, Arc::new(pod), false);
                change
            }
            Some(_) => {
                // Finished: its resources and ports are free.
                if self.uncount(&key).is_some() {
                    Change::MayHelp
                } else {
                    Change::None
                }
            }
            None => {
                if let Some(p) = previous
                    && !p.assumed
                {
                    self.uncount(&key);
                    return Change::MayHelp;
                }
                Change::None
            }
        }
    }

    /// Removes a deleted pod.
    pub fn remove_pod(&mut self, pod: &Pod) -> Change {
        let key = pod_key(pod);
        match self.counted(&key) {
            // A pod deleted and re-created under the same name is a different pod.
            Some(p) if p.pod.metadata.uid == pod.metadata.uid || pod.metadata.uid.is_none() => {
                self.uncount(&key);
                Change::MayHelp
            }
            _ => Change::None,
        }
    }

    /// Replaces every pod after a re-list; assumed pods missing from it are kept, since their
    /// binding may be in flight.
    pub fn replace_pods(&mut self, pods: &[Pod]) -> Change {
        let listed: std::collections::HashSet<PodKey> = pods.iter().map(pod_key).collect();
        let gone: Vec<PodKey> = self
            .pod_nodes
            .keys()
            .filter(|k| !listed.contains(*k) && !self.is_assumed(k))
            .cloned()
            .collect();
        let mut change = if gone.is_empty() {
            Change::None
        } else {
            Change::MayHelp
        };
        for key in gone {
            self.uncount(&key);
        }
        for pod in pods {
            if self.upsert_pod(pod.clone()) == Change::MayHelp {
                change = Change::MayHelp;
            }
        }
        change
    }

    /// Adds or updates a RuntimeClass.
    pub fn upsert_runtime_class(&mut self, rc: RuntimeClass) -> Change {
        let Some(name) = rc.metadata.name.clone() else {
            return Change::None;
        };
        self.runtime_classes.insert(name, Arc::new(rc));
        Change::MayHelp
    }

    /// Removes a RuntimeClass.
    pub fn remove_runtime_class(&mut self, name: &str) {
        self.runtime_classes.remove(name);
    }

    /// Replaces every RuntimeClass after a re-list.
    pub fn replace_runtime_classes(&mut self, rcs: Vec<RuntimeClass>) -> Change {
        self.runtime_classes = rcs
            .into_iter()
            .filter_map(|rc| Some((rc.metadata.name.clone()?, Arc::new(rc))))
            .collect();
        Change::MayHelp
    }

    /// Records a namespace's labels.
    pub fn upsert_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) -> Change {
        match self.namespaces.insert(name.to_string(), labels.clone()) {
            Some(old) if old == labels => Change::None,
            _ => Change::MayHelp,
        }
    }

    /// Forgets a namespace.
    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    /// Replaces every namespace after a re-list.
    pub fn replace_namespaces(&mut self, all: Vec<(String, BTreeMap<String, String>)>) -> Change {
        let next: HashMap<_, _> = all.into_iter().collect();
        let change = if next == self.namespaces {
            Change::None
        } else {
            Change::MayHelp
        };
        self.namespaces = next;
        change
    }
}

/// Whether a node update touches anything a filter reads. Kubelets rewrite their Node every
/// few seconds for heartbeats; those must not wake every unschedulable pod.
fn node_changed_for_scheduling(old: &Node, new: &Node) -> bool {
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone())
    };
    let status = |n: &Node| {
        n.status
            .as_ref()
            .map(|s| (s.allocatable.clone(), s.runtime_handlers.clone()))
    };
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || ready(old) != ready(new)
        || status(old) != status(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::CPU;
    use serde_json::json;

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name},
            "status": {"allocatable": {"cpu": "4"}, "conditions": [{"type": "Ready", "status": "True"}]}}))
        .expect("node")
    }

    fn pod(name: &str, node: Option<&str>, cpu: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
        .expect("pod")
    }

    #[test]
    fn assumed_pods_count_until_forgotten_or_confirmed() {
        let mut c = Cache::new();
        c.upsert_node(node("n1"));
        let p = pod("a", None, "1");
        c.assume(&p, "n1");
        assert!(c.is_assumed("default/a"));
        assert_eq!(c.node("n1").map(|n| n.requested.get(CPU)), Some(1000));
        // A stale unbound event does not undo the assumption.
        c.upsert_pod(p.clone());
        assert!(c.is_assumed("default/a"));
        c.forget("default/a");
        assert_eq!(c.node("n1").map(|n| n.requested.get(CPU)), Some(0));

        c.assume(&p, "n1");
        c.upsert_pod(pod("a", Some("n1"), "1"));
        assert!(!c.is_assumed("default/a"));
        c.forget("default/a");
        assert_eq!(c.node("n1").map(|n| n.requested.get(CPU)), Some(1000));
    }

    #[test]
    fn terminal_and_deleted_pods_free_their_node() {
        let mut c = Cache::new();
        c.upsert_node(node("n1"));
        c.upsert_pod(pod("a", Some("n1"), "1"));
        c.upsert_pod(pod("b", Some("n1"), "2"));
        assert_eq!(c.node("n1").map(|n| n.requested.get(CPU)), Some(3000));
        let mut done = pod("a", Some("n1"), "1");
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).expect("status"));
        assert_eq!(c.upsert_pod(done), Change::MayHelp);
        assert_eq!(c.remove_pod(&pod("b", Some("n1"), "2")), Change::MayHelp);
        assert_eq!(c.node("n1").map(|n| n.pods.len()), Some(0));
    }

    #[test]
    fn heartbeats_are_not_changes() {
        let mut c = Cache::new();
        assert_eq!(c.upsert_node(node("n1")), Change::MayHelp);
        let mut n = node("n1");
        n.metadata.resource_version = Some("9".into());
        assert_eq!(c.upsert_node(n.clone()), Change::None);
        n.spec = Some(serde_json::from_value(json!({"unschedulable": true})).expect("spec"));
        assert_eq!(c.upsert_node(n), Change::MayHelp);
    }

    #[test]
    fn relist_drops_missing_pods_but_keeps_assumed_ones() {
        let mut c = Cache::new();
        c.upsert_node(node("n1"));
        c.upsert_pod(pod("a", Some("n1"), "1"));
        c.assume(&pod("b", None, "1"), "n1");
        c.replace_pods(&[]);
        assert_eq!(c.node("n1").map(|n| n.pods.len()), Some(1));
        assert!(c.is_assumed("default/b"));
    }
}
