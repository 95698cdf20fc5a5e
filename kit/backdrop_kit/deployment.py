"""A deployed stack as the CLI sees it: its CloudFormation outputs and the processor's own environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


class DeploymentNotFound(LookupError):
    """The stack (or one of the outputs a command needs) does not exist: a person's typo, told plainly."""


@dataclass(frozen=True)
class Deployment:
    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise DeploymentNotFound(
                f"stack {self.name!r} has no output {key!r}: deploy the current template.yaml"
            ) from None

    def processor_environment(self, lambda_client: Any) -> dict[str, str]:
        """The processor's environment as Lambda holds it. Commands that plan jobs build the processor's
        config from this, so they resolve settings exactly as the deployed function does."""
        name = self.output("ProcessorFunctionName")
        try:
            config = lambda_client.get_function_configuration(FunctionName=name)
        except ClientError as exc:
            raise DeploymentNotFound(f"stack {self.name!r}: cannot read function {name}: {exc}") from None
        return dict(config.get("Environment", {}).get("Variables", {}))


def find_deployment(cloudformation: Any, stack_name: str) -> Deployment:
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationError":  # CloudFormation's answer for a missing stack
            raise DeploymentNotFound(f"no stack named {stack_name!r} in this account and region") from None
        raise
    return Deployment(
        name=stack_name,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
    )
