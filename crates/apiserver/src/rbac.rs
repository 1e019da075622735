//! Authorization: Kubernetes RBAC over the Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding objects in the store.
//!
//! Every authenticated request is turned into attributes (verb, API group, resource,
//! subresource, namespace, name; or a non-resource path) and allowed when some binding that
//! names the user, one of its groups or its ServiceAccount grants a matching rule. Members of
//! `system:masters` are allowed everything without a lookup, as in Kubernetes. The rules are
//! read from the store on each decision, so a new binding applies to the very next request.
//!
//! Creating or changing a role or a binding is an escalation check as well: the user must
//! already hold every permission the role grants (or the `escalate` / `bind` verb on it).
//!
//! # Layout
//! - [`RequestAttributes`] and [`attributes`]: what a request asks for.
//! - [`Authorizer`]: the decision, and [`Authorizer::check_escalation`] for RBAC writes.
//! - Rule matching is in `rule_allows`, binding subjects in `subject_matches`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{Method, Uri};
use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use serde::de::DeserializeOwned;
use wasmkube_api::registry::{self, Subresource};
use wasmkube_store::Store;

use crate::auth::UserInfo;
use crate::error::{ApiError, ApiResult};
use crate::request::{self, Query};

/// The group whose members may do anything.
pub const MASTERS: &str = "system:masters";

/// What a request asks to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAttributes {
    pub verb: String,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource {
        api_group: String,
        resource: String,
        subresource: Option<String>,
        namespace: Option<String>,
        name: Option<String>,
    },
    /// Anything that is not a resource path (`/version`, `/apis`, `/openapi/v2` ...).
    NonResource { path: String },
}

/// The attributes of a request, as Kubernetes derives them: `get`/`list`/`watch` for reads,
/// `create`/`update`/`patch`/`delete`/`deletecollection` for writes; exec, attach and
/// port-forward are `create` on their subresource whatever the HTTP method.
pub fn attributes(method: &Method, uri: &Uri) -> RequestAttributes {
    let path = uri.path();
    let Ok(rp) = request::parse_path(path) else {
        let verb = match *method {
            Method::GET | Method::HEAD => "get",
            Method::POST => "post",
            Method::PUT => "put",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "get",
        };
        return RequestAttributes {
            verb: verb.into(),
            target: Target::NonResource {
                path: path.to_string(),
            },
        };
    };
    let query = Query::parse(uri.query());
    let streaming = matches!(
        rp.subresource,
        Some(Subresource::Exec | Subresource::Attach | Subresource::PortForward)
    );
    let verb = match (method, rp.name.is_some()) {
        _ if streaming => "create",
        (&Method::GET | &Method::HEAD, _) if rp.watch_prefix || query.flag("watch") => "watch",
        (&Method::GET | &Method::HEAD, true) => "get",
        (&Method::GET | &Method::HEAD, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    };
    RequestAttributes {
        verb: verb.into(),
        target: Target::Resource {
            api_group: rp.info.group.to_string(),
            resource: rp.info.resource.to_string(),
            subresource: rp.subresource.map(|s| s.name().to_string()),
            namespace: rp.namespace.clone(),
            name: rp.name.clone(),
        },
    }
}

/// The RBAC authorizer.
pub struct Authorizer {
    store: Arc<dyn Store>,
}

impl Authorizer {
    pub fn new(store: Arc<dyn Store>) -> Authorizer {
        Authorizer { store }
    }

    /// Allows the request or answers 403 with Kubernetes' message.
    pub async fn authorize(&self, user: &UserInfo, attrs: &RequestAttributes) -> ApiResult<()> {
        if self.allows(user, attrs).await? {
            Ok(())
        } else {
            Err(forbidden(user, attrs))
        }
    }

    /// Whether some binding grants `attrs` to `user`.
    pub async fn allows(&self, user: &UserInfo, attrs: &RequestAttributes) -> ApiResult<bool> {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Ok(true);
        }
        for rules in self.rules_for(user, attrs.namespace()).await? {
            if rules.iter().any(|r| rule_allows(r, attrs)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The rule sets bound to `user`: from every ClusterRoleBinding, and from the
    /// RoleBindings of `namespace` when the request is in one.
    async fn rules_for(
        &self,
        user: &UserInfo,
        namespace: Option<&str>,
    ) -> ApiResult<Vec<Vec<PolicyRule>>> {
        let mut out = Vec::new();
        let crbs: Vec<ClusterRoleBinding> = self.list("clusterrolebindings", None).await?;
        for b in crbs {
            if bound(&b.subjects, user, None) {
                out.push(self.role_rules(&b.role_ref, None).await?);
            }
        }
        if let Some(ns) = namespace {
            let rbs: Vec<RoleBinding> = self.list("rolebindings", Some(ns)).await?;
            for b in rbs {
                if bound(&b.subjects, user, Some(ns)) {
                    out.push(self.role_rules(&b.role_ref, Some(ns)).await?);
                }
            }
        }
        Ok(out)
    }

    /// The rules of the role a binding refers to; a missing role grants nothing.
    async fn role_rules(
        &self,
        role: &RoleRef,
        namespace: Option<&str>,
    ) -> ApiResult<Vec<PolicyRule>> {
        match (role.kind.as_str(), namespace) {
            ("Role", Some(ns)) => Ok(self
                .get::<Role>("roles", Some(ns), &role.name)
                .await?
                .and_then(|r| r.rules)
                .unwrap_or_default()),
            ("ClusterRole", _) => {
                let Some(cr) = self
                    .get::<ClusterRole>("clusterroles", None, &role.name)
                    .await?
                else {
                    return Ok(Vec::new());
                };
                match &cr.aggregation_rule {
                    Some(agg) => self.aggregated(agg).await,
                    None => Ok(cr.rules.unwrap_or_default()),
                }
            }
            _ => Ok(Vec::new()),
        }
    }

    /// An aggregated ClusterRole's rules: those of every ClusterRole its selectors match.
    async fn aggregated(&self, agg: &AggregationRule) -> ApiResult<Vec<PolicyRule>> {
        let all: Vec<ClusterRole> = self.list("clusterroles", None).await?;
        let selectors = agg.cluster_role_selectors.clone().unwrap_or_default();
        let mut rules = Vec::new();
        for cr in all {
            if cr.aggregation_rule.is_some() {
                continue;
            }
            let labels: BTreeMap<String, String> = cr.metadata.labels.clone().unwrap_or_default();
            if selectors.iter().any(|s| selector_matches(s, &labels)) {
                rules.extend(cr.rules.unwrap_or_default());
            }
        }
        Ok(rules)
    }

    /// Refuses a write of a role (or binding) that would grant `user` more than it holds.
    /// `obj` is the object being written (JSON), `namespace` the request's.
    pub async fn check_escalation(
        &self,
        user: &UserInfo,
        resource: &str,
        namespace: Option<&str>,
        obj: &serde_json::Value,
    ) -> ApiResult<()> {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        let name = obj
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        let (rules, special) = match resource {
            "roles" | "clusterroles" => {
                let rules: Vec<PolicyRule> = obj
                    .get("rules")
                    .cloned()
                    .and_then(|r| serde_json::from_value(r).ok())
                    .unwrap_or_default();
                (rules, ("escalate", resource.to_string(), name.to_string()))
            }
            "rolebindings" | "clusterrolebindings" => {
                let Some(role_ref) = obj
                    .get("roleRef")
                    .cloned()
                    .and_then(|r| serde_json::from_value::<RoleRef>(r).ok())
                else {
                    // Validation names the missing field.
                    return Ok(());
                };
                let role_resource = if role_ref.kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                };
                let rules = self.role_rules(&role_ref, namespace).await?;
                (
                    rules,
                    ("bind", role_resource.to_string(), role_ref.name.clone()),
                )
            }
            _ => return Ok(()),
        };
        // The `escalate` / `bind` verb on the role itself lets a user past the check.
        let (verb, role_resource, role_name) = special;
        let privileged = RequestAttributes {
            verb: verb.into(),
            target: Target::Resource {
                api_group: "rbac.authorization.k8s.io".into(),
                resource: role_resource,
                subresource: None,
                namespace: namespace.map(str::to_string),
                name: Some(role_name),
            },
        };
        if self.allows(user, &privileged).await? {
            return Ok(());
        }
        for rule in &rules {
            for wanted in expand(rule, namespace) {
                if !self.allows(user, &wanted).await? {
                    return Err(ApiError::forbidden(format!(
                        "{resource}.rbac.authorization.k8s.io \"{name}\" is forbidden: user \"{}\" \
                         (groups={:?}) is attempting to grant RBAC permissions not currently held: \
                         {}",
                        user.username,
                        user.groups,
                        describe(&wanted)
                    )));
                }
            }
        }
        Ok(())
    }

    async fn list<T: DeserializeOwned>(
        &self,
        resource: &str,
        namespace: Option<&str>,
    ) -> ApiResult<Vec<T>> {
        let info = rbac_info(resource)?;
        let page = self
            .store
            .list(&info.key_prefix(namespace), None, None)
            .await
            .map_err(|e| ApiError::internal(format!("reading {resource}: {e}")))?;
        Ok(page
            .items
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect())
    }

    async fn get<T: DeserializeOwned>(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<T>> {
        let info = rbac_info(resource)?;
        let kv = self
            .store
            .get(&info.key(namespace, name))
            .await
            .map_err(|e| ApiError::internal(format!("reading {resource}: {e}")))?;
        Ok(kv.and_then(|kv| serde_json::from_slice(&kv.value).ok()))
    }
}

impl RequestAttributes {
    fn namespace(&self) -> Option<&str> {
        match &self.target {
            Target::Resource { namespace, .. } => namespace.as_deref(),
            Target::NonResource { .. } => None,
        }
    }
}

fn rbac_info(resource: &str) -> ApiResult<&'static registry::ResourceInfo> {
    registry::lookup("rbac.authorization.k8s.io", "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} is not registered")))
}

/// Whether a binding's subjects include `user`. A ServiceAccount subject without a namespace
/// means the binding's own.
fn bound(subjects: &Option<Vec<Subject>>, user: &UserInfo, binding_ns: Option<&str>) -> bool {
    subjects
        .iter()
        .flatten()
        .any(|s| subject_matches(s, user, binding_ns))
}

fn subject_matches(s: &Subject, user: &UserInfo, binding_ns: Option<&str>) -> bool {
    match s.kind.as_str() {
        "User" => s.name == user.username,
        "Group" => user.groups.contains(&s.name),
        "ServiceAccount" => {
            let ns = s.namespace.as_deref().or(binding_ns).unwrap_or_default();
            user.username == crate::tokens::service_account_username(ns, &s.name)
        }
        _ => false,
    }
}

fn has(list: &Option<Vec<String>>, want: &str) -> bool {
    list.iter().flatten().any(|v| v == "*" || v == want)
}

/// Whether `rule` grants `attrs`.
fn rule_allows(rule: &PolicyRule, attrs: &RequestAttributes) -> bool {
    if !rule.verbs.iter().any(|v| v == "*" || *v == attrs.verb) {
        return false;
    }
    match &attrs.target {
        Target::NonResource { path } => rule.non_resource_urls.iter().flatten().any(|u| {
            u == "*"
                || u == path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        }),
        Target::Resource {
            api_group,
            resource,
            subresource,
            name,
            ..
        } => {
            if !has(&rule.api_groups, api_group) {
                return false;
            }
            let resource_ok = rule.resources.iter().flatten().any(|r| match subresource {
                None => r == "*" || r == resource,
                Some(sub) => {
                    r == "*" || *r == format!("{resource}/{sub}") || *r == format!("*/{sub}")
                }
            });
            if !resource_ok {
                return false;
            }
            match rule.resource_names.as_deref() {
                None | Some([]) => true,
                Some(names) => name.as_ref().is_some_and(|n| names.iter().any(|x| x == n)),
            }
        }
    }
}

/// Every single permission a rule grants, for the escalation check (`*` stays literal: only
/// a `*` held by the user covers it).
fn expand(rule: &PolicyRule, namespace: Option<&str>) -> Vec<RequestAttributes> {
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for url in rule.non_resource_urls.iter().flatten() {
            out.push(RequestAttributes {
                verb: verb.clone(),
                target: Target::NonResource { path: url.clone() },
            });
        }
        let names: Vec<Option<String>> = match rule.resource_names.as_deref() {
            None | Some([]) => vec![None],
            Some(n) => n.iter().cloned().map(Some).collect(),
        };
        for group in rule.api_groups.iter().flatten() {
            for res in rule.resources.iter().flatten() {
                let (resource, subresource) = match res.split_once('/') {
                    Some((r, s)) => (r.to_string(), Some(s.to_string())),
                    None => (res.clone(), None),
                };
                for name in &names {
                    out.push(RequestAttributes {
                        verb: verb.clone(),
                        target: Target::Resource {
                            api_group: group.clone(),
                            resource: resource.clone(),
                            subresource: subresource.clone(),
                            namespace: namespace.map(str::to_string),
                            name: name.clone(),
                        },
                    });
                }
            }
        }
    }
    out
}

/// A label selector of an aggregation rule against a ClusterRole's labels.
fn selector_matches(
    s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let labels_ok = s
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = s.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// `{APIGroups:[""], Resources:["pods"], Verbs:["list"]}`-style, for messages.
fn describe(a: &RequestAttributes) -> String {
    match &a.target {
        Target::NonResource { path } => {
            format!("{{NonResourceURLs:[\"{path}\"], Verbs:[\"{}\"]}}", a.verb)
        }
        Target::Resource {
            api_group,
            resource,
            subresource,
            name,
            ..
        } => {
            let res = match subresource {
                Some(s) => format!("{resource}/{s}"),
                None => resource.clone(),
            };
            let names = name
                .as_ref()
                .map(|n| format!(", ResourceNames:[\"{n}\"]"))
                .unwrap_or_default();
            format!(
                "{{APIGroups:[\"{api_group}\"], Resources:[\"{res}\"]{names}, Verbs:[\"{}\"]}}",
                a.verb
            )
        }
    }
}

/// Kubernetes' 403: `pods "x" is forbidden: User "u" cannot delete resource "pods" in API
/// group "" in the namespace "default"`.
pub fn forbidden(user: &UserInfo, attrs: &RequestAttributes) -> ApiError {
    match &attrs.target {
        Target::NonResource { path } => ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot {} path \"{path}\"",
            user.username, attrs.verb
        )),
        Target::Resource {
            api_group,
            resource,
            subresource,
            namespace,
            name,
        } => {
            let qualified = if api_group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{api_group}")
            };
            let subject = match name {
                Some(n) => format!("{qualified} \"{n}\""),
                None => qualified,
            };
            let full = match subresource {
                Some(s) => format!("{resource}/{s}"),
                None => resource.clone(),
            };
            let scope = match namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            ApiError::forbidden(format!(
                "{subject} is forbidden: User \"{}\" cannot {} resource \"{full}\" in API group \"{api_group}\" {scope}",
                user.username, attrs.verb
            ))
            .with_details({
                // As Kubernetes: `name` only for a named object, `group` only when not core.
                let mut d = serde_json::json!({"kind": resource});
                if let Some(n) = name {
                    d["name"] = n.clone().into();
                }
                if !api_group.is_empty() {
                    d["group"] = api_group.clone().into();
                }
                d
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, uri: &str) -> RequestAttributes {
        attributes(&method, &uri.parse().expect("uri"))
    }

    #[test]
    fn request_attributes_follow_kubernetes() {
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods");
        assert_eq!(a.verb, "list");
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods?watch=true");
        assert_eq!(a.verb, "watch");
        let a = attrs(Method::DELETE, "/api/v1/namespaces/default/pods");
        assert_eq!(a.verb, "deletecollection");
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/default/pods/x/exec?command=ls",
        );
        assert_eq!(a.verb, "create");
        assert_eq!(
            a.target,
            Target::Resource {
                api_group: "".into(),
                resource: "pods".into(),
                subresource: Some("exec".into()),
                namespace: Some("default".into()),
                name: Some("x".into()),
            }
        );
        let a = attrs(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!(a.verb, "list");
        assert!(
            matches!(&a.target, Target::Resource { namespace: None, api_group, .. } if api_group == "apps")
        );
        let a = attrs(Method::GET, "/version");
        assert_eq!(
            a.target,
            Target::NonResource {
                path: "/version".into()
            }
        );
    }

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
        PolicyRule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: verbs.iter().map(|x| x.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let list_pods = attrs(Method::GET, "/api/v1/namespaces/default/pods");
        assert!(rule_allows(&rule(&[""], &["pods"], &["list"]), &list_pods));
        assert!(rule_allows(&rule(&["*"], &["*"], &["*"]), &list_pods));
        assert!(!rule_allows(
            &rule(&["apps"], &["pods"], &["list"]),
            &list_pods
        ));
        assert!(!rule_allows(&rule(&[""], &["pods"], &["get"]), &list_pods));
        let log = attrs(Method::GET, "/api/v1/namespaces/default/pods/x/log");
        assert!(
            !rule_allows(&rule(&[""], &["pods"], &["get"]), &log),
            "a subresource is its own"
        );
        assert!(rule_allows(&rule(&[""], &["pods/log"], &["get"]), &log));
        assert!(rule_allows(&rule(&[""], &["*/log"], &["get"]), &log));
        let mut named = rule(&[""], &["pods"], &["get"]);
        named.resource_names = Some(vec!["x".into()]);
        assert!(rule_allows(
            &named,
            &attrs(Method::GET, "/api/v1/namespaces/default/pods/x")
        ));
        assert!(!rule_allows(
            &named,
            &attrs(Method::GET, "/api/v1/namespaces/default/pods/y")
        ));
        assert!(!rule_allows(&named, &list_pods), "names never match a list");
        let healthz = PolicyRule {
            non_resource_urls: Some(vec!["/healthz".into(), "/apis/*".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        };
        assert!(rule_allows(&healthz, &attrs(Method::GET, "/healthz")));
        assert!(rule_allows(&healthz, &attrs(Method::GET, "/apis/nope")));
        assert!(!rule_allows(&healthz, &attrs(Method::GET, "/version")));
    }

    #[test]
    fn forbidden_messages_read_like_kubernetes() {
        let user = UserInfo {
            username: "system:serviceaccount:default:viewer".into(),
            groups: vec![],
        };
        let e = forbidden(
            &user,
            &attrs(Method::DELETE, "/api/v1/namespaces/default/pods/x"),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"x\" is forbidden: User \"system:serviceaccount:default:viewer\" cannot delete resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let e = forbidden(&user, &attrs(Method::GET, "/apis/apps/v1/deployments"));
        assert_eq!(
            e.message,
            "deployments.apps is forbidden: User \"system:serviceaccount:default:viewer\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
    }
}
