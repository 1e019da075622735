//! PersistentVolumeClaims for Linux container pods, through a private containerd and runc
//! (see containers.rs) and the real kubectl: the default `local-path` StorageClass; a claim
//! without a class gets it and waits for its first consumer; a busybox pod provisions its
//! volume on the server's node under `<data-dir>/storage`, and the next pod reads the data
//! beside configMap (read-only), downwardAPI, hostPath and emptyDir volumes; deleting the
//! claim deletes the volume and its directory; a pod naming a missing claim stays unscheduled.
//! A StatefulSet's volumeClaimTemplates: a claim per replica that outlives its pod and the
//! set. Static binding: a pre-made `local` PersistentVolume of a class that has no
//! StorageClass object binds at once, and with Retain becomes Released, data kept, once its
//! claim is deleted.

use std::path::Path;
use std::time::Duration;

use crate::containers::{Containerd, Registry, apply, server_with, until, wait};
use crate::harness::{SERVER_NODE, Server};

const MINUTE: Duration = Duration::from_secs(60);
/// Pods: an image pull and a volume provisioned on the way.
const POD_TIMEOUT: Duration = Duration::from_secs(90);

/// A busybox pod (runc, never restarted) running `script` with claim `claim` at /data.
fn claim_pod(name: &str, image: &str, claim: &str, script: &str) -> String {
    CLAIM_POD
        .replace("NAME", name)
        .replace("IMAGE", image)
        .replace("CLAIM", claim)
        .replace("SCRIPT", script)
}

const CLAIM_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  runtimeClassName: runc
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    command: [sh, -c, 'SCRIPT']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: CLAIM}
"#;

const DATA_CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
"#;

const GREETINGS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: greetings}
data: {greeting: "hello from a configmap"}
"#;

/// The claim beside every other kind of volume; each file printed on a line of its own.
const READER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  runtimeClassName: runc
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: IMAGE
    command:
    - sh
    - -c
    - 'for f in /data/f /cfg/greeting /info/podname /host/host.txt; do cat $f; echo; done; echo x > /scratch/y && cat /scratch/y; touch /cfg/new 2>/dev/null && echo cfg-writable || echo cfg-read-only'
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: cfg, mountPath: /cfg}
    - {name: info, mountPath: /info}
    - {name: host, mountPath: /host}
    - {name: scratch, mountPath: /scratch}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
  - name: cfg
    configMap: {name: greetings}
  - name: info
    downwardAPI:
      items:
      - {path: podname, fieldRef: {fieldPath: metadata.name}}
  - name: host
    hostPath: {path: HOST_DIR, type: Directory}
  - name: scratch
    emptyDir: {}
"#;

/// A directory of the test's own that a container (root, or not) can read.
fn readable_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write file");
    }
    dir
}

#[test]
fn a_claim_is_provisioned_for_its_first_container_pod_and_reclaimed_with_it() {
    let ctrd = Containerd::start();
    let registry = Registry::start_with_busybox();
    let s = server_with(&ctrd);
    let busybox = registry.busybox();

    // Every cluster has the default class.
    wait(
        &s,
        &ctrd,
        &["storageclass", "local-path"],
        "{.provisioner}",
        MINUTE,
        |p| p == "wasmkube.io/local-path",
    );
    assert_eq!(
        s.jsonpath(
            &["storageclass", "local-path"],
            "{.reclaimPolicy} {.volumeBindingMode}"
        ),
        "Delete WaitForFirstConsumer"
    );
    assert_eq!(
        s.jsonpath(
            &["storageclass", "local-path"],
            r"{.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}"
        ),
        "true"
    );
    let classes = s.kubectl(&["get", "storageclass"]).ok().stdout;
    assert!(classes.contains("local-path (default)"), "{classes}");

    // A claim without a class gets the default one and waits for a pod.
    apply(&s, DATA_CLAIM);
    wait(
        &s,
        &ctrd,
        &["pvc", "data"],
        "{.spec.storageClassName} {.status.phase}",
        MINUTE,
        |v| v == "local-path Pending",
    );
    until(&s, &ctrd, MINUTE, "a WaitForFirstConsumer event", || {
        let r = s
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=data",
                "-o",
                "jsonpath={.items[*].reason}",
            ])
            .stdout;
        r.split_whitespace()
            .any(|reason| reason == "WaitForFirstConsumer")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        s.jsonpath(&["pvc", "data"], "{.status.phase} {.spec.volumeName}"),
        "Pending",
        "no pod uses the claim yet"
    );

    // The first pod: the volume is made on its node, and the pod writes to it.
    apply(
        &s,
        &claim_pod("writer", &busybox, "data", "echo persisted > /data/f"),
    );
    wait(
        &s,
        &ctrd,
        &["pod", "writer"],
        "{.status.phase}",
        POD_TIMEOUT,
        |p| p == "Succeeded",
    );
    assert_eq!(s.jsonpath(&["pvc", "data"], "{.status.phase}"), "Bound");
    let uid = s.jsonpath(&["pvc", "data"], "{.metadata.uid}");
    let pv = s.jsonpath(&["pvc", "data"], "{.spec.volumeName}");
    assert_eq!(pv, format!("pvc-{uid}"));
    wait(&s, &ctrd, &["pv", &pv], "{.status.phase}", MINUTE, |p| {
        p == "Bound"
    });
    assert_eq!(s.jsonpath(&["pv", &pv], "{.spec.claimRef.name}"), "data");
    assert_eq!(
        s.jsonpath(&["pv", &pv], "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete"
    );
    assert_eq!(
        s.jsonpath(&["pv", &pv], "{.spec.storageClassName}"),
        "local-path"
    );
    assert_eq!(
        s.jsonpath(
            &["pv", &pv],
            "{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}"
        ),
        SERVER_NODE
    );
    let path = s.jsonpath(&["pv", &pv], "{.spec.local.path}");
    let dir = Path::new(&path);
    assert!(
        dir.starts_with(s.dir.join("storage")),
        "{path} is not under the server's {}",
        s.dir.join("storage").display()
    );
    assert!(dir.is_dir(), "{path}");
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).expect("the pod's file is on the node"),
        "persisted\n"
    );

    // The next pod reads it, beside configMap, downwardAPI, hostPath and emptyDir volumes.
    s.kubectl(&["delete", "pod", "writer", "--timeout=60s"])
        .ok();
    apply(&s, GREETINGS);
    let host = readable_dir(&[("host.txt", "from the host\n")]);
    let host_dir = format!("{:?}", host.path().display().to_string());
    apply(
        &s,
        &READER
            .replace("IMAGE", &busybox)
            .replace("HOST_DIR", &host_dir),
    );
    wait(
        &s,
        &ctrd,
        &["pod", "reader"],
        "{.status.phase}",
        POD_TIMEOUT,
        |p| p == "Succeeded",
    );
    let logs = s.kubectl(&["logs", "reader"]).ok().stdout;
    let lines: Vec<&str> = logs.lines().map(str::trim).collect();
    for want in [
        "persisted",
        "hello from a configmap",
        "reader",
        "from the host",
        "x",
        "cfg-read-only",
    ] {
        assert!(lines.contains(&want), "{want:?} not in the logs:\n{logs}");
    }
    assert!(!logs.contains("cfg-writable"), "{logs}");

    // Deleting the claim once its pods are gone deletes the volume and its directory.
    s.kubectl(&["delete", "pod", "reader", "--timeout=60s"])
        .ok();
    s.kubectl(&["delete", "pvc", "data", "--timeout=60s"]).ok();
    until(
        &s,
        &ctrd,
        MINUTE,
        "the volume and its directory gone",
        || {
            let gone = s.kubectl(&["get", "pv", &pv]).code != Some(0);
            (gone && !dir.exists()).then_some(())
        },
    );

    // A pod naming a claim that does not exist is not scheduled.
    apply(&s, &claim_pod("orphan", &busybox, "nope", "true"));
    let scheduled = wait(
        &s,
        &ctrd,
        &["pod", "orphan"],
        "{.status.conditions[?(@.type==\"PodScheduled\")].status}|{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        MINUTE,
        |v| v.starts_with("False|"),
    );
    assert!(
        scheduled.contains("persistentvolumeclaim \"nope\" not found"),
        "{scheduled}"
    );
    assert_eq!(
        s.jsonpath(&["pod", "orphan"], "{.status.phase} {.spec.nodeName}"),
        "Pending"
    );
    drop(s);
    drop(registry);
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      runtimeClassName: runc
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: IMAGE
        command: [sh, -c, 'echo $HOSTNAME >> /data/names; exec sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
"#;

const MANUAL: &str = r#"
apiVersion: v1
kind: PersistentVolume
metadata: {name: manual-pv}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: manual
  local: {path: DIR}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [NODE]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: manual}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
"#;

#[test]
fn statefulset_claims_outlive_their_pods_and_static_volumes_are_retained() {
    let ctrd = Containerd::start();
    let registry = Registry::start_with_busybox();
    let s = server_with(&ctrd);
    let busybox = registry.busybox();

    // A claim per replica from the template, provisioned as each pod starts.
    apply(&s, &WEB.replace("IMAGE", &busybox));
    wait(
        &s,
        &ctrd,
        &["pods", "-l", "app=web"],
        "{.items[*].status.phase}",
        POD_TIMEOUT,
        |p| p == "Running Running",
    );
    wait(
        &s,
        &ctrd,
        &["pvc", "data-web-0", "data-web-1"],
        "{.items[*].status.phase}",
        MINUTE,
        |p| p == "Bound Bound",
    );
    let names = |s: &Server| {
        s.kubectl(&["exec", "web-0", "--", "cat", "/data/names"])
            .stdout
    };
    let first = until(&s, &ctrd, MINUTE, "web-0 wrote its name", || {
        Some(names(&s)).filter(|n| !n.is_empty())
    });
    assert_eq!(first, "web-0\n");

    // The controller recreates a deleted pod on the same claim: the data is still there.
    let old = s.jsonpath(&["pod", "web-0"], "{.metadata.uid}");
    s.kubectl(&["delete", "pod", "web-0", "--wait=false"]).ok();
    wait(
        &s,
        &ctrd,
        &["pod", "web-0"],
        "{.metadata.uid} {.status.phase}",
        POD_TIMEOUT,
        |v| {
            v.split_once(' ')
                .is_some_and(|(uid, phase)| uid != old && phase == "Running")
        },
    );
    let second = until(&s, &ctrd, MINUTE, "the new web-0 wrote its name", || {
        Some(names(&s)).filter(|n| n.lines().count() >= 2)
    });
    assert_eq!(second, "web-0\nweb-0\n");

    // Deleting the set leaves its claims (the default retention policy: Retain).
    s.kubectl(&["delete", "statefulset", "web", "--timeout=60s"])
        .ok();
    until(&s, &ctrd, MINUTE, "the set's pods gone", || {
        s.kubectl(&["get", "pods", "-l", "app=web", "-o", "name"])
            .ok()
            .stdout
            .trim()
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        s.jsonpath(
            &["pvc", "data-web-0", "data-web-1"],
            "{.items[*].status.phase}"
        ),
        "Bound Bound"
    );

    // Static binding: no StorageClass named `manual` exists, so the claim binds at once to
    // the volume that fits, without a pod.
    let seeded = readable_dir(&[("seed", "static\n")]);
    let seed_dir = format!("{:?}", seeded.path().display().to_string());
    apply(
        &s,
        &MANUAL
            .replace("DIR", &seed_dir)
            .replace("NODE", SERVER_NODE),
    );
    wait(
        &s,
        &ctrd,
        &["pvc", "manual"],
        "{.status.phase} {.spec.volumeName}",
        MINUTE,
        |v| v == "Bound manual-pv",
    );
    wait(
        &s,
        &ctrd,
        &["pv", "manual-pv"],
        "{.status.phase}",
        MINUTE,
        |p| p == "Bound",
    );
    assert_eq!(
        s.jsonpath(&["pvc", "manual"], "{.status.capacity.storage}"),
        "1Gi"
    );
    apply(
        &s,
        &claim_pod("seed-reader", &busybox, "manual", "cat /data/seed"),
    );
    wait(
        &s,
        &ctrd,
        &["pod", "seed-reader"],
        "{.status.phase}",
        POD_TIMEOUT,
        |p| p == "Succeeded",
    );
    let logs = s.kubectl(&["logs", "seed-reader"]).ok().stdout;
    assert_eq!(logs.trim(), "static");

    // Retain: without its claim the volume is Released, and the data stays.
    s.kubectl(&["delete", "pod", "seed-reader", "--timeout=60s"])
        .ok();
    s.kubectl(&["delete", "pvc", "manual", "--timeout=60s"])
        .ok();
    wait(
        &s,
        &ctrd,
        &["pv", "manual-pv"],
        "{.status.phase}",
        MINUTE,
        |p| p == "Released",
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        s.jsonpath(&["pv", "manual-pv"], "{.status.phase}"),
        "Released",
        "a Retain volume stays"
    );
    assert!(seeded.path().is_dir());
    assert_eq!(
        std::fs::read_to_string(seeded.path().join("seed")).expect("the seed is kept"),
        "static\n"
    );
    drop(s);
    drop(registry);
}
