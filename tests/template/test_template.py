"""template.yaml: lint-clean, buildable for arm64, and declaring every handler, variable and guard the code needs."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from backdrop.config import ProcessorConfig, RecorderConfig
from backdrop_kit.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
CONFIGS = {"ProcessorFunction": ProcessorConfig, "RecorderFunction": RecorderConfig}
ELF_MACHINES = {183: "arm64", 62: "x86_64"}


def sam_command() -> str:
    found = shutil.which("sam") or (str(ROOT / ".venv-sam/bin/sam") if (ROOT / ".venv-sam/bin/sam").exists() else None)
    if found is None:
        pytest.fail("aws-sam-cli is not installed: run `make sam` (make test installs it into .venv-sam)")
    return found


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(ROOT / "template.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint():
    result = subprocess.run(
        [sam_command(), "validate", "--lint", "--template", str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("function_id", sorted(TEMPLATE.functions()))
def test_handler_exists(function_id):
    spec = TEMPLATE.functions()[function_id]
    assert spec.module_file.is_file(), f"{function_id}: {spec.module_file} does not exist"
    tree = ast.parse(spec.module_file.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert spec.function_name in names, f"{function_id}: no function {spec.function_name} in {spec.module_file}"


@pytest.mark.parametrize("function_id", sorted(CONFIGS))
def test_environment_matches_the_config_model(function_id):
    config = CONFIGS[function_id]
    declared = set(TEMPLATE.functions()[function_id].environment)
    missing = config.required_variable_names() - declared
    assert not missing, f"{function_id} lacks required variables {missing}"
    stray = {v for v in declared - config.variable_names() if not v.startswith("POWERTOOLS_")}
    assert not stray, f"{function_id} declares variables its code never reads: {stray}"


def test_every_function_has_a_config_model():
    assert set(TEMPLATE.functions()) == set(CONFIGS)


def test_layer_is_built_for_the_functions_architecture():
    [layer] = TEMPLATE.resources_of_type("AWS::Serverless::LayerVersion").values()
    build_arch = layer["Metadata"]["BuildArchitecture"]
    architecture = TEMPLATE.parameters()["Architecture"]
    # Metadata cannot follow a parameter, so the parameter may only offer what the layer is built for.
    assert architecture["AllowedValues"] == [build_arch] and architecture["Default"] == build_arch
    assert layer["Properties"]["CompatibleArchitectures"] == [build_arch]
    runtime = TEMPLATE.parameters()["Runtime"]
    assert set(runtime["AllowedValues"]) <= set(layer["Properties"]["CompatibleRuntimes"])
    assert layer["Metadata"]["BuildMethod"] == runtime["Default"]


def test_loop_guard_generated_prefix_is_outside_the_notification_filter():
    [bucket] = TEMPLATE.resources_of_type("AWS::S3::Bucket").values()
    [queue_config] = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    [rule] = queue_config["Filter"]["S3Key"]["Rules"]
    assert (rule["Name"], rule["Value"]) == ("prefix", "incoming/")
    generated = TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"]["GENERATED_PREFIX"]
    assert not generated.startswith(rule["Value"])
    processor_env = TEMPLATE.functions()["ProcessorFunction"].environment
    assert processor_env["INCOMING_PREFIX"] == rule["Value"]


def test_processor_stays_under_claids_rate_limit_by_default():
    [event] = TEMPLATE.functions()["ProcessorFunction"].events.values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert int(TEMPLATE.parameters()["ProcessorMaxConcurrency"]["Default"]) <= 4


def test_jobs_queue_outlives_idempotency_and_dead_letters():
    queue = TEMPLATE.resources_of_type("AWS::SQS::Queue")["JobsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    timeout = TEMPLATE.functions()["ProcessorFunction"].timeout
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert ProcessorConfig.model_fields["idempotency_ttl_seconds"].default > queue["MessageRetentionPeriod"]


def _runs(command: list[str], env: dict[str, str] | None = None) -> bool:
    try:
        return subprocess.run(command, capture_output=True, env=env).returncode == 0
    except OSError:
        return False


def _python313() -> str | None:
    """None when python3.13 already runs from PATH; a PYENV_VERSION that makes it run; LookupError if neither."""
    if _runs(["python3.13", "--version"]):
        return None
    pyenv = shutil.which("pyenv")
    if pyenv:
        versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True).stdout.split()
        match = [v for v in versions if v.startswith("3.13")]
        if match:
            current = subprocess.run([pyenv, "version-name"], capture_output=True, text=True).stdout.strip()
            version = f"{current.split(':')[0]}:{match[-1]}"
            if _runs(["python3.13", "--version"], {**os.environ, "PYENV_VERSION": version}):
                return version
    raise LookupError


@pytest.mark.slow
def test_sam_build_makes_an_arm64_layer(tmp_path):
    try:
        pyenv_version = _python313()
    except LookupError:
        pytest.skip("python3.13 not found: install it (e.g. `pyenv install 3.13`) to build the python3.13 runtime")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    if pyenv_version:
        env["PYENV_VERSION"] = pyenv_version
    build_dir = tmp_path / "build"
    result = subprocess.run(
        [
            sam_command(),
            "build",
            "--build-dir",
            str(build_dir),
            "--template",
            str(ROOT / "template.yaml"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = build_dir / "BackdropLayer" / "python"
    assert (layer / "backdrop" / "config.py").is_file()
    [extension] = list((layer / "pydantic_core").glob("_pydantic_core*.so"))
    header = extension.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    machine = int.from_bytes(header[18:20], "little")
    assert ELF_MACHINES.get(machine) == TEMPLATE.parameters()["Architecture"]["Default"], (
        f"pydantic-core built for {ELF_MACHINES.get(machine, machine)}"
    )
    for function_id, spec in TEMPLATE.functions().items():
        assert (build_dir / function_id / spec.module_file.name).is_file()
