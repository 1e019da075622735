use std::collections::BTreeMap;

use k8s_pb::api::{apps::v1 as apps, core::v1 as core, policy::v1 as policy};
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{Value, json};

use super::*;

/// A body as client-go writes it: magic, then the envelope around the object's encoding.
fn body(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    envelope.encode(&mut out).expect("a Vec grows");
    out
}

fn decode_ok(bytes: &[u8]) -> Value {
    decode_object(bytes).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

fn quantity(text: &str) -> Quantity {
    Quantity {
        string: Some(text.into()),
    }
}

fn int(value: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(value),
        str_val: Some(String::new()),
    }
}

fn string(value: &str) -> IntOrString {
    IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: Some(value.into()),
    }
}

fn map<V: Clone>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// ObjectMeta as Go encodes it: every non-pointer field written, mostly empty.
fn go_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.into()),
        generate_name: Some(String::new()),
        namespace: Some(namespace.into()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// What kubectl 1.37 really sends: bodies captured from `kubectl create ...` against a local
// listener, next to `kubectl create ... --dry-run=client -o json` of the same command.

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            &include_bytes!(concat!("../../tests/fixtures/protobuf/", $name, ".pb"))[..],
            include_str!(concat!("../../tests/fixtures/protobuf/", $name, ".json")),
        )
    };
}

#[test]
fn kubectl_bodies_decode_to_kubectls_json() {
    for (name, pb, expected) in [
        fixture!("clusterrole"),
        fixture!("configmap"),
        fixture!("cronjob"),
        fixture!("deployment"),
        fixture!("ingress"),
        fixture!("job"),
        fixture!("namespace"),
        fixture!("poddisruptionbudget"),
        fixture!("priorityclass"),
        fixture!("resourcequota"),
        fixture!("role"),
        fixture!("rolebinding"),
        fixture!("secret"),
        fixture!("secret-docker-registry"),
        fixture!("service"),
        fixture!("serviceaccount"),
    ] {
        let expected: Value = serde_json::from_str(expected).expect("fixture is JSON");
        let decoded = decode_object(pb).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, expected, "{name}");
    }
}

#[test]
fn kubectl_deployment_deserializes_into_k8s_openapi() {
    let (_, pb, _) = fixture!("deployment");
    let decoded = decode_ok(pb);
    let deployment: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(decoded).expect("a valid Deployment");
    let spec = deployment.spec;
    assert_eq!(spec.replicas, Some(3));
    let container = &spec.template.spec.expect("pod spec").containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.27"));
}

// ---------------------------------------------------------------------------------------------
// Objects built with the prost types of k8s-pb, encoded the way Go encodes them.

#[test]
fn configmap_with_labels_annotations_binary_data_and_creation_timestamp() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            labels: map(&[("app", "web".to_string()), ("tier", "front".to_string())]),
            annotations: map(&[("note", "x".to_string())]),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_767_323_045),
                nanos: Some(0),
            }),
            ..go_meta("settings", "default")
        }),
        data: map(&[("a", "1".to_string()), ("b", String::new())]),
        binary_data: map(&[("blob", vec![0u8, 1, 2, 0xff])]),
        immutable: None,
    };
    assert_eq!(
        decode_ok(&body("v1", "ConfigMap", &cm)),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "settings",
                "namespace": "default",
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"note": "x"},
            },
            "data": {"a": "1", "b": ""},
            "binaryData": {"blob": "AAEC/w=="},
        })
    );
}

#[test]
fn secret_bytes_are_base64_and_pointer_false_survives() {
    let secret = core::Secret {
        metadata: Some(go_meta("creds", "")),
        data: map(&[("password", b"hunter2".to_vec())]),
        string_data: BTreeMap::new(),
        r#type: Some("Opaque".into()),
        // `immutable` is a *bool in Go: an explicit false is kept.
        immutable: Some(false),
    };
    let decoded = decode_ok(&body("v1", "Secret", &secret));
    assert_eq!(
        decoded,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "immutable": false,
            "data": {"password": "aHVudGVyMg=="},
            "type": "Opaque",
        })
    );
    let typed: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(decoded).expect("a Secret");
    assert_eq!(typed.data.expect("data")["password"].0, b"hunter2");
}

fn container() -> core::Container {
    core::Container {
        name: Some("app".into()),
        image: Some("nginx:1.27".into()),
        command: vec!["nginx".into(), "-g".into()],
        ports: vec![core::ContainerPort {
            name: Some("http".into()),
            host_port: Some(0),
            container_port: Some(80),
            protocol: Some("TCP".into()),
            host_ip: Some(String::new()),
        }],
        env: vec![
            core::EnvVar {
                name: Some("MODE".into()),
                value: Some("prod".into()),
                value_from: None,
            },
            core::EnvVar {
                name: Some("KEY".into()),
                value: Some(String::new()),
                value_from: Some(core::EnvVarSource {
                    config_map_key_ref: Some(core::ConfigMapKeySelector {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: Some("settings".into()),
                        }),
                        key: Some("a".into()),
                        optional: Some(false),
                    }),
                    ..Default::default()
                }),
            },
        ],
        resources: Some(core::ResourceRequirements {
            limits: map(&[("cpu", quantity("500m")), ("memory", quantity("128Mi"))]),
            requests: map(&[("cpu", quantity("250m"))]),
            claims: vec![],
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: Some("/healthz".into()),
                    port: Some(string("http")),
                    host: Some(String::new()),
                    scheme: Some("HTTP".into()),
                    http_headers: vec![],
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(0),
            timeout_seconds: Some(1),
            period_seconds: Some(10),
            success_threshold: Some(1),
            failure_threshold: Some(3),
            termination_grace_period_seconds: None,
        }),
        termination_message_path: Some("/dev/termination-log".into()),
        image_pull_policy: Some("IfNotPresent".into()),
        security_context: Some(core::SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            ..Default::default()
        }),
        stdin: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

fn container_json() -> Value {
    json!({
        "name": "app",
        "image": "nginx:1.27",
        "command": ["nginx", "-g"],
        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
        "env": [
            {"name": "MODE", "value": "prod"},
            {
                "name": "KEY",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a", "optional": false}},
            },
        ],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePath": "/dev/termination-log",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"runAsUser": 0, "runAsNonRoot": false},
    })
}

#[test]
fn pod_with_containers_ports_env_resources_and_probes() {
    let pod = core::Pod {
        metadata: Some(go_meta("web-0", "default")),
        spec: Some(core::PodSpec {
            containers: vec![container()],
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: Some(0),
            dns_policy: Some(String::new()),
            service_account_name: Some(String::new()),
            host_network: Some(false),
            ..Default::default()
        }),
        status: Some(core::PodStatus::default()),
    };
    let decoded = decode_ok(&body("v1", "Pod", &pod));
    assert_eq!(
        decoded,
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {
                "containers": [container_json()],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 0,
            },
            "status": {},
        })
    );
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(decoded).expect("a Pod");
    let limits = typed.spec.expect("spec").containers[0]
        .resources
        .clone()
        .expect("resources")
        .limits
        .expect("limits");
    assert_eq!(limits["memory"].0, "128Mi");
}

#[test]
fn service_target_ports_as_int_and_string() {
    let port = |name: &str, port: i32, target: IntOrString| core::ServicePort {
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        port: Some(port),
        target_port: Some(target),
        node_port: Some(0),
        app_protocol: None,
    };
    let service = core::Service {
        metadata: Some(go_meta("web", "default")),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port("http", 80, int(8080)),
                port("https", 443, string("https")),
            ],
            selector: map(&[("app", "web".to_string())]),
            r#type: Some("NodePort".into()),
            cluster_ip: Some(String::new()),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        decode_ok(&body("v1", "Service", &service))["spec"],
        json!({
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"},
            ],
            "selector": {"app": "web"},
            "type": "NodePort",
        })
    );
}

#[test]
fn deployment_with_rolling_update_and_zero_replicas() {
    let deployment = apps::Deployment {
        metadata: Some(go_meta("web", "default")),
        spec: Some(apps::DeploymentSpec {
            // *int32 in Go: scaling to zero must not read as "unset".
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: map(&[("app", "web".to_string())]),
                match_expressions: vec![],
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: map(&[("app", "web".to_string())]),
                    ..go_meta("", "")
                }),
                spec: Some(core::PodSpec {
                    containers: vec![container()],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(int(1)),
                    max_surge: Some(string("25%")),
                }),
            }),
            min_ready_seconds: Some(0),
            revision_history_limit: Some(10),
            paused: Some(false),
            progress_deadline_seconds: Some(600),
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let decoded = decode_ok(&body("apps/v1", "Deployment", &deployment));
    assert_eq!(
        decoded["spec"],
        json!({
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container_json()]},
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        })
    );
    let typed: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(decoded).expect("a Deployment");
    assert_eq!(typed.spec.replicas, Some(0));
}

#[test]
fn eviction_delete_options_and_other_meta_kinds() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: Some("1234".into()),
            resource_version: None,
        }),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let eviction = policy::Eviction {
        metadata: Some(go_meta("web-0", "default")),
        delete_options: Some(options.clone()),
    };
    assert_eq!(
        decode_ok(&body("policy/v1", "Eviction", &eviction)),
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": "web-0", "namespace": "default"},
            "deleteOptions": {
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "1234"},
                "dryRun": ["All"],
            },
        })
    );
    // DeleteOptions is registered in every group version, so any apiVersion may label it.
    for api_version in ["v1", "meta.k8s.io/v1", "apps/v1", "policy/v1"] {
        let decoded = decode_ok(&body(api_version, "DeleteOptions", &options));
        assert_eq!(decoded["apiVersion"], api_version);
        assert_eq!(decoded["gracePeriodSeconds"], 0);
    }
}

#[test]
fn scale_binding_and_namespace() {
    let scale = k8s_pb::api::autoscaling::v1::Scale {
        metadata: Some(go_meta("web", "default")),
        spec: Some(k8s_pb::api::autoscaling::v1::ScaleSpec { replicas: Some(5) }),
        status: Some(k8s_pb::api::autoscaling::v1::ScaleStatus {
            replicas: Some(2),
            selector: Some("app=web".into()),
        }),
    };
    assert_eq!(
        decode_ok(&body("autoscaling/v1", "Scale", &scale)),
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 5},
            "status": {"replicas": 2, "selector": "app=web"},
        })
    );
    let binding = core::Binding {
        metadata: Some(go_meta("web-0", "default")),
        target: Some(core::ObjectReference {
            kind: Some("Node".into()),
            name: Some("node-1".into()),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode_ok(&body("v1", "Binding", &binding))["target"],
        json!({"kind": "Node", "name": "node-1"})
    );
}

#[test]
fn times_durations_and_embedded_json() {
    // MicroTime: six fractional digits, truncated.
    let micro = meta::MicroTime {
        seconds: Some(1_767_323_045),
        nanos: Some(123_456_789),
    };
    assert_eq!(
        decode_message(
            "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
            &micro.encode_to_vec()
        )
        .expect("decodes"),
        json!("2026-01-02T03:04:05.123456Z")
    );
    // Time: whole seconds; the Unix epoch is a real time, not Go's zero time.
    let time = |seconds, nanos| {
        meta::Time {
            seconds: Some(seconds),
            nanos: Some(nanos),
        }
        .encode_to_vec()
    };
    let decode_time = |bytes: Vec<u8>| {
        decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Time", &bytes).expect("decodes")
    };
    assert_eq!(decode_time(time(0, 0)), json!("1970-01-01T00:00:00Z"));
    assert_eq!(
        decode_time(time(-1, 500_000_000)),
        json!("1969-12-31T23:59:59Z")
    );
    assert_eq!(decode_time(Vec::new()), Value::Null);
    assert_eq!(decode_time(time(-62_135_596_800, 0)), Value::Null);
    assert!(
        decode_message(
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
            &time(i64::MAX, 0)
        )
        .is_err()
    );

    for (nanos, text) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_000_000, "1ms"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (5_430_100_000_000, "1h30m30.1s"),
        (-90_000_000_000, "-1m30s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ] {
        let bytes = meta::Duration {
            duration: Some(nanos),
        }
        .encode_to_vec();
        let decoded = decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Duration", &bytes)
            .expect("decodes");
        assert_eq!(decoded, json!(text), "{nanos}");
    }

    let revision = apps::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                operation: Some("Update".into()),
                fields_type: Some("FieldsV1".into()),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:data":{}}"#.to_vec()),
                }),
                time: Some(meta::Time {
                    seconds: Some(0),
                    nanos: Some(0),
                }),
                ..Default::default()
            }],
            ..go_meta("rev-1", "default")
        }),
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(br#"{"spec":{"a":[1,2]}}"#.to_vec()),
        }),
        revision: Some(1),
    };
    let decoded = decode_ok(&body("apps/v1", "ControllerRevision", &revision));
    assert_eq!(decoded["data"], json!({"spec": {"a": [1, 2]}}));
    assert_eq!(
        decoded["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Update",
            "time": "1970-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {}},
        }])
    );

    let bad = apps::ControllerRevision {
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(b"{nope".to_vec()),
        }),
        ..Default::default()
    };
    let error =
        decode_object(&body("apps/v1", "ControllerRevision", &bad)).expect_err("invalid JSON");
    assert!(
        matches!(error, ProtobufError::EmbeddedJson { .. }),
        "{error}"
    );
}

#[test]
fn custom_resource_definition_schema_names_and_or_types() {
    let string_schema = || apiextensions::JsonSchemaProps {
        r#type: Some("string".into()),
        ..Default::default()
    };
    let schema = apiextensions::JsonSchemaProps {
        r#type: Some("object".into()),
        properties: map(&[
            (
                "spec",
                apiextensions::JsonSchemaProps {
                    r#type: Some("object".into()),
                    x_kubernetes_preserve_unknown_fields: Some(true),
                    additional_properties: Some(Box::new(apiextensions::JsonSchemaPropsOrBool {
                        allows: Some(true),
                        schema: Some(Box::new(string_schema())),
                    })),
                    ..Default::default()
                },
            ),
            (
                "tags",
                apiextensions::JsonSchemaProps {
                    r#type: Some("array".into()),
                    items: Some(Box::new(apiextensions::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(string_schema())),
                        j_son_schemas: vec![],
                    })),
                    default: Some(apiextensions::Json {
                        raw: Some(br#"["a"]"#.to_vec()),
                    }),
                    ..Default::default()
                },
            ),
            (
                "open",
                apiextensions::JsonSchemaProps {
                    additional_properties: Some(Box::new(apiextensions::JsonSchemaPropsOrBool {
                        allows: Some(false),
                        schema: None,
                    })),
                    maximum: Some(10.0),
                    minimum: Some(0.5),
                    r#ref: Some("#/x".into()),
                    ..Default::default()
                },
            ),
        ]),
        ..Default::default()
    };
    let bytes = schema.encode_to_vec();
    let decoded = decode_message(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        &bytes,
    )
    .expect("decodes");
    assert_eq!(
        decoded,
        json!({
            "type": "object",
            "properties": {
                "open": {
                    "$ref": "#/x",
                    "maximum": 10,
                    "minimum": 0.5,
                    "additionalProperties": false,
                },
                "spec": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "x-kubernetes-preserve-unknown-fields": true,
                },
                "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
            },
        })
    );
    let typed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps =
        serde_json::from_value(decoded).expect("valid JSONSchemaProps");
    assert_eq!(typed.type_.as_deref(), Some("object"));
}

#[test]
fn named_slices_in_maps_are_arrays() {
    use k8s_pb::api::certificates::v1 as certificates;
    let csr = certificates::CertificateSigningRequest {
        metadata: Some(go_meta("csr-1", "")),
        spec: Some(certificates::CertificateSigningRequestSpec {
            request: Some(b"PEM".to_vec()),
            signer_name: Some("kubernetes.io/kube-apiserver-client".into()),
            extra: map(&[(
                "scopes",
                certificates::ExtraValue {
                    items: vec!["a".into(), "b".into()],
                },
            )]),
            usages: vec!["client auth".into()],
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode_ok(&body(
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        &csr,
    ));
    assert_eq!(
        decoded["spec"],
        json!({
            "request": "UEVN",
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "extra": {"scopes": ["a", "b"]},
        })
    );
}

#[test]
fn unknown_fields_are_skipped_and_packed_scalars_accepted() {
    // ContainerPort with an extra field 99 of each wire type, then containerPort (3).
    let mut raw = Vec::new();
    raw.extend([0x98, 0x06, 0x01]); // 99: varint
    raw.extend([0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]); // 99: fixed64
    raw.extend([0x9a, 0x06, 0x02, b'h', b'i']); // 99: bytes
    raw.extend([0x9d, 0x06, 1, 2, 3, 4]); // 99: fixed32
    raw.extend([0x18, 0x50]); // containerPort: 80
    let decoded = decode_message("io.k8s.api.core.v1.ContainerPort", &raw).expect("decodes");
    assert_eq!(decoded, json!({"containerPort": 80}));

    // A repeated int64 written packed: PodSecurityContext.supplementalGroups (field 4).
    let packed = [0x22, 0x03, 0x01, 0x02, 0x03];
    let decoded =
        decode_message("io.k8s.api.core.v1.PodSecurityContext", &packed).expect("decodes");
    assert_eq!(decoded, json!({"supplementalGroups": [1, 2, 3]}));
}

#[test]
fn negative_int32_is_sign_extended() {
    let port = core::ContainerPort {
        container_port: Some(-1),
        ..Default::default()
    };
    let decoded =
        decode_message("io.k8s.api.core.v1.ContainerPort", &port.encode_to_vec()).expect("decodes");
    assert_eq!(decoded, json!({"containerPort": -1}));
}

// ---------------------------------------------------------------------------------------------
// Hostile input: errors, never panics.

#[test]
fn envelope_errors() {
    assert!(matches!(
        decode_object(b""),
        Err(ProtobufError::NotProtobuf)
    ));
    assert!(matches!(
        decode_object(b"{\"kind\":\"Pod\"}"),
        Err(ProtobufError::NotProtobuf)
    ));
    let cm = core::ConfigMap::default();
    let error = decode_object(&body("v1", "NoSuchKind", &cm)).expect_err("unknown kind");
    assert_eq!(
        error.to_string(),
        r#"no protobuf schema for apiVersion "v1", kind "NoSuchKind""#
    );
    assert!(matches!(
        decode_object(&body("nope.example.com/v1", "ConfigMap", &cm)),
        Err(ProtobufError::UnknownKind { .. })
    ));
    // A special shape is not an object kind.
    assert!(decode_object(&body("meta.k8s.io/v1", "Time", &cm)).is_err());

    let mut gzip = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
        }),
        raw: Some(Vec::new()),
        content_encoding: Some("gzip".into()),
        content_type: None,
    }
    .encode_to_vec();
    gzip.splice(0..0, MAGIC);
    assert!(matches!(
        decode_object(&gzip),
        Err(ProtobufError::ContentEncoding(_))
    ));
    assert!(matches!(
        decode_message("io.k8s.Nope", &[]),
        Err(ProtobufError::UnknownType(_))
    ));
}

#[test]
fn wire_errors_name_the_message_and_field() {
    let cases: &[(&[u8], &str)] = &[
        (
            &[0x18],
            "field 3 of io.k8s.api.core.v1.ContainerPort: truncated varint",
        ),
        (
            &[
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            "field 3 of io.k8s.api.core.v1.ContainerPort: varint overflows 64 bits",
        ),
        (
            &[0x0a, 0x05, b'a'],
            "field 1 of io.k8s.api.core.v1.ContainerPort: truncated field",
        ),
        (
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
            "field 1 of io.k8s.api.core.v1.ContainerPort: truncated field",
        ),
        (
            &[0x1a, 0x00],
            "field 3 of io.k8s.api.core.v1.ContainerPort: wrong wire type: expected a varint",
        ),
        (
            &[0x08, 0x01],
            "field 1 of io.k8s.api.core.v1.ContainerPort: wrong wire type: expected length-delimited",
        ),
        (&[0x00], "io.k8s.api.core.v1.ContainerPort: field number 0"),
        (
            &[0x0b],
            "field 1 of io.k8s.api.core.v1.ContainerPort: groups are not supported",
        ),
        (
            &[0x0e],
            "field 1 of io.k8s.api.core.v1.ContainerPort: invalid wire type",
        ),
        (
            &[0x80],
            "io.k8s.api.core.v1.ContainerPort: truncated varint",
        ),
    ];
    for (bytes, message) in cases {
        let error =
            decode_message("io.k8s.api.core.v1.ContainerPort", bytes).expect_err("malformed");
        assert_eq!(error.to_string(), *message, "{bytes:?}");
    }
    // Errors inside nested messages name the innermost message; map entries their map field.
    let nested = [0x12, 0x03, 0x32, 0x01, 0x0a]; // PodSpec.containers[0].ports[0]: truncated
    let error = decode_message("io.k8s.api.core.v1.PodSpec", &nested).expect_err("malformed");
    assert_eq!(
        error.to_string(),
        "field 1 of io.k8s.api.core.v1.ContainerPort: truncated varint"
    );
    let entry = [0x12, 0x02, 0x0a, 0x05]; // ConfigMap.data entry with a truncated key
    let error = decode_message("io.k8s.api.core.v1.ConfigMap", &entry).expect_err("malformed");
    assert_eq!(
        error.to_string(),
        "field 2 of io.k8s.api.core.v1.ConfigMap: truncated field"
    );
    let time = [0x08, 0x01, 0x10, 0x80, 0x94, 0xeb, 0xdc, 0x03]; // nanos: 1e9, normalized by Go
    let decoded =
        decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Time", &time).expect("decodes");
    assert_eq!(decoded, json!("1970-01-01T00:00:02Z"));
    let nan = [0x49, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f]; // JSONSchemaProps.maximum (9): NaN
    let error = decode_message(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        &nan,
    )
    .expect_err("NaN has no JSON form");
    assert_eq!(
        error.to_string(),
        "field 9 of io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps: not a finite number"
    );
}

#[test]
fn deep_nesting_is_refused() {
    let mut schema = apiextensions::JsonSchemaProps::default();
    for _ in 0..100 {
        schema = apiextensions::JsonSchemaProps {
            not: Some(Box::new(schema)),
            ..Default::default()
        };
    }
    let error = decode_message(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        &schema.encode_to_vec(),
    )
    .expect_err("too deep");
    assert!(matches!(error, ProtobufError::TooDeep { .. }), "{error}");

    // Nested envelopes inside RawExtensions count too.
    let mut raw = b"{}".to_vec();
    for _ in 0..100 {
        let revision = apps::ControllerRevision {
            data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension { raw: Some(raw) }),
            ..Default::default()
        };
        raw = body("apps/v1", "ControllerRevision", &revision);
    }
    assert!(matches!(
        decode_object(&raw),
        Err(ProtobufError::TooDeep { .. })
    ));
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_and_mutated_bodies_never_panic() {
    let bodies: Vec<Vec<u8>> = [
        fixture!("configmap"),
        fixture!("cronjob"),
        fixture!("deployment"),
        fixture!("ingress"),
        fixture!("job"),
        fixture!("poddisruptionbudget"),
        fixture!("rolebinding"),
        fixture!("secret"),
        fixture!("service"),
    ]
    .iter()
    .map(|(_, pb, _)| pb.to_vec())
    .collect();
    for body in &bodies {
        for len in 0..body.len() {
            // Results vary (a cut at a field boundary is valid); only panics would fail.
            let _ = decode_object(&body[..len]);
        }
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let mut body = bodies[round % bodies.len()].clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = 4 + (rng.next() as usize) % (body.len() - 4);
            body[at] = rng.next() as u8;
        }
        let _ = decode_object(&body);
    }
}

#[test]
fn random_bytes_never_panic_for_any_message() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut buf = Vec::new();
    for message in &tables::MESSAGES {
        for _ in 0..20 {
            buf.clear();
            let len = rng.next() % 64;
            buf.extend((0..len).map(|_| rng.next() as u8));
            let _ = decode_message(message.name, &buf);
            buf.splice(0..0, MAGIC);
            let _ = decode_object(&buf);
        }
    }
}

#[test]
fn output_is_bounded_by_input() {
    // Each 2-byte empty entry of a ResourceList map makes one "0" quantity under key "".
    let mut raw = Vec::new();
    for _ in 0..10_000 {
        raw.extend([0x0a, 0x00]); // ResourceRequirements.limits: empty entry
    }
    let decoded = decode_message("io.k8s.api.core.v1.ResourceRequirements", &raw).expect("decodes");
    assert_eq!(decoded, json!({"limits": {"": "0"}}));
}

// ---------------------------------------------------------------------------------------------
// The generated tables themselves.

#[test]
fn tables_are_consistent() {
    let messages = &tables::MESSAGES;
    assert!(
        messages.windows(2).all(|w| w[0].name < w[1].name),
        "sorted and unique by name"
    );
    let mut covered = 0;
    for message in messages {
        let fields = message.fields();
        assert_eq!(fields.len(), usize::from(message.len), "{}", message.name);
        covered += fields.len();
        let mut tags: Vec<u16> = fields.iter().map(|f| f.tag).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), fields.len(), "{}: duplicate tags", message.name);
        for field in fields {
            if let Kind::Msg(i) | Kind::MapMsg(i) = field.kind {
                assert!(usize::from(i) < messages.len());
            }
            if field.flags & INLINE != 0 {
                assert!(field.json.is_empty());
                let Kind::Msg(i) = field.kind else {
                    panic!("{}: inline non-message", message.name)
                };
                assert!(matches!(messages[usize::from(i)].shape, Shape::Object));
            } else if matches!(message.shape, Shape::Object) {
                assert!(!field.json.is_empty(), "{}.{}", message.name, field.tag);
            }
        }
    }
    assert_eq!(covered, tables::FIELDS.len());
    for (kind, api_version, name) in [
        ("Pod", "v1", "io.k8s.api.core.v1.Pod"),
        ("Deployment", "apps/v1", "io.k8s.api.apps.v1.Deployment"),
        ("Eviction", "policy/v1", "io.k8s.api.policy.v1.Eviction"),
        (
            "DeleteOptions",
            "meta.k8s.io/v1",
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        ),
        (
            "CustomResourceDefinition",
            "apiextensions.k8s.io/v1",
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
        (
            "APIService",
            "apiregistration.k8s.io/v1",
            "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
        ),
        (
            "ClusterRole",
            "rbac.authorization.k8s.io/v1",
            "io.k8s.api.rbac.v1.ClusterRole",
        ),
        (
            "FlowSchema",
            "flowcontrol.apiserver.k8s.io/v1",
            "io.k8s.api.flowcontrol.v1.FlowSchema",
        ),
    ] {
        let index =
            message_for_kind(api_version, kind).unwrap_or_else(|| panic!("{api_version} {kind}"));
        assert_eq!(messages[index].name, name);
    }
}

#[test]
fn json_names_match_k8s_openapi() {
    // Spot checks of names that naive camelCase gets wrong.
    let names = |type_name: &str| -> Vec<&'static str> {
        let index = message_index(type_name).expect("known type");
        tables::MESSAGES[index]
            .fields()
            .iter()
            .map(|f| f.json)
            .collect()
    };
    assert!(names("io.k8s.api.core.v1.PodStatus").contains(&"hostIP"));
    assert!(names("io.k8s.api.core.v1.PodStatus").contains(&"podIPs"));
    assert!(names("io.k8s.api.core.v1.ServiceSpec").contains(&"clusterIPs"));
    assert!(names("io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource").contains(&"volumeID"));
    let schema = names("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps");
    assert!(
        schema.contains(&"$ref")
            && schema.contains(&"$schema")
            && schema.contains(&"x-kubernetes-int-or-string")
    );
    let v1beta1 =
        names("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaProps");
    assert!(v1beta1.contains(&"x-kubernetes-list-map-keys"));
}
