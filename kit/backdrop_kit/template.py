"""Reads template.yaml for the offline kit and the tests: the SAM transform's output, resources, intrinsics.

The kit never interprets `AWS::Serverless::*` itself: it asks the real SAM transform (aws-sam-translator, the
code `sam build` and CloudFormation run) what the template becomes, and reads that.
"""

from __future__ import annotations

import atexit
import copy
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# Local CodeUri/ContentUri folders go through the transform as s3://<this>/<folder>, as `sam validate` does.
LOCAL_CODE_BUCKET = "backdrop-local-code"
TRANSFORM_REGION = "us-east-1"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags turned into their long form ({"Fn::Sub": ...})."""


def _tag(name: str) -> Callable[[yaml.Loader, yaml.Node], dict[str, Any]]:
    key = "Ref" if name == "Ref" else "Condition" if name == "Condition" else f"Fn::{name}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _name in (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "Cidr",
    "GetAZs",
    "ImportValue",
    "Condition",
    "Length",
    "ToJsonString",
):
    _Loader.add_constructor(f"!{_name}", _tag(_name))


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function as the SAM transform made it (AWS::Lambda::Function and its generated role)."""

    logical_id: str
    code_uri: Path
    handler: str
    module_file: Path
    function_name: str
    timeout: int  # resolved with the parameters' defaults, or those given to Template.functions()
    memory: int
    environment: dict[str, Any]
    role_id: str
    policy_statements: list[dict[str, Any]]  # every inline statement of the role, SAM's own included
    managed_policy_arns: list[Any]


class Template:
    def __init__(self, raw: dict[str, Any], path: Path) -> None:
        self.raw = raw
        self.path = path

    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.raw.get("Parameters", {}))

    def parameter_defaults(self) -> dict[str, str]:
        return {name: str(p["Default"]) for name, p in self.parameters().items() if "Default" in p}

    def for_parameters(self, parameters: dict[str, str]) -> Template:
        """The template as CloudFormation would deploy it with these parameter values: resources and outputs
        whose Condition is false left out."""
        raw = dict(self.raw)
        for section in ("Resources", "Outputs"):
            raw[section] = {
                name: body
                for name, body in self.raw.get(section, {}).items()
                if "Condition" not in body or self.condition(body["Condition"], parameters)
            }
        return Template(raw, self.path)

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.raw.get("Resources", {}).items() if v.get("Type") == cfn_type}

    @property
    def is_sam(self) -> bool:
        return "AWS::Serverless-2016-10-31" in _as_list(self.raw.get("Transform", []))

    def transformed(self, parameters: dict[str, str] | None = None) -> Template:
        """What CloudFormation deploys: the real SAM transform applied to this template with these parameter
        values (the defaults where not given), offline. A template without the SAM transform is returned as is."""
        if not self.is_sam:
            return self
        values = {**self.parameter_defaults(), **(parameters or {})}
        return Template(sam_transform(self.raw, values, base=self.path.parent), self.path)

    def functions(self, parameters: dict[str, str] | None = None) -> dict[str, FunctionSpec]:
        """The template's Lambda functions, read from the transformed template (the SAM transform applied
        first when this is the source)."""
        if self.is_sam:
            return self.transformed(parameters).functions(parameters)
        values = {**self.parameter_defaults(), **(parameters or {})}

        def number(value: Any) -> int:
            return int(self.resolve(value, parameters=values, physical={}, attributes={}))

        found = {}
        for logical_id, res in self.resources_of_type("AWS::Lambda::Function").items():
            props = res["Properties"]
            code = props["Code"]
            if code.get("S3Bucket") != LOCAL_CODE_BUCKET:
                raise ValueError(f"{logical_id}: code at {code} is not a local folder of this project")
            code_uri = (self.path.parent / code["S3Key"]).resolve()
            handler = str(props["Handler"])
            module, _, attribute = handler.rpartition(".")
            role_id = props["Role"]["Fn::GetAtt"][0]
            role = self.raw["Resources"][role_id]["Properties"]
            statements = [
                statement
                for policy in role.get("Policies", [])
                for statement in _as_list(policy["PolicyDocument"]["Statement"])
            ]
            found[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=code_uri,
                handler=handler,
                module_file=code_uri / (module.replace(".", "/") + ".py"),
                function_name=attribute,
                timeout=number(props.get("Timeout", 3)),
                memory=number(props.get("MemorySize", 128)),
                environment=dict(props.get("Environment", {}).get("Variables", {})),
                role_id=role_id,
                policy_statements=statements,
                managed_policy_arns=list(role.get("ManagedPolicyArns", [])),
            )
        return found

    def resolve(
        self,
        value: Any,
        *,
        parameters: dict[str, str],
        physical: dict[str, str],
        attributes: dict[tuple[str, str], str],
    ) -> Any:
        """Evaluates the intrinsic functions the template uses, given parameter values, physical names
        (what Ref returns for a resource) and attributes (what GetAtt returns)."""

        declared = self.parameters()

        def ref(name: str) -> Any:
            if name in parameters:
                if declared.get(name, {}).get("Type") == "CommaDelimitedList":
                    return [part.strip() for part in str(parameters[name]).split(",")]
                return parameters[name]
            if name in physical:
                return physical[name]
            raise KeyError(f"cannot resolve Ref {name}")

        def walk(v: Any) -> Any:
            if isinstance(v, list):
                return [walk(x) for x in v]
            if not isinstance(v, dict):
                return v
            if len(v) == 1:
                ((key, arg),) = v.items()
                if key == "Ref":
                    return ref(arg)
                if key == "Fn::GetAtt":
                    logical, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
                    if (logical, attr) not in attributes:
                        raise KeyError(f"cannot resolve GetAtt {logical}.{attr}")
                    return attributes[(logical, attr)]
                if key == "Fn::Sub":
                    text, local = (arg[0], walk(arg[1])) if isinstance(arg, list) else (arg, {})
                    out, i = [], 0
                    while i < len(text):
                        start = text.find("${", i)
                        if start < 0:
                            out.append(text[i:])
                            break
                        end = text.index("}", start)
                        out.append(text[i:start])
                        name = text[start + 2 : end]
                        if name.startswith("!"):
                            out.append("${" + name[1:] + "}")
                        elif name in local:
                            out.append(str(local[name]))
                        elif "." in name:
                            out.append(str(walk({"Fn::GetAtt": name.split(".", 1)})))
                        else:
                            out.append(str(ref(name)))
                        i = end + 1
                    return "".join(out)
                if key == "Fn::FindInMap":
                    mapping, top, second = (str(walk(x)) for x in arg)
                    return self.raw["Mappings"][mapping][top][second]
                if key == "Fn::Join":
                    sep, items = arg
                    return str(sep).join(str(x) for x in walk(items))
                if key == "Fn::Select":
                    index, items = arg
                    return walk(items)[int(walk(index))]
                if key == "Fn::Split":
                    sep, text = arg
                    return str(walk(text)).split(sep)
                if key == "Fn::Equals":
                    a, b = walk(arg)
                    return str(a) == str(b)
                if key == "Fn::Not":
                    return not walk(arg[0])
                if key == "Fn::If":
                    condition, yes, no = arg
                    return walk(yes) if self.condition(condition, parameters) else walk(no)
                if key == "Condition":
                    return self.condition(arg, parameters)
            return {k: walk(x) for k, x in v.items()}

        return walk(value)

    def condition(self, name: str, parameters: dict[str, str]) -> bool:
        definition = self.raw.get("Conditions", {})[name]
        return bool(self.resolve(definition, parameters=parameters, physical={}, attributes={}))

    def parameter_problems(self, given: dict[str, str]) -> list[str]:
        """What CloudFormation refuses of these parameter values before it deploys anything, each said for a
        person: unknown names, AllowedValues (each item of a CommaDelimitedList), AllowedPattern, lengths,
        numbers and their bounds, then the template's Rules. The local stack checks what a deploy would."""
        declared = self.parameters()
        problems = [f"{name}: template.yaml has no such parameter" for name in sorted(set(given) - set(declared))]
        values = {**self.parameter_defaults(), **{k: v for k, v in given.items() if k in declared}}
        for name, spec in declared.items():
            if name not in values:
                problems.append(f"{name}: required (it has no default)")
                continue
            problem = _parameter_problem(spec, values[name])
            if problem:
                problems.append(f"{name}={values[name]!r}: {problem}")
        if problems:
            return problems  # the Rules read the values, which must be well-formed first
        typed = {name: _typed(declared[name], value) for name, value in values.items()}
        for rule_name, rule in self.raw.get("Rules", {}).items():
            if "RuleCondition" in rule and not _rule_holds(rule["RuleCondition"], typed):
                continue
            for assertion in rule.get("Assertions", []):
                if not _rule_holds(assertion["Assert"], typed):
                    description = " ".join(str(assertion.get("AssertDescription", "")).split())
                    problems.append(f"{rule_name}: {description or 'the rule does not hold'}")
        return problems


def load_template(path: Path | None = None) -> Template:
    target = path or TEMPLATE
    with open(target, encoding="utf-8") as handle:
        raw = yaml.load(handle, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    return Template(raw, target)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _items(spec: dict[str, Any], value: str) -> list[str]:
    """A CommaDelimitedList's items as CloudFormation splits them (each stripped of surrounding spaces)."""
    return [item.strip() for item in value.split(",")] if spec.get("Type") == "CommaDelimitedList" else [value]


def _parameter_problem(spec: dict[str, Any], value: str) -> str | None:
    import re

    kind = spec.get("Type", "String")
    allowed = [str(v) for v in spec.get("AllowedValues", [])]
    if allowed:
        wrong = [item for item in _items(spec, value) if item not in allowed]
        if wrong:
            return f"{', '.join(map(repr, wrong))} not allowed; choose from {', '.join(allowed)}"
    pattern = spec.get("AllowedPattern")
    if pattern and not all(re.fullmatch(pattern, item) for item in _items(spec, value)):
        return spec.get("ConstraintDescription") or f"must match {pattern}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"at least {spec['MinLength']} characters"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"at most {spec['MaxLength']} characters"
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            return "not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"at least {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"at most {spec['MaxValue']}"
    return None


def _typed(spec: dict[str, Any], value: str) -> Any:
    return _items(spec, value) if spec.get("Type") == "CommaDelimitedList" else value


def _rule_holds(node: Any, values: dict[str, Any]) -> Any:
    """The intrinsics CloudFormation allows in Rules, on parameter values (Ref)."""
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise ValueError(f"not a rule function: {node!r}")
    ((key, arg),) = node.items()
    if key == "Ref":
        return values[arg]
    args = [_rule_holds(a, values) for a in _as_list(arg)]
    if key == "Fn::Equals":
        return args[0] == args[1]
    if key == "Fn::Not":
        return not args[0]
    if key == "Fn::And":
        return all(args)
    if key == "Fn::Or":
        return any(args)
    if key == "Fn::Contains":
        return args[1] in args[0]
    if key == "Fn::EachMemberIn":
        return all(item in args[1] for item in args[0])
    if key == "Fn::EachMemberEquals":
        return all(item == args[1] for item in args[0])
    raise ValueError(f"{key} is not evaluated by the kit: extend backdrop_kit.template._rule_holds")


class SamUnavailable(RuntimeError):
    """aws-sam-cli's environment (which holds aws-sam-translator) is not installed."""


def sam_python() -> str:
    """The Python of aws-sam-cli's environment: BACKDROP_SAM_PYTHON, else the project's .venv-sam, else the
    interpreter of the `sam` command on PATH (a `uv tool` or pipx install)."""
    given = os.environ.get("BACKDROP_SAM_PYTHON")
    if given:
        return given
    local = ROOT / ".venv-sam" / "bin" / "python"
    if local.exists():
        return str(local)
    sam = shutil.which("sam")
    if sam:
        with open(sam, "rb") as handle:
            first = handle.readline().decode(errors="replace").strip()
        if first.startswith("#!") and "python" in first:
            return first[2:].split()[0]
    raise SamUnavailable(
        "the local stack is built from what the SAM transform makes of template.yaml, and the transform runs in "
        "aws-sam-cli's environment, which is not installed: run `make sam` (or point BACKDROP_SAM_PYTHON at a "
        "Python with aws-sam-translator)"
    )


class _TransformWorker:
    """One long-lived transform process per kit process (its start costs most of a second; a transform costs
    milliseconds). It reads from a pipe and ends when the pipe closes, so it never outlives this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._cache: dict[str, dict[str, Any]] = {}

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sam_python(), str(Path(__file__).with_name("sam_transform.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # samtranslator's own metric chatter; failures come back as JSON
                text=True,
            )
            atexit.register(self.close)
        return self._proc

    def transform(self, raw: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
        line = json.dumps({"template": raw, "parameters": parameters, "region": TRANSFORM_REGION}, sort_keys=True)
        key = hashlib.sha256(line.encode()).hexdigest()
        with self._lock:
            if key not in self._cache:
                proc = self._start()
                stdin: IO[str] | None = proc.stdin
                stdout: IO[str] | None = proc.stdout
                assert stdin is not None and stdout is not None
                try:
                    stdin.write(line + "\n")
                    stdin.flush()
                    answer = stdout.readline()
                except BrokenPipeError:
                    answer = ""
                if not answer:
                    self.close()
                    raise SamUnavailable(f"the SAM transform process ({sam_python()}) ended without an answer")
                reply = json.loads(answer)
                if "error" in reply:
                    raise ValueError(f"the SAM transform refused the template: {reply['error']}")
                self._cache[key] = reply["template"]
            return copy.deepcopy(self._cache[key])

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


_worker = _TransformWorker()


def sam_transform(raw: dict[str, Any], parameters: dict[str, str], *, base: Path) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of `raw` with these parameter values. Local code
    folders become s3://LOCAL_CODE_BUCKET/<folder relative to base>, and functions read them back from there."""
    source = copy.deepcopy(raw)
    for resource in source.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        for field in ("CodeUri", "ContentUri"):
            if isinstance(props.get(field), str) and "://" not in props[field]:
                folder = (base / props[field]).resolve().relative_to(base.resolve())
                props[field] = f"s3://{LOCAL_CODE_BUCKET}/{folder.as_posix()}/"
    return _worker.transform(source, parameters)


def allows(statements: list[dict[str, Any]], action: str, resource_arn: str, *, resolve: Callable[[Any], Any]) -> bool:
    """Whether an Allow statement grants `action` on `resource_arn` (IAM wildcards in both)."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a).lower() for a in _as_list(resolve(statement.get("Action", [])))]
        if not any(fnmatch.fnmatchcase(action.lower(), pattern) for pattern in actions):
            continue
        resources = [str(r) for r in _as_list(resolve(statement.get("Resource", [])))]
        if any(fnmatch.fnmatchcase(resource_arn, pattern) for pattern in resources):
            return True
    return False
