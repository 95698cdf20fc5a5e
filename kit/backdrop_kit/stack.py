"""The local stack: moto + the Claid emulator, with the resources template.yaml declares, created for real."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from backdrop_kit.emulator import ClaidEmulator, EmulatorConfig
from backdrop_kit.moto_server import LOCAL_CREDENTIALS, MotoServer
from backdrop_kit.template import Template, load_template

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK_NAME = "backdrop-local"
LOCAL_STORAGE_NAME = "backdrop-local"
LOCAL_API_KEY = "local-test-key"
# Queues keep the template's redrive policy; only the visibility timeout is shortened, so a failed message
# comes back in seconds instead of the deployed minutes.
LOCAL_VISIBILITY_TIMEOUT = 2
# Services moto never calls from inside itself (no S3 notification, rule or subscription delivers to them), served
# by a moto server of their own: DynamoDB's conditional writes no longer wait in the one request lane that S3, SQS,
# SNS and EventBridge share, and the two servers use both cores. botocore sends each to its own endpoint through
# AWS_ENDPOINT_URL_<SERVICE> (the names are the services' ids as botocore writes them).
DATA_SERVICES = {"dynamodb": "DYNAMODB", "secretsmanager": "SECRETS_MANAGER", "ssm": "SSM"}


ASYNC_INSTANCES = 4  # instances of an EventBridge rule's Lambda target that run at once (no reserved concurrency)


@dataclass
class EventSource:
    """How a function is fed: an SQS queue (an event source mapping) or an inbox queue standing in for an
    EventBridge rule's Lambda target (EventBridge cannot invoke code here)."""

    function_id: str
    kind: str  # "sqs" | "eventbridge"
    queue_url: str
    batch_size: int = 10
    # eventbridge: the rule target's dead-letter queue, for events EventBridge could not deliver (never locally)
    dead_letter_url: str | None = None
    # eventbridge: an asynchronous invocation's attempts (EventInvokeConfig: 1 + MaximumRetryAttempts) and
    # where Lambda sends the invocation record once they are spent (its OnFailure destination)
    max_attempts: int = 3
    on_failure_url: str | None = None
    max_concurrency: int = 1  # sqs: ScalingConfig.MaximumConcurrency; eventbridge: instances at once
    report_batch_item_failures: bool = False  # sqs: FunctionResponseTypes has ReportBatchItemFailures


@dataclass
class WebhookTarget:
    """An EventBridge rule whose target is an API destination. moto does not call API destinations, so the
    rule targets an inbox queue and the runner's forwarder POSTs each event to the endpoint with the
    connection's header, retrying and dead-lettering as the rule's target says."""

    rule_id: str
    inbox_url: str
    endpoint: str
    method: str
    header_name: str
    header_value: str
    max_attempts: int
    dead_letter_url: str | None


@dataclass
class StackOptions:
    mode: str = "connected"  # "connected": Claid writes into the bucket; "temporary": tmp_urls, copied by the recorder
    monthly_credit_budget: float = 0
    parameters: dict[str, str] = field(default_factory=dict)
    emulator: EmulatorConfig | None = None
    log_dir: Path | None = None
    log_level: str = "INFO"  # the functions' POWERTOOLS_LOG_LEVEL (template parameter LogLevel)
    # 0: any free ports; `backdrop local start --port` keeps the endpoints the same across runs (the data
    # services' server listens on the next port)
    moto_port: int = 0


class LocalStack:
    """Start with `with LocalStack() as stack:`; `stack.client(service)` is a boto3 client on that service's moto
    server: `data` for DATA_SERVICES, `moto` for the rest."""

    def __init__(self, options: StackOptions | None = None, template: Template | None = None) -> None:
        self.options = options or StackOptions()
        self.template = template or load_template()
        log_dir, port = self.options.log_dir, self.options.moto_port
        if port >= 65535:
            raise ValueError(f"port {port}: the local stack listens on it and on the next one")
        self.moto = MotoServer(port=port or None, log_file=(log_dir / "moto.log") if log_dir else None)
        self.data = MotoServer(
            port=port + 1 if port else None, log_file=(log_dir / "moto-data.log") if log_dir else None
        )
        emulator_config = self.options.emulator or EmulatorConfig()
        self.emulator = ClaidEmulator(emulator_config)
        self.physical: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}
        self.parameters: dict[str, str] = {}
        self.sources: list[EventSource] = []
        self.webhooks: list[WebhookTarget] = []
        self.notifications_queue_url = ""
        self.bus_tap_queue_url = ""
        self._saved_env: dict[str, str | None] = {}
        self._published = False

    # --- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        for server in (self.moto, self.data):
            server.launch()  # side by side: each takes seconds to import moto
        try:
            endpoint = self.moto.wait_until_listening()
            self.data.wait_until_listening()
        except BaseException:
            self.stop()
            raise
        # Process-wide, because Powertools reads this at call time, not only at import: no EMF metric lines
        # from local runs (a test that reads them lifts it).
        self._set_env({**self.endpoints(), "POWERTOOLS_METRICS_DISABLED": "true"})
        self.emulator.config.s3_endpoint_url = endpoint
        claid_url = self.emulator.start()
        self.parameters = {
            **self.template.parameter_defaults(),
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
            "Stage": "local",
            "ClaidBaseUrl": claid_url,
            "ClaidStorageName": LOCAL_STORAGE_NAME if self.options.mode == "connected" else "",
            "ClaidStoragePrefix": "",
            "ClaidDownloadHosts": "127.0.0.1",
            "MonthlyCreditBudget": str(self.options.monthly_credit_budget),
            "LogLevel": self.options.log_level,
            **self.options.parameters,
        }
        # What CloudFormation deploys: the SAM transform's output for these values, and of it only the resources
        # whose condition holds.
        declared = {k: v for k, v in self.parameters.items() if k in self.template.parameters()}
        self.template = self.template.transformed(declared).for_parameters(self.parameters)
        self._create_resources()
        self._connect_storage()
        return self

    def _connect_storage(self) -> None:
        """The emulator's connector for the bucket, registered with the path the stack says it has (as a person
        does with `backdrop connect-storage --path`, then deploys ClaidStoragePrefix to match)."""
        path = self.parameters.get("ClaidStoragePrefix", "")
        registered = self.emulator.connectors.get(LOCAL_STORAGE_NAME)
        if registered is None:
            self.emulator.add_storage(LOCAL_STORAGE_NAME, bucket=self.uploads_bucket, path=path)
        else:
            registered.path = path  # registered again with the new path

    def stop(self) -> None:
        self.emulator.stop()
        self.moto.stop()
        self.data.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    # --- clients and names ----------------------------------------------------------------------------
    def endpoints(self) -> dict[str, str]:
        """The environment that points AWS SDKs and the AWS CLI at this stack: credentials and each service's
        endpoint."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.moto.url,
            **{f"AWS_ENDPOINT_URL_{name}": self.data.url for name in DATA_SERVICES.values()},
        }

    def client(self, service: str) -> Any:
        url = self.data.url if service in DATA_SERVICES else self.moto.url
        return boto3.client(service, endpoint_url=url, region_name=REGION)  # type: ignore[call-overload]

    @property
    def uploads_bucket(self) -> str:
        return self.physical[self._only("AWS::S3::Bucket")]

    @property
    def app_table(self) -> str:
        return self.physical["AppTable"]

    @property
    def event_bus(self) -> str:
        return self.physical[self._only("AWS::Events::EventBus")]

    def queue_url(self, logical_id: str) -> str:
        return self.physical[logical_id]

    def _only(self, cfn_type: str) -> str:
        found = list(self.template.resources_of_type(cfn_type))
        if len(found) != 1:
            raise LookupError(f"expected one {cfn_type} in template.yaml, found {found}")
        return found[0]

    def resolve(self, value: Any) -> Any:
        return self.template.resolve(
            value, parameters=self.parameters, physical=self.physical, attributes=self.attributes
        )

    def function_environment(self, function_id: str) -> dict[str, str]:
        spec = self.template.functions()[function_id]
        env = {name: str(self.resolve(value)) for name, value in spec.environment.items()}
        env.update(self.endpoints())
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": f"{STACK_NAME}-{function_id}",
                "POWERTOOLS_METRICS_DISABLED": "true",
                # Only locally: the emulator serves tmp_urls over plain http on 127.0.0.1.
                "ALLOW_INSECURE_DOWNLOADS": "true",
            }
        )
        return env

    def publish(self) -> str:
        """Make the local stack findable by name, as a deployment is: a CloudFormation stack holding the
        template's outputs (resolved locally) and a Lambda function per handler holding its environment.
        Only the CLI's `--stack` commands need this, so it is done on demand (creating functions in moto
        takes seconds). Returns the stack name."""
        import io
        import zipfile

        if self._published:
            return STACK_NAME
        outputs = {}
        for key, spec in self.template.raw["Outputs"].items():
            try:
                outputs[key] = {"Value": str(self.resolve(spec["Value"]))}
            except KeyError:  # a resource with no local meaning (the dashboard): no output for it locally
                continue
        # The template's parameters with the values this stack runs with, as `describe-stacks` shows a deployment's.
        given = {k: v for k, v in self.parameters.items() if k in self.template.parameters()}
        body = {
            "Parameters": {name: {"Type": "String"} for name in given},
            "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": outputs,
        }
        self.client("cloudformation").create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
        )
        role = self.client("iam").create_role(RoleName=f"{STACK_NAME}-functions", AssumeRolePolicyDocument="{}")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "")  # never invoked: the runner plays Lambda
        lambda_client = self.client("lambda")
        for function_id, spec in self.template.functions().items():
            lambda_client.create_function(
                FunctionName=self.physical[function_id],
                Runtime="python3.12",
                Role=role["Role"]["Arn"],
                Handler="handler.lambda_handler",
                Code={"ZipFile": code.getvalue()},
                Environment={"Variables": {k: str(self.resolve(v)) for k, v in spec.environment.items()}},
            )
        self._published = True
        return STACK_NAME

    def update_parameters(self, values: dict[str, str]) -> None:
        """A stack update that changes the functions' configuration (a budget, a connector prefix) and no resource:
        the functions get the new environment at their next cold start (a Runner made after this), and the
        published stack's functions hold it, as Lambda's would. Conditions and resources stay as they were."""
        unknown = sorted(set(values) - set(self.template.parameters()))
        if unknown:
            raise KeyError(f"no parameter {', '.join(unknown)} in template.yaml")
        self.parameters.update(values)
        if "ClaidStoragePrefix" in values:
            self._connect_storage()
        if self._published:
            lambda_client = self.client("lambda")
            for function_id, spec in self.template.functions().items():
                lambda_client.update_function_configuration(
                    FunctionName=self.physical[function_id],
                    Environment={"Variables": {k: str(self.resolve(v)) for k, v in spec.environment.items()}},
                )

    def put_profile(self, name: str, settings: dict[str, Any]) -> None:
        path = self.function_environment("ProcessorFunction")["PROFILES_PARAMETER_PATH"]
        self.client("ssm").put_parameter(Name=path + name, Value=json.dumps(settings), Type="String", Overwrite=True)

    # --- resources ------------------------------------------------------------------------------------
    def _create_resources(self) -> None:
        t = self.template
        sqs, ddb, events, sns = (self.client(s) for s in ("sqs", "dynamodb", "events", "sns"))
        # Queues first: DLQs before the queues that redrive into them.
        queues = t.resources_of_type("AWS::SQS::Queue")
        for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
            props = queues[logical_id].get("Properties", {})
            name = str(self.resolve(props["QueueName"])) if "QueueName" in props else f"{STACK_NAME}-{logical_id}"
            attributes = {"VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT)}
            for key in ("MessageRetentionPeriod",):
                if key in props:
                    attributes[key] = str(self.resolve(props[key]))
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(self.resolve(props["RedrivePolicy"]))
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            self.physical[logical_id] = url
            self.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            self.attributes[(logical_id, "QueueName")] = name
            self.attributes[(logical_id, "QueueUrl")] = url
        for logical_id, res in t.resources_of_type("AWS::DynamoDB::Table").items():
            props = res["Properties"]
            name = str(self.resolve(props["TableName"])) if "TableName" in props else f"{STACK_NAME}-{logical_id}"
            create: dict[str, Any] = {
                "TableName": name,
                "KeySchema": self.resolve(props["KeySchema"]),
                "AttributeDefinitions": self.resolve(props["AttributeDefinitions"]),
                "BillingMode": "PAY_PER_REQUEST",
            }
            if "GlobalSecondaryIndexes" in props:
                create["GlobalSecondaryIndexes"] = self.resolve(props["GlobalSecondaryIndexes"])
            ddb.create_table(**create)
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=self.resolve(ttl))
            self.physical[logical_id] = name
            self.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        for logical_id, res in t.resources_of_type("AWS::Events::EventBus").items():
            name = str(self.resolve(res["Properties"]["Name"]))
            arn = events.create_event_bus(Name=name)["EventBusArn"]
            self.physical[logical_id] = name
            self.attributes[(logical_id, "Arn")] = arn
            self.attributes[(logical_id, "Name")] = name
        for logical_id, res in t.resources_of_type("AWS::SNS::Topic").items():
            props = res.get("Properties", {})
            name = str(self.resolve(props["TopicName"])) if "TopicName" in props else f"{STACK_NAME}-{logical_id}"
            arn = sns.create_topic(Name=name)["TopicArn"]
            self.physical[logical_id] = arn
            self.attributes[(logical_id, "TopicName")] = name
            self.attributes[(logical_id, "TopicArn")] = arn
        all_secrets = t.resources_of_type("AWS::SecretsManager::Secret")
        # Secrets with a given value may name other resources (an access key): made once those exist.
        given = {k: v for k, v in all_secrets.items() if "SecretString" in v.get("Properties", {})}
        for logical_id, res in all_secrets.items():
            if logical_id not in given:
                # The Claid key must be the one the emulator accepts; other secrets are generated, as in AWS.
                value = LOCAL_API_KEY if logical_id == "ClaidApiKeySecret" else secrets.token_urlsafe(32)
                self._create_secret(logical_id, res.get("Properties", {}), value)
        for logical_id, res in t.resources_of_type("AWS::S3::Bucket").items():
            self._create_bucket(logical_id, res.get("Properties", {}))
        self._create_iam_users()
        for logical_id, res in given.items():
            self._create_secret(logical_id, res["Properties"], str(self.resolve(res["Properties"]["SecretString"])))
        for logical_id, res in t.resources_of_type("AWS::KMS::Key").items():
            props = self.resolve(res["Properties"])
            key = self.client("kms").create_key(
                Description=props.get("Description", ""), Policy=json.dumps(props["KeyPolicy"])
            )
            self.physical[logical_id] = key["KeyMetadata"]["KeyId"]
            self.attributes[(logical_id, "Arn")] = key["KeyMetadata"]["Arn"]
        self._name_api_destinations()
        self._create_roles()
        for logical_id in t.functions():
            self.physical[logical_id] = f"{STACK_NAME}-{logical_id}"
            self.attributes[(logical_id, "Arn")] = (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{logical_id}"
            )
        self._create_event_source_mappings()
        self._create_rules()
        # A subscriber to the notification topic, so tests and the demo can read what a storefront would get.
        self.notifications_queue_url = sqs.create_queue(QueueName="local-notifications")["QueueUrl"]
        for topic_arn in (self.physical[t_id] for t_id in t.resources_of_type("AWS::SNS::Topic")):
            sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:local-notifications",
                Attributes={"RawMessageDelivery": "false"},
            )
        # A storefront's view of the bus: every event from backdrop, copied to a queue the kit can read.
        self.bus_tap_queue_url = sqs.create_queue(QueueName="local-bus-tap")["QueueUrl"]
        for bus_id in t.resources_of_type("AWS::Events::EventBus"):
            events.put_rule(
                Name="local-tap", EventBusName=self.physical[bus_id], EventPattern=json.dumps({"source": ["backdrop"]})
            )
            events.put_targets(
                Rule="local-tap",
                EventBusName=self.physical[bus_id],
                Targets=[{"Id": "tap", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:local-bus-tap"}],
            )

    def _create_secret(self, logical_id: str, props: dict[str, Any], value: str) -> None:
        name = str(self.resolve(props["Name"])) if "Name" in props else f"{STACK_NAME}/{logical_id}"
        arn = self.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        self.physical[logical_id] = arn
        self.attributes[(logical_id, "Id")] = arn

    def _create_iam_users(self) -> None:
        """IAM users with their inline policies and access keys (moto keeps them; it does not enforce them,
        so their reach is checked against the template by tests)."""
        iam = self.client("iam")
        for logical_id, res in self.template.resources_of_type("AWS::IAM::User").items():
            name = f"{STACK_NAME}-{logical_id}"
            iam.create_user(UserName=name)
            for policy in self.resolve(res.get("Properties", {}).get("Policies", [])):
                iam.put_user_policy(
                    UserName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
                )
            self.physical[logical_id] = name
            self.attributes[(logical_id, "Arn")] = f"arn:aws:iam::{ACCOUNT}:user/{name}"
        for logical_id, res in self.template.resources_of_type("AWS::IAM::ManagedPolicy").items():
            name = f"{STACK_NAME}-{logical_id}"
            document = json.dumps(self.resolve(res["Properties"]["PolicyDocument"]))
            arn = iam.create_policy(PolicyName=name, PolicyDocument=document)["Policy"]["Arn"]
            self.physical[logical_id] = arn
        for logical_id, res in self.template.resources_of_type("AWS::IAM::AccessKey").items():
            key = iam.create_access_key(UserName=str(self.resolve(res["Properties"]["UserName"])))["AccessKey"]
            self.physical[logical_id] = key["AccessKeyId"]
            self.attributes[(logical_id, "SecretAccessKey")] = key["SecretAccessKey"]

    def _name_api_destinations(self) -> None:
        """Connections and API destinations get names and ARNs (moto cannot call them; the forwarder does)."""
        for cfn_type, kind in (
            ("AWS::Events::Connection", "connection"),
            ("AWS::Events::ApiDestination", "api-destination"),
        ):
            for logical_id in self.template.resources_of_type(cfn_type):
                name = f"{STACK_NAME}-{logical_id}"
                self.physical[logical_id] = name
                self.attributes[(logical_id, "Arn")] = f"arn:aws:events:{REGION}:{ACCOUNT}:{kind}/{name}/local"

    def _create_roles(self) -> None:
        """IAM roles with the inline policies the template (and the SAM transform for functions) gave them. moto
        keeps them and does not enforce them: tests/integration/test_permissions.py checks their reach."""
        iam = self.client("iam")
        for logical_id, res in self.template.resources_of_type("AWS::IAM::Role").items():
            props = self.resolve(res["Properties"])
            name = f"{STACK_NAME}-{logical_id}"[:64]
            trust = json.dumps(props["AssumeRolePolicyDocument"])
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            for policy in props.get("Policies", []):
                # SAM writes its generated documents without a Version; IAM takes that as 2008-10-17, moto
                # refuses it. The statements are what matter here, so moto gets the current version.
                document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
                iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
            # AWS managed policies (ManagedPolicyArns) are not attached: moto knows none unless it loads all of
            # them at start, and the handlers' calls are all granted inline (the permission test proves it).
            self.physical[logical_id] = name
            self.attributes[(logical_id, "Arn")] = arn

    def _create_event_source_mappings(self) -> None:
        for logical_id, res in self.template.resources_of_type("AWS::Lambda::EventSourceMapping").items():
            props = self.resolve(res["Properties"])
            function_id = self._logical_of_name(str(props["FunctionName"]))
            queue_id = self._logical_of(str(props["EventSourceArn"]))
            if self.template.raw["Resources"][queue_id]["Type"] != "AWS::SQS::Queue":
                raise NotImplementedError(f"{logical_id}: the local stack feeds functions from SQS queues only")
            scaling = props.get("ScalingConfig", {})
            self.sources.append(
                EventSource(
                    function_id,
                    "sqs",
                    self.physical[queue_id],
                    batch_size=int(props.get("BatchSize", 10)),
                    # Without a maximum, Lambda scales with the queue; two instances are plenty on one machine.
                    max_concurrency=int(scaling.get("MaximumConcurrency", 2)),
                    report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                )
            )
            self.physical[logical_id] = f"{STACK_NAME}-{logical_id}"

    def _invoke_configs(self) -> dict[str, tuple[int, str | None]]:
        """Per function: asynchronous invoke attempts and the OnFailure queue (Lambda's defaults: 3, none)."""
        found: dict[str, tuple[int, str | None]] = {}
        for logical_id, res in self.template.resources_of_type("AWS::Lambda::EventInvokeConfig").items():
            props = self.resolve(res["Properties"])
            function_id = self._logical_of_name(str(props["FunctionName"]))
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            on_failure = self.physical[self._logical_of(str(destination))] if destination else None
            found[function_id] = (1 + int(props.get("MaximumRetryAttempts", 2)), on_failure)
            self.physical[logical_id] = f"{STACK_NAME}-{logical_id}"
        return found

    def _create_rules(self) -> None:
        """Each rule with its pattern on its bus. A queue target is the queue; a Lambda target becomes an inbox
        queue the runner drains as Lambda's asynchronous invocation would; an API destination target becomes an
        inbox queue the runner's forwarder POSTs from (moto calls neither)."""
        t = self.template
        invoke_configs = self._invoke_configs()
        sqs, events = self.client("sqs"), self.client("events")
        for logical_id, res in t.resources_of_type("AWS::Events::Rule").items():
            props = res["Properties"]
            bus = str(self.resolve(props.get("EventBusName", "default")))
            name = f"{STACK_NAME}-{logical_id}"
            self.physical[logical_id] = name
            self.attributes[(logical_id, "Arn")] = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{name}"
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(self.resolve(props["EventPattern"])))
            for target in self.resolve(props.get("Targets", [])):
                target_id = self._logical_of(str(target["Arn"]))
                target_type = t.raw["Resources"][target_id]["Type"]
                if target_type == "AWS::SQS::Queue":
                    # moto delivers to a queue itself, the event whole as the message body, as EventBridge does.
                    events.put_targets(
                        Rule=name, EventBusName=bus, Targets=[{"Id": target["Id"], "Arn": target["Arn"]}]
                    )
                    continue
                inbox_url = sqs.create_queue(QueueName=f"{name}-{target['Id']}"[:70] + "-inbox")["QueueUrl"]
                events.put_targets(
                    Rule=name, EventBusName=bus, Targets=[{"Id": target["Id"], "Arn": self._queue_arn(inbox_url)}]
                )
                dlq = target.get("DeadLetterConfig", {}).get("Arn")
                dlq_url = self.physical[self._logical_of(str(dlq))] if dlq else None
                retries = int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185))
                if target_type == "AWS::Lambda::Function":
                    attempts, on_failure = invoke_configs.get(target_id, (3, None))
                    reserved = t.raw["Resources"][target_id]["Properties"].get("ReservedConcurrentExecutions")
                    self.sources.append(
                        EventSource(
                            target_id,
                            "eventbridge",
                            inbox_url,
                            dead_letter_url=dlq_url,
                            max_attempts=attempts,
                            on_failure_url=on_failure,
                            # Lambda runs asynchronous invocations side by side, up to the function's reserved
                            # concurrency or the account's; on one machine a few instances are plenty.
                            max_concurrency=int(self.resolve(reserved)) if reserved is not None else ASYNC_INSTANCES,
                        )
                    )
                elif target_type == "AWS::Events::ApiDestination":
                    destination = t.raw["Resources"][target_id]["Properties"]
                    connection_id = self._logical_of(str(self.resolve(destination["ConnectionArn"])))
                    auth = t.raw["Resources"][connection_id]["Properties"]["AuthParameters"]["ApiKeyAuthParameters"]
                    self.webhooks.append(
                        WebhookTarget(
                            rule_id=logical_id,
                            inbox_url=inbox_url,
                            endpoint=str(self.resolve(destination["InvocationEndpoint"])),
                            method=str(destination.get("HttpMethod", "POST")),
                            header_name=str(self.resolve(auth["ApiKeyName"])),
                            header_value=self._dynamic(str(self.resolve(auth["ApiKeyValue"]))),
                            # Locally three attempts at most: the retries are real, the day of them is not.
                            max_attempts=min(1 + retries, 3),
                            dead_letter_url=dlq_url,
                        )
                    )
                else:
                    raise NotImplementedError(f"{logical_id}: the local stack cannot deliver to a {target_type}")

    def _dynamic(self, value: str) -> str:
        """CloudFormation's `{{resolve:secretsmanager:<arn>:SecretString}}`, read from the local secret."""
        match = re.fullmatch(r"\{\{resolve:secretsmanager:(.+):SecretString\}\}", value)
        if match is None:
            return value
        return str(self.client("secretsmanager").get_secret_value(SecretId=match.group(1))["SecretString"])

    def _logical_of(self, arn: str) -> str:
        return next(logical for (logical, attr), value in self.attributes.items() if attr == "Arn" and value == arn)

    def _logical_of_name(self, physical: str) -> str:
        """The logical id behind a physical name (what Ref returns), e.g. a function's name."""
        return next(logical for logical, value in self.physical.items() if value == physical)

    def _queue_arn(self, queue_url: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}"

    def _create_bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        s3 = self.client("s3")
        name = str(self.resolve(props["BucketName"])) if "BucketName" in props else f"{STACK_NAME}-{logical_id}".lower()
        self.physical[logical_id] = name
        self.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        s3.create_bucket(Bucket=name)
        if self.resolve(props.get("VersioningConfiguration", {})).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        notifications = self.resolve(props.get("NotificationConfiguration", {}))
        queue_configs = []
        for config in notifications.get("QueueConfigurations", []):
            rules = config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            entry: dict[str, Any] = {"QueueArn": config["Queue"], "Events": [config["Event"]]}
            if rules:
                entry["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            queue_configs.append(entry)
        if queue_configs:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": queue_configs}
            )

    # --- reading what happened --------------------------------------------------------------------------
    def _drain_queue(self, queue_url: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def notifications(self) -> list[dict[str, Any]]:
        """Drain the local notification subscriber: each SNS message with its attributes."""
        return [
            {
                "subject": envelope.get("Subject"),
                "message": json.loads(envelope["Message"]),
                "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
            }
            for envelope in self._drain_queue(self.notifications_queue_url)
        ]

    def bus_events(self) -> list[dict[str, Any]]:
        """Drain the local tap on the bus: every backdrop event, as a storefront's own rule would see it."""
        return self._drain_queue(self.bus_tap_queue_url)

    def job_items(self) -> list[dict[str, Any]]:
        from backdrop.store.items import from_attributes

        ddb = self.client("dynamodb")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.app_table}
        while True:
            page = ddb.scan(**kwargs, ConsistentRead=True)
            items.extend(from_attributes(raw) for raw in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [i for i in items if str(i["pk"]).startswith("JOB#")]


@contextmanager
def local_stack(options: StackOptions | None = None) -> Iterator[LocalStack]:
    stack = LocalStack(options)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
