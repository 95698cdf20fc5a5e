"""checkov, the infrastructure-as-code scanner, on what CloudFormation deploys: template.yaml after the SAM transform.

What makes the scan say what the stack is:
- It reads the transformed template, so the roles, permissions, event source mappings and rules SAM generates
  are scanned as they are deployed, not as the SAM shorthand describes them.
- Every optional resource is scanned. checkov leaves out a resource whose Condition is false for the parameters'
  defaults (the Claid connector's secret, for one), so the copy it reads has no Conditions.
- Skips live in template.yaml next to the resource, with the reason: `Metadata: checkov: skip: [{id, comment}]`.
  The SAM transform itself carries a function's Metadata onto the AWS::Lambda::Function it makes under the same
  logical id (and onto its EventInvokeConfig), not onto the role, permissions, rules or event source mappings it
  adds: those are scanned without exception.
- A skip must still skip something. checkov runs once over two copies, with and without the skips: a skip of
  template.yaml whose check does not fail without it (the check passes now, or never runs on what SAM made of that
  resource) explains nothing and is reported, like a finding.

checkov runs from its own environment (`make checkov`, .venv-checkov): it pins boto3, networkx and packaging
releases the app and cfn-lint must not inherit.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backdrop_kit.template import ROOT, Template, load_template

WITH_SKIPS = "transformed.json"
WITHOUT_SKIPS = "transformed-without-skips.json"
# What checkov puts in a skip's place when its comment is missing.
NO_COMMENT = "No comment provided"
HOW_TO_SKIP = (
    "Fix each finding, or skip it in template.yaml next to its resource, with the reason:\n"
    "    Metadata:\n      checkov:\n        skip:\n"
    "          - id: CKV_AWS_...\n            comment: why it does not apply here"
)


class CheckovUnavailable(RuntimeError):
    """checkov's environment is not installed."""


@dataclass(frozen=True)
class Check:
    check_id: str
    resource: str  # logical id (SAM makes a function's AWS::Lambda::Function under the function's own)
    resource_type: str
    title: str = ""
    reason: str = ""  # a skip's comment

    def __str__(self) -> str:
        text = f"{self.check_id} {self.resource} ({self.resource_type})"
        if self.title:
            text += f": {self.title}"
        return text


@dataclass(frozen=True)
class Scan:
    checkov_version: str
    passed: int
    failed: tuple[Check, ...]  # with template.yaml's skips in place: findings nobody has explained
    skipped: tuple[Check, ...]  # skipped by template.yaml, each with its reason
    stale: tuple[Check, ...]  # skips whose check does not fail without them: they explain nothing
    unreasoned: tuple[Check, ...]  # skips without a reason
    scanned: Mapping[str, str] = field(default_factory=dict)  # logical id -> type, every resource checkov checked

    def problems(self) -> list[str]:
        return (
            [f"FAILED  {check}" for check in self.failed]
            + [
                f"STALE   {check}: it does not fail without this skip (it passes, or does not run on what SAM "
                "makes of this resource); remove the skip"
                for check in self.stale
            ]
            + [f"REASON? {check}: a skip needs a comment saying why" for check in self.unreasoned]
        )


def checkov_command() -> str:
    """BACKDROP_CHECKOV, else the project's .venv-checkov, else `checkov` on PATH."""
    given = os.environ.get("BACKDROP_CHECKOV")
    if given:
        return given
    local = ROOT / ".venv-checkov" / "bin" / "checkov"
    if local.exists():
        return str(local)
    found = shutil.which("checkov")
    if found:
        return found
    raise CheckovUnavailable("checkov is not installed: run `make checkov` (make lint and make test install it)")


def declared_skips(template: dict[str, Any]) -> Iterator[Check]:
    """The checkov skips each resource declares in its Metadata."""
    for logical_id, resource in template.get("Resources", {}).items():
        for skip in _skips_of(resource):
            yield Check(
                check_id=str(skip.get("id", "")) if isinstance(skip, dict) else "",
                resource=logical_id,
                resource_type=str(resource.get("Type", "")),
                reason=str(skip.get("comment") or "").strip() if isinstance(skip, dict) else "",
            )


def without_reason(template: dict[str, Any]) -> tuple[Check, ...]:
    """The skips that do not say which check or why."""
    return tuple(s for s in declared_skips(template) if not s.check_id or not s.reason or s.reason == NO_COMMENT)


def unconditional(template: dict[str, Any]) -> dict[str, Any]:
    """The template with every resource present, whatever the parameters: checkov would leave out those whose
    Condition is false for the defaults."""
    out = copy.deepcopy(template)
    for resource in out.get("Resources", {}).values():
        resource.pop("Condition", None)
    return out


def without_skips(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    for resource in out.get("Resources", {}).values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            metadata.pop("checkov", None)
            metadata.pop("bridgecrew", None)  # checkov reads skips under this key too
    return out


def scan(template: Template | None = None, parameters: dict[str, str] | None = None) -> Scan:
    """Run checkov on the SAM transform of `template` (template.yaml by default) for these parameter values."""
    source = template or load_template()
    target = unconditional(source.transformed(parameters).raw)
    with tempfile.TemporaryDirectory(prefix="backdrop-checkov-") as folder:
        Path(folder, WITH_SKIPS).write_text(json.dumps(target, indent=1))
        Path(folder, WITHOUT_SKIPS).write_text(json.dumps(without_skips(target), indent=1))
        report = _run_checkov(Path(folder), [WITH_SKIPS, WITHOUT_SKIPS])
    results = report["results"]
    by_file = {
        outcome: {
            name: [_check(item) for item in results.get(f"{outcome}_checks", []) if _file(item) == name]
            for name in (WITH_SKIPS, WITHOUT_SKIPS)
        }
        for outcome in ("passed", "failed", "skipped")
    }
    failing_without_skips = {(c.check_id, c.resource) for c in by_file["failed"][WITHOUT_SKIPS]}
    declared = list(declared_skips(source.raw))
    scanned = {c.resource: c.resource_type for outcome in by_file.values() for c in outcome[WITH_SKIPS]}
    return Scan(
        checkov_version=str(report.get("summary", {}).get("checkov_version", "")),
        passed=len(by_file["passed"][WITH_SKIPS]),
        failed=tuple(by_file["failed"][WITH_SKIPS]),
        skipped=tuple(by_file["skipped"][WITH_SKIPS]),
        # Declared, not only reported: a skip naming a check that never runs on its resource is stale too.
        stale=tuple(s for s in declared if (s.check_id, s.resource) not in failing_without_skips),
        unreasoned=without_reason(source.raw),
        scanned=scanned,
    )


def _skips_of(resource: dict[str, Any]) -> list[Any]:
    metadata = resource.get("Metadata")
    if not isinstance(metadata, dict):
        return []
    skips: list[Any] = []
    for key in ("checkov", "bridgecrew"):
        section = metadata.get(key)
        if isinstance(section, dict):
            skips.extend(section.get("skip") or [])
    return skips


def _run_checkov(folder: Path, files: list[str]) -> dict[str, Any]:
    command = [checkov_command(), "--framework", "cloudformation", "--output", "json", "--soft-fail"]
    # Offline: no platform metadata, no update check (the version is pinned in the Makefile).
    command += ["--skip-download", "--file", *files]
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=folder, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"checkov failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout)
    if isinstance(report, list):  # one report per framework; only cloudformation was asked for
        [report] = [r for r in report if r.get("check_type") == "cloudformation"]
    summary = report.get("summary", {})
    if "results" not in report or summary.get("parsing_errors"):
        raise RuntimeError(f"checkov could not read the transformed template: {summary}")
    return dict(report)


def _file(item: dict[str, Any]) -> str:
    return Path(str(item.get("file_path", ""))).name


def _check(item: dict[str, Any]) -> Check:
    resource_type, _, logical_id = str(item["resource"]).rpartition(".")
    return Check(
        check_id=str(item["check_id"]),
        resource=logical_id,
        resource_type=resource_type,
        title=str(item.get("check_name", "")),
        reason=str((item.get("check_result") or {}).get("suppress_comment") or ""),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backdrop_kit.checks",
        description="checkov on the SAM-transformed template.yaml; fails on any finding without an inline skip",
    )
    parser.add_argument("--skips", action="store_true", help="also list every skip and its reason")
    args = parser.parse_args(argv)
    result = scan()
    print(
        f"checkov {result.checkov_version} on the SAM-transformed template.yaml: {len(result.scanned)} resources, "
        f"{result.passed} passed, {len(result.skipped)} skipped (reasons in template.yaml), "
        f"{len(result.failed)} failed"
    )
    if args.skips:
        for check in result.skipped:
            print(f"skipped {check.check_id} {check.resource}: {check.reason}")
    problems = result.problems()
    for line in problems:
        print(line)
    if result.failed:
        print(HOW_TO_SKIP)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
