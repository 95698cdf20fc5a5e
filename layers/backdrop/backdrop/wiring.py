"""How each function is put together: one composition function per Lambda function, from its configuration and
its clients. The handlers call these once per cold start; tests call them with clients of their own.

The clients every invocation needs are made during the cold start (`Clients.warm`); the ones a path rarely needs
(SQS for a hand-back, SSM for a profile, Secrets Manager for the Claid key, S3 for the recorder's temporary-bucket
mode) when first used. Each function imports only its own logic: the processor's cold start does not pay for
the renditions' modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backdrop.clients import Clients, on_first_use
from backdrop.config import ProcessorConfig, PublisherConfig, RecorderConfig, RenditionsConfig
from backdrop.store.jobs import DynamoJobs
from backdrop.store.reservations import DynamoReservations

if TYPE_CHECKING:
    import httpx

    from backdrop.claid.client import ClaidClient
    from backdrop.editing import Editor
    from backdrop.once import Once
    from backdrop.processing import Processor
    from backdrop.publishing import Publisher
    from backdrop.recording import Recorder

# The Secrets Manager provider keeps the Claid key this long before it reads it again (a rotated key is picked up).
API_KEY_MAX_AGE_SECONDS = 300


def _claid(
    config: ProcessorConfig | RenditionsConfig, clients: Clients, http: httpx.Client, **endpoint: str
) -> Callable[[], ClaidClient]:
    """The Claid client, made at the first call (the API key is read from Secrets Manager then), on the schedule
    every function shares."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from backdrop.claid.client import shared_client

    secrets: SecretsProvider = on_first_use(lambda: SecretsProvider(boto3_client=clients.secretsmanager))
    return shared_client(
        lambda: str(secrets.get(config.claid_api_key_secret_arn, max_age=API_KEY_MAX_AGE_SECONDS)),
        dynamodb=clients.dynamodb,
        table_name=config.app_table_name,
        per_second=config.claid_requests_per_second,
        per_minute=config.claid_requests_per_minute,
        base_url=config.claid_base_url,
        http=http,
        call_budget=config.claid_call_budget_seconds,
        **endpoint,
    )


def _once(
    config: ProcessorConfig | RenditionsConfig, clients: Clients, *, key: str, outcome: type[Any], stored_as: str
) -> Callable[[Any], Once[Any, Any]]:
    """Guards a step with Powertools' idempotency on the function's idempotency table."""
    from backdrop.once import Once

    return lambda step: Once(
        step,
        key=key,
        outcome=outcome,
        table_name=config.idempotency_table_name,
        dynamodb=clients.dynamodb,
        ttl_seconds=config.idempotency_ttl_seconds,
        stored_as=stored_as,
    )


def processor(config: ProcessorConfig, clients: Clients | None = None) -> Processor:
    """ProcessorFunction: an upload in, one guarded Claid generation, an event out."""
    import httpx
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    from backdrop.events import GenerationDetail
    from backdrop.processing import Processor, profile_loader

    clients = clients or Clients().warm("s3", "dynamodb", "events")
    return Processor(
        config=config,
        s3=clients.s3,
        events=clients.events,
        reservations=DynamoReservations(
            clients.dynamodb, config.app_table_name, monthly_budget=config.monthly_credit_budget
        ),
        load_profile=profile_loader(
            on_first_use(lambda: SSMProvider(boto3_client=clients.ssm)), config.profiles_parameter_path
        ),
        claid=_claid(config, clients, httpx.Client(), scene_path=config.claid_scene_path),
        guard=_once(config, clients, key="job_id", outcome=GenerationDetail, stored_as="generate_once"),
    )


def publisher(
    config: PublisherConfig | RenditionsConfig,
    clients: Clients | None = None,
    reservations: DynamoReservations | None = None,
) -> Publisher:
    """PublisherFunction (and the renditions, which publish what they make): chosen variants to stable keys."""
    from backdrop.publishing import Publisher
    from backdrop.store.selections import DynamoSelections

    clients = clients or Clients().warm("s3", "dynamodb", "events")
    table = config.app_table_name
    return Publisher(
        s3=clients.s3,
        events=clients.events,
        jobs=DynamoJobs(clients.dynamodb, table),
        selections=DynamoSelections(clients.dynamodb, table),
        reservations=reservations or DynamoReservations(clients.dynamodb, table),
        event_bus_name=config.event_bus_name,
        incoming_prefix=config.incoming_prefix,
        generated_prefix=config.generated_prefix,
        published_prefix=config.published_prefix,
    )


def recorder(config: RecorderConfig, clients: Clients | None = None) -> Recorder:
    """RecorderFunction: a generation event in, its record and credits, a notification out."""
    import httpx

    from backdrop.recording import Recorder

    clients = clients or Clients().warm("dynamodb", "events", "sns")
    return Recorder(
        config=config,
        s3=clients.s3,
        sns=clients.sns,
        events=clients.events,
        jobs=DynamoJobs(clients.dynamodb, config.app_table_name),
        http=httpx.Client(follow_redirects=False),
    )


def editor(config: RenditionsConfig, clients: Clients | None = None) -> Editor:
    """RenditionsFunction: a published selection in, each rendition made once (guarded), an event out. A
    selection's edits run side by side and share the clients: one pooled connection each."""
    import httpx

    from backdrop.editing import Editor, EditOutcome
    from backdrop.store.ledger import DynamoLedger

    clients = clients or Clients(pool=config.parallel_edits + 5).warm("s3", "dynamodb", "events")
    reservations = DynamoReservations(
        clients.dynamodb, config.app_table_name, monthly_budget=config.monthly_credit_budget
    )
    return Editor(
        config=config,
        s3=clients.s3,
        events=clients.events,
        reservations=reservations,
        ledger=DynamoLedger(clients.dynamodb, config.app_table_name),
        publisher=publisher(config, clients, reservations),
        claid=_claid(
            config,
            clients,
            httpx.Client(limits=httpx.Limits(max_connections=config.parallel_edits + 2)),
            edit_path=config.claid_edit_path,
        ),
        http=httpx.Client(follow_redirects=False),
        guard=_once(config, clients, key="edit_id", outcome=EditOutcome, stored_as="edit_once"),
    )
