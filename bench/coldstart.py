"""Each function's cold start (its handler module's import, module-level clients included) against its floor: a
bare script that imports the same libraries and creates the same clients, timed in fresh interpreters so nothing
is already imported.

The floor is found by observation, not kept as a list: one child imports the handler and reports every module it
loaded; another imports it with botocore's and httpx's client constructors wrapped and reports which AWS clients
(by service) and httpx clients the import created (the wrapping imports httpx itself, so that child's modules are
not the handler's). The floor script imports those modules, except the project's own (the function's code and the
backdrop layer), in the order the handler loaded them, and creates the same clients. So when a handler makes a
client lazily, on first use, or never imports a library, the floor loses it too, and what the ratio measures is
what the project's own code adds at import: its modules, its configuration, its objects.

Both sides load bytecode: pip compiled the libraries when it installed them, and the project's own code is compiled
here before anything is timed (a machine with PYTHONDONTWRITEBYTECODE set would otherwise compile it from source on
every import, and the floor never does). A deploy loads bytecode too: `make build` compiles what `sam build` made
(docs/decisions.md 47).
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from backdrop_kit.stack import LocalStack

REPETITIONS = 7
ROOT = Path(__file__).resolve().parents[1]
OWN_CODE = (ROOT / "functions", ROOT / "layers")

HANDLER = """
import importlib.util, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location({name!r}, {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - t)
"""

# Imports the handler as it is and reports the modules it loaded, in order.
MODULES = """
import importlib.util, json, sys
before = set(sys.modules)
spec = importlib.util.spec_from_file_location({name!r}, {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
modules = []
for name, mod in list(sys.modules.items()):
    if name in before or name == {name!r}:
        continue
    modules.append([name, getattr(mod, "__file__", None) or ""])
print(json.dumps(modules))
"""

# Imports the handler with the client constructors wrapped, then reports what it made.
CLIENTS = """
import importlib.util, json
import botocore.session, httpx
made = {{"aws": [], "httpx": []}}
create_client = botocore.session.Session.create_client
def recording_create_client(self, service_name, *args, **kwargs):
    made["aws"].append(service_name)
    return create_client(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = recording_create_client
for cls in (httpx.Client, httpx.AsyncClient):
    def recording_init(self, *args, _init=cls.__init__, _name=cls.__name__, **kwargs):
        made["httpx"].append(_name)
        _init(self, *args, **kwargs)
    cls.__init__ = recording_init
spec = importlib.util.spec_from_file_location({name!r}, {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(made))
"""


@dataclass(frozen=True)
class Floor:
    """What a handler's import brings in that is not the project's own: libraries and clients."""

    modules: tuple[str, ...]
    aws_clients: tuple[str, ...]  # service names, as created (a service twice: two clients)
    httpx_clients: tuple[str, ...]  # "Client" / "AsyncClient"

    def script(self) -> str:
        lines = [
            "import importlib, time",
            "t = time.perf_counter()",
            f"for name in {list(self.modules)!r}:",
            "    try:",
            "        importlib.import_module(name)",
            "    except Exception:",  # a module only its parent can load (a vendored alias): the parent did
            "        pass",
        ]
        if self.aws_clients:
            lines += ["import boto3", *[f"boto3.client({service!r})" for service in self.aws_clients]]
        if self.httpx_clients:
            lines += ["import httpx", *[f"httpx.{cls}()" for cls in self.httpx_clients]]
        lines.append("print(time.perf_counter() - t)")
        return "\n".join(lines)

    def describe(self) -> str:
        clients = [*self.aws_clients, *(f"httpx.{c}" for c in self.httpx_clients)]
        return ", ".join(clients) or "none"


@dataclass(frozen=True)
class ColdStart:
    function_id: str
    seconds: float  # median import time of the handler module
    floor_seconds: float  # median time of its floor script, measured interleaved with it
    floor: Floor
    heaviest: tuple[tuple[str, float], ...] = ()  # top-level packages by cumulative import seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_seconds


def _is_own(path: str) -> bool:
    return bool(path) and any(Path(path).resolve().is_relative_to(own) for own in OWN_CODE)


def observe_floor(name: str, path: Path, env: dict[str, str]) -> Floor:
    modules = json.loads(_run(MODULES.format(name=name, path=str(path)), env).stdout.strip().splitlines()[-1])
    made = json.loads(_run(CLIENTS.format(name=name, path=str(path)), env).stdout.strip().splitlines()[-1])
    return Floor(
        modules=tuple(module for module, file in modules if not _is_own(file)),
        aws_clients=tuple(made["aws"]),
        httpx_clients=tuple(made["httpx"]),
    )


def compile_own_code() -> None:
    """Bytecode for the functions and the layer, as pip wrote it for the libraries (see the module's docstring)."""
    for own in OWN_CODE:
        if not compileall.compile_dir(own, quiet=1):
            raise RuntimeError(f"could not compile {own}")


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120
    )


def _time(code: str, env: dict[str, str]) -> float:
    return float(_run(code, env).stdout.strip().splitlines()[-1])


def measure(stack: LocalStack, repetitions: int = REPETITIONS) -> list[ColdStart]:
    compile_own_code()
    results = []
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    for function_id, spec in stack.template.functions(stack.parameters).items():
        env = {**base, **stack.function_environment(function_id)}
        name, path = spec.module_file.stem, Path(spec.module_file)
        code = HANDLER.format(name=name, path=str(path))
        floor = observe_floor(name, path, env)
        bare = floor.script()
        handler_times, floor_times = [], []
        for _ in range(repetitions):
            floor_times.append(_time(bare, env))
            handler_times.append(_time(code, env))
        results.append(
            ColdStart(
                function_id,
                statistics.median(handler_times),
                statistics.median(floor_times),
                floor,
                heaviest_imports(code, env),
            )
        )
    return results


def heaviest_imports(code: str, env: dict[str, str], top: int = 6) -> tuple[tuple[str, float], ...]:
    """`python -X importtime`: the packages the handler pulls in first-hand, heaviest first (cumulative)."""
    totals = _import_times(code, env)
    for startup in _import_times("pass", env):  # imported before the handler's code runs
        totals.pop(startup, None)
    return tuple(sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top])


def _import_times(code: str, env: dict[str, str]) -> dict[str, float]:
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=True
    ).stderr
    totals: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not cumulative.strip().isdigit() or name.startswith("   "):
            continue  # the header, or a nested import (counted in its parent's cumulative time)
        package = name.strip().split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(cumulative) / 1e6
    return totals


def summary(results: list[ColdStart]) -> str:
    return json.dumps(
        {
            r.function_id: {
                "seconds": round(r.seconds, 4),
                "floor": round(r.floor_seconds, 4),
                "ratio": round(r.ratio, 2),
            }
            for r in results
        }
    )
