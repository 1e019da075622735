//! Kubernetes' per-kind write rules: uid preconditions, generateName retries, a Job's
//! generated selector, the orphaning default of a Job DELETE, what a `/status` write may
//! change, and how a strategic merge patch orders merged conditions.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wasmkube_apiserver::admission::Admission;

use crate::{Api, assert_status};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const RSS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const PODS: &str = "/api/v1/namespaces/default/pods";
const SMP: &str = "application/strategic-merge-patch+json";

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"tier": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}})
}

fn job(name: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"metadata": {"labels": {"app": name}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i:1"}]}}}})
}

fn message(r: &crate::Resp) -> String {
    r.body["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn a_uid_in_an_update_is_a_precondition() {
    let api = Api::new().await;
    let created = api.post(CMS, cm("u")).await.body;
    let uid = created["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();

    // The object was replaced by a namesake meanwhile: the update must not land on it.
    let mut stale = created.clone();
    stale["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000001");
    stale["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    stale["data"] = json!({"a": "2"});
    let r = api.put(&format!("{CMS}/u"), stale).await;
    assert_status(&r, 409, "Conflict");
    assert!(
        message(&r).contains(&format!(
            "Precondition failed: UID in precondition: 00000000-0000-4000-8000-000000000001, UID in object meta: {uid}"
        )),
        "{}",
        r.text
    );
    assert_eq!(api.get(&format!("{CMS}/u")).await.body["data"]["a"], "1");

    // The right uid (with or without a resourceVersion) updates.
    let mut right = created.clone();
    right["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    right["data"] = json!({"a": "3"});
    let r = api.put(&format!("{CMS}/u"), right).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["data"]["a"], "3");

    // The status subresource checks it too.
    let d = api.post(DEPLOYS, deployment("d")).await.body;
    let mut status = d.clone();
    status["metadata"]["uid"] = json!("someone-else");
    status["status"] = json!({"replicas": 1});
    let r = api.put(&format!("{DEPLOYS}/d/status"), status).await;
    assert_status(&r, 409, "Conflict");

    // So does a Scale written with PUT.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "d", "namespace": "default", "uid": "someone-else"},
        "spec": {"replicas": 3}});
    let r = api.put(&format!("{DEPLOYS}/d/scale"), scale).await;
    assert_status(&r, 409, "Conflict");
    assert_eq!(
        api.get(&format!("{DEPLOYS}/d")).await.body["spec"]["replicas"],
        1
    );

    // A patch cannot change the uid: Kubernetes validates it as immutable (422), not as a
    // precondition.
    for ctype in ["application/merge-patch+json", SMP] {
        let r = api
            .patch(
                &format!("{CMS}/u"),
                ctype,
                json!({"metadata": {"uid": "someone-else"}, "data": {"a": "4"}}),
            )
            .await;
        assert_status(&r, 422, "Invalid");
        assert!(
            message(&r)
                .contains("metadata.uid: Invalid value: \"someone-else\": field is immutable"),
            "{}",
            r.text
        );
    }
    let r = api
        .patch(
            &format!("{CMS}/u"),
            "application/merge-patch+json",
            json!({"metadata": {"uid": uid}, "data": {"a": "5"}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["data"]["a"], "5");
}

static CLASH_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The first generated suffix is taken; the second is free.
fn clash_once() -> String {
    match CLASH_CALLS.fetch_add(1, Ordering::SeqCst) {
        0 => "taken".into(),
        _ => "fresh".into(),
    }
}

static ALWAYS_CALLS: AtomicUsize = AtomicUsize::new(0);

fn always_taken() -> String {
    ALWAYS_CALLS.fetch_add(1, Ordering::SeqCst);
    "taken".into()
}

#[tokio::test]
async fn generate_name_retries_on_a_clash() {
    let api = Api::with_admission(Admission {
        name_suffix: clash_once,
        ..Admission::default()
    })
    .await;
    assert_eq!(api.post(CMS, cm("web-taken")).await.code, 201);
    let mut gen_cm = cm("");
    gen_cm["metadata"] = json!({"generateName": "web-"});
    let r = api.post(CMS, gen_cm).await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(r.body["metadata"]["name"], "web-fresh");
    assert_eq!(CLASH_CALLS.load(Ordering::SeqCst), 2);

    // Every name taken: Kubernetes gives up after 8 attempts with AlreadyExists.
    let api = Api::with_admission(Admission {
        name_suffix: always_taken,
        ..Admission::default()
    })
    .await;
    assert_eq!(api.post(CMS, cm("x-taken")).await.code, 201);
    let mut gen_cm = cm("");
    gen_cm["metadata"] = json!({"generateName": "x-"});
    let r = api.post(CMS, gen_cm).await;
    assert_status(&r, 409, "AlreadyExists");
    assert_eq!(ALWAYS_CALLS.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn jobs_get_a_generated_selector_and_labels() {
    let api = Api::new().await;
    let r = api.post(JOBS, job("pi")).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let uid = r.body["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        r.body["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(
        r.body["spec"]["template"]["metadata"]["labels"],
        json!({"app": "pi", "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": "pi", "controller-uid": uid, "job-name": "pi"})
    );
    assert_eq!(r.body["spec"]["manualSelector"], false);

    // manualSelector: the user's selector and labels stay as they are.
    let mut manual = job("manual");
    manual["spec"]["manualSelector"] = json!(true);
    manual["spec"]["selector"] = json!({"matchLabels": {"app": "manual"}});
    let r = api.post(JOBS, manual).await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(
        r.body["spec"]["selector"],
        json!({"matchLabels": {"app": "manual"}})
    );
    assert_eq!(
        r.body["spec"]["template"]["metadata"]["labels"],
        json!({"app": "manual"})
    );

    // A selector of the user's own without manualSelector cannot match the generated labels.
    let mut own = job("own");
    own["spec"]["selector"] =
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "mine"}});
    let r = api.post(JOBS, own).await;
    assert_status(&r, 422, "Invalid");
    assert!(
        message(&r).contains("`selector` not auto-generated"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_job_delete_without_a_policy_orphans_its_pods() {
    let api = Api::new().await;
    api.post(JOBS, job("legacy")).await;
    // An old client's DELETE says nothing: batch/v1 keeps the pods (the orphan finalizer
    // tells the garbage collector so), with Kubernetes' warning.
    let r = api.delete(&format!("{JOBS}/legacy"), Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let warning = r
        .headers
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        warning.contains("child pods are preserved by default when jobs are deleted"),
        "{warning:?}"
    );
    let j = api.get(&format!("{JOBS}/legacy")).await.body;
    assert_eq!(j["metadata"]["finalizers"], json!(["orphan"]));
    assert!(j["metadata"]["deletionTimestamp"].is_string());

    // kubectl sends propagationPolicy=Background: the Job goes and takes its pods.
    api.post(JOBS, job("kubectl")).await;
    let r = api
        .delete(
            &format!("{JOBS}/kubectl"),
            json!({"propagationPolicy": "Background"}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(r.headers.get("warning").is_none());
    assert_status(&api.get(&format!("{JOBS}/kubectl")).await, 404, "NotFound");

    // Other kinds delete their dependents by default.
    api.post(DEPLOYS, deployment("gone")).await;
    let r = api.delete(&format!("{DEPLOYS}/gone"), Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_status(&api.get(&format!("{DEPLOYS}/gone")).await, 404, "NotFound");
}

#[tokio::test]
async fn status_writes_take_metadata_but_never_the_spec() {
    let api = Api::new().await;
    let created = api.post(DEPLOYS, deployment("s")).await.body;
    let mut write = created.clone();
    write["metadata"]["annotations"] = json!({"note": "from-status"});
    write["metadata"]["labels"] = json!({"tier": "changed"});
    write["spec"]["replicas"] = json!(9);
    write["status"] = json!({"replicas": 1});
    let r = api.put(&format!("{DEPLOYS}/s/status"), write).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let stored = api.get(&format!("{DEPLOYS}/s")).await.body;
    assert_eq!(stored["status"]["replicas"], 1);
    assert_eq!(
        stored["spec"]["replicas"], 1,
        "status writes never change the spec"
    );
    assert_eq!(stored["metadata"]["annotations"]["note"], "from-status");
    // A Deployment's status strategy also keeps its labels; a ReplicaSet's does not.
    assert_eq!(stored["metadata"]["labels"]["tier"], "web");
    assert_eq!(stored["metadata"]["generation"], 1);

    let mut rs = deployment("rs");
    rs["kind"] = json!("ReplicaSet");
    let created = api.post(RSS, rs).await.body;
    let mut write = created.clone();
    write["metadata"]["labels"] = json!({"tier": "changed"});
    write["status"] = json!({"replicas": 2});
    let r = api.put(&format!("{RSS}/rs/status"), write).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["metadata"]["labels"]["tier"], "changed");
    assert_eq!(r.body["status"]["replicas"], 2);

    // A pod's ownerReferences are out of reach of pods/status.
    let owner = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
        "uid": created["metadata"]["uid"], "controller": true}]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "ownerReferences": owner},
        "spec": {"containers": [{"name": "c", "image": "i:1"}]}});
    let created = api.post(PODS, pod).await.body;
    let mut write = created.clone();
    write["metadata"]["ownerReferences"] = json!([]);
    write["metadata"]["annotations"] = json!({"seen": "yes"});
    write["status"] = json!({"phase": "Running"});
    let r = api.put(&format!("{PODS}/p/status"), write).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["metadata"]["ownerReferences"], owner);
    assert_eq!(r.body["metadata"]["annotations"]["seen"], "yes");
    assert_eq!(r.body["status"]["phase"], "Running");
}

#[tokio::test]
async fn strategic_merge_of_conditions_merges_by_type() {
    let api = Api::new().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"},
        "spec": {"containers": [{"name": "c", "image": "i:1"}]}});
    api.post(PODS, pod).await;
    let cond = |t: &str, s: &str| json!({"type": t, "status": s});
    let r = api
        .patch(
            &format!("{PODS}/c/status"),
            SMP,
            json!({"status": {"conditions": [cond("PodScheduled", "True"), cond("Initialized", "True")]}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let types = |v: &Value| -> Vec<(String, String)> {
        v["status"]["conditions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["type"].as_str().unwrap_or("").to_string(),
                            c["status"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };

    // An existing type is merged in place; nothing is duplicated.
    let r = api
        .patch(
            &format!("{PODS}/c/status"),
            SMP,
            json!({"status": {"conditions": [cond("Initialized", "False")]}}),
        )
        .await;
    assert_eq!(
        types(&r.body),
        pairs(&[("PodScheduled", "True"), ("Initialized", "False")])
    );

    // With the order the client means (`$setElementOrder`, which Kubernetes' clients send
    // with every computed patch), a new type goes where the order puts it: at the end.
    let r = api
        .patch(
            &format!("{PODS}/c/status"),
            SMP,
            json!({"status": {
                "$setElementOrder/conditions": [{"type": "PodScheduled"}, {"type": "Initialized"}, {"type": "Ready"}],
                "conditions": [cond("Ready", "True")]}}),
        )
        .await;
    assert_eq!(
        types(&r.body),
        pairs(&[
            ("PodScheduled", "True"),
            ("Initialized", "False"),
            ("Ready", "True")
        ])
    );

    // Without it, Kubernetes' mergeSortedSlice puts a type the live list lacks before the
    // live-only ones; we match that exactly rather than guess.
    let r = api
        .patch(
            &format!("{PODS}/c/status"),
            SMP,
            json!({"status": {"conditions": [cond("ContainersReady", "True")]}}),
        )
        .await;
    assert_eq!(
        types(&r.body),
        pairs(&[
            ("ContainersReady", "True"),
            ("PodScheduled", "True"),
            ("Initialized", "False"),
            ("Ready", "True")
        ])
    );
}
