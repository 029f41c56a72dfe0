"""The Kubernetes deployment (deploy/k8s): the work pool's job template, rendered for each
deployment with Prefect's own Kubernetes worker code (prefect-kubernetes), and the inference
workers' manifest read into the Kubernetes client's own models. No cluster is needed."""

import asyncio
import json
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"


def _template() -> dict:
    return json.loads((K8S / "base-job-template.json").read_text())


def _deployments() -> list[dict]:
    return yaml.safe_load((K8S / "prefect.yaml").read_text())["deployments"]


def test_every_deployment_names_a_flow_that_exists_and_only_variables_the_template_has() -> None:
    import importlib

    variables = set(_template()["variables"]["properties"])
    names = set()
    for d in _deployments():
        module, _, function = d["entrypoint"].partition(":")
        assert callable(getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), function))
        assert d["work_pool"]["name"] == "audiox-k8s"
        assert set(d["work_pool"]["job_variables"]) <= variables, set(d["work_pool"]["job_variables"]) - variables
        names.add(d["name"])
    assert names == {"on-demand-k8s", "nightly-k8s"}


@pytest.mark.integration
def test_the_job_template_renders_a_kubernetes_job_for_each_deployment(prefect_api) -> None:
    """The server accepts the template for a kubernetes pool; each deployment's job variables render
    into a Job that runs the flow in our image, on the shared AUDIOX_HOME claim, with its env."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = _template()
    defaults = {k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v}

    async def render() -> list[dict]:
        async with get_client() as client:
            pool = await client.create_work_pool(
                WorkPoolCreate(name=f"audiox-k8s-{uuid.uuid4().hex[:6]}", type="kubernetes", base_job_template=template)
            )
            assert pool.base_job_template == template
            manifests = []
            for d in _deployments():
                values = {**defaults, **d["work_pool"]["job_variables"]}
                config = await KubernetesWorkerJobConfiguration.from_template_and_values(
                    pool.base_job_template, values, client=client
                )
                config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="bikes", flow_id=uuid.uuid4()))
                manifests.append(config.job_manifest)
            return manifests

    for manifest in asyncio.run(render()):
        assert manifest["kind"] == "Job" and manifest["metadata"]["namespace"] == "audiox"
        pod = manifest["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "registry.example.com/audiox-studio:cpu"
        assert container["args"] == ["prefect", "flow-run", "execute"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["AUDIOX_HOME"] == "/data" and env["AUDIOX_INFERENCE"] == "task-worker"
        assert env["AUDIOX_SHARED_STORE"].startswith("s3://")  # shared through S3, not a shared disk
        assert env["PREFECT__FLOW_RUN_ID"]  # the flow run this Job executes
        assert container["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
        assert container["volumeMounts"] == [{"name": "audiox-home", "mountPath": "/data"}]
        assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "audiox-home"}


def test_each_inference_worker_asks_for_one_gpu_and_shares_the_flow_runs_home() -> None:
    from kubernetes_asyncio.client import ApiClient

    raw = yaml.safe_load((K8S / "inference-worker.yaml").read_text())

    async def read() -> object:
        async with ApiClient() as api:
            return api._ApiClient__deserialize(raw, "V1Deployment")  # the client's own schema

    deployment = asyncio.run(read())
    (container,) = deployment.spec.template.spec.containers
    assert container.command == ["audiox-studio", "inference-worker"]
    assert container.resources.limits["nvidia.com/gpu"] == "1"  # a quantity, as the API gives it
    env = {e.name: e.value for e in container.env}
    assert env["AUDIOX_HOME"] == "/data" and env["AUDIOX_SHARED_STORE"].startswith("s3://")
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    assert mounts["audiox-home"] == "/data"
    volumes = {v.name: v for v in deployment.spec.template.spec.volumes}
    assert volumes["audiox-home"].empty_dir is not None  # scratch: nothing is shared through the pod's disk
    assert volumes["models"].persistent_volume_claim.claim_name == "audiox-models"


def test_the_image_installs_the_pinned_constraints_for_both_variants() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile
    assert "ARG TORCH_INDEX" in dockerfile and "torch==$(sed -n 's/^torch==//p' constraints.txt)" in dockerfile
    for folder in ("audiox_core", "flows", "tasks", "db", "cli"):
        assert f"COPY {folder} {folder}" in dockerfile
