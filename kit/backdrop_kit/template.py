"""Reads template.yaml for the offline kit and the tests: resources, functions (Globals merged), intrinsics."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


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
    logical_id: str
    code_uri: Path
    handler: str
    module_file: Path
    function_name: str
    timeout: int  # resolved with the parameters' defaults, or those given to Template.functions()
    memory: int
    environment: dict[str, Any]
    policy_statements: list[dict[str, Any]]
    events: dict[str, dict[str, Any]]


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

    def functions(self, parameters: dict[str, str] | None = None) -> dict[str, FunctionSpec]:
        globals_ = self.raw.get("Globals", {}).get("Function", {})
        values = {**self.parameter_defaults(), **(parameters or {})}

        def number(value: Any) -> int:
            return int(self.resolve(value, parameters=values, physical={}, attributes={}))

        found = {}
        for logical_id, res in self.resources_of_type("AWS::Serverless::Function").items():
            props = res.get("Properties", {})
            code_uri = (self.path.parent / props["CodeUri"]).resolve()
            handler = props.get("Handler", globals_.get("Handler"))
            module, _, attribute = str(handler).rpartition(".")
            environment = {
                **globals_.get("Environment", {}).get("Variables", {}),
                **props.get("Environment", {}).get("Variables", {}),
            }
            statements: list[dict[str, Any]] = []
            for policy in props.get("Policies", []) or []:
                if isinstance(policy, dict) and "Statement" in policy:
                    statements.extend(policy["Statement"])
            found[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=code_uri,
                handler=str(handler),
                module_file=code_uri / (module.replace(".", "/") + ".py"),
                function_name=attribute,
                timeout=number(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=number(props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment=environment,
                policy_statements=statements,
                events=dict(props.get("Events", {})),
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


def load_template(path: Path | None = None) -> Template:
    target = path or TEMPLATE
    with open(target, encoding="utf-8") as handle:
        raw = yaml.load(handle, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    return Template(raw, target)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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
