"""The official Kubernetes Python client against a running wasmkube server.

Run by the Rust end-to-end suite (tests/e2e/python.rs), which starts the server and passes its
kubeconfig in WASMKUBE_KUBECONFIG.
"""

import json
import os
import threading
import time

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api_client():
    cfg = client.Configuration()
    config.load_kube_config(config_file=os.environ["WASMKUBE_KUBECONFIG"], client_configuration=cfg)
    return client.ApiClient(cfg)


@pytest.fixture(scope="module")
def core(api_client):
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="module")
def apps(api_client):
    return client.AppsV1Api(api_client)


def deployment(name, replicas=1):
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": name}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="hello-http:v1")]),
            ),
        ),
    )


def test_create_list_patch_delete(core, apps):
    created = apps.create_namespaced_deployment("default", deployment("py-web", 2))
    assert created.metadata.uid
    assert created.metadata.resource_version
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted by the server

    listed = apps.list_namespaced_deployment("default", label_selector="app=py-web")
    assert [d.metadata.name for d in listed.items] == ["py-web"]

    patched = apps.patch_namespaced_deployment("py-web", "default", {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4
    assert patched.metadata.generation == 2

    scale = apps.read_namespaced_deployment_scale("py-web", "default")
    assert scale.spec.replicas == 4

    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", deployment("py-web"))
    assert err.value.status == 409

    apps.delete_namespaced_deployment("py-web", "default")
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("py-web", "default")
    assert err.value.status == 404


def test_stale_update_conflicts(core):
    cm = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cas"), data={"a": "1"})
    )
    cm.data["a"] = "2"
    core.replace_namespaced_config_map("py-cas", "default", cm)
    cm.data["a"] = "3"  # still carries the old resourceVersion
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("py-cas", "default", cm)
    assert err.value.status == 409
    assert core.read_namespaced_config_map("py-cas", "default").data["a"] == "2"


def test_watch_from_resource_version(core):
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    names = [f"py-watch-{i}" for i in range(3)]
    for n in names:
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=n)))
    core.delete_namespaced_config_map(names[0], "default")

    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10):
        name = event["object"].metadata.name
        if name.startswith("py-watch-"):
            seen.append((event["type"], name))
        if len(seen) == 4:
            w.stop()
    assert seen == [("ADDED", names[0]), ("ADDED", names[1]), ("ADDED", names[2]), ("DELETED", names[0])]


def test_live_watch_with_selector(core):
    got = []
    ready = threading.Event()

    def run():
        w = watch.Watch()
        ready.set()
        for event in w.stream(core.list_namespaced_config_map, "default", label_selector="py=live", timeout_seconds=15):
            got.append((event["type"], event["object"].metadata.name))
            if len(got) == 2:
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    ready.wait()
    time.sleep(1)
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-live", labels={"py": "live"}))
    )
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-other")))
    # Relabelling moves the object out of the selection: a selector watch reports DELETED.
    core.patch_namespaced_config_map("py-live", "default", {"metadata": {"labels": {"py": "gone"}}})
    t.join(timeout=20)
    assert got == [("ADDED", "py-live"), ("DELETED", "py-live")]


def test_pagination(core):
    for i in range(7):
        core.create_namespaced_secret(
            "default", client.V1Secret(metadata=client.V1ObjectMeta(name=f"py-page-{i}", labels={"page": "yes"}))
        )
    names, token = [], None
    while True:
        page = core.list_namespaced_secret("default", label_selector="page=yes", limit=3, _continue=token)
        assert len(page.items) <= 3
        names += [s.metadata.name for s in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"py-page-{i}" for i in range(7)]


def test_validation_error_names_field(core):
    bad = client.V1Service(
        metadata=client.V1ObjectMeta(name="py-bad"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=70000)]),
    )
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service("default", bad)
    assert err.value.status == 422
    assert "spec.ports[0].port" in err.value.body


def test_dry_run_persists_nothing(core):
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-dry")), dry_run="All"
    )
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("py-dry", "default")
    assert err.value.status == 404


def test_service_account_token_and_rbac(api_client, core):
    """A ServiceAccount's token (TokenRequest) authenticates; RBAC decides what it may do."""
    core.create_namespaced_service_account(
        "default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="py-reader"))
    )
    issued = core.create_namespaced_service_account_token(
        "py-reader", "default", client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    )
    assert issued.status.token
    assert issued.status.expiration_timestamp

    cfg = client.Configuration()
    config.load_kube_config(config_file=os.environ["WASMKUBE_KUBECONFIG"], client_configuration=cfg)
    # The kubeconfig's admin token would come back through its refresh hook: drop both.
    cfg.refresh_api_key_hook = None
    cfg.api_key = {"BearerToken": "Bearer " + issued.status.token}
    reader = client.CoreV1Api(client.ApiClient(cfg))

    with pytest.raises(ApiException) as refused:
        reader.list_namespaced_pod("default")
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert 'User "system:serviceaccount:default:py-reader" cannot list resource "pods"' in message

    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role_binding(
        "default",
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="py-reader-view"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="py-reader", namespace="default")],
        ),
    )
    reader.list_namespaced_pod("default")  # allowed now
    with pytest.raises(ApiException) as refused:
        reader.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="nope"))
        )
    assert refused.value.status == 403
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("nope", "default")
    assert missing.value.status == 404
