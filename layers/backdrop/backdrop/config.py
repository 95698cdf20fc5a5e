"""The functions' environment, parsed once at cold start; a missing or bad variable fails with its name."""

import os
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from backdrop.renditions import RenditionError, parse_renditions


class ConfigError(RuntimeError):
    """The function's environment is incomplete or wrong: a deployment mistake, never retried."""


# The ledger keeps the budget, and the budget less a reservation, as DynamoDB numbers (38 significant digits at
# most): a billion credits a month is past any shop's spend and well inside what it can store exactly.
MAX_MONTHLY_CREDIT_BUDGET = 1_000_000_000


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _folder(value: str) -> str:
    """A prefix in the bucket (or a parameter path) is a folder: it ends with '/'."""
    if not value.endswith("/"):
        raise ValueError("must end with '/'")
    return value


class _EnvModel(BaseSettings):
    """Field names are the environment variable names, lower-cased. Built with the keyword arguments given (tests),
    or by `from_env` from the environment: pydantic-settings reads it, and nothing else is read."""

    # inf and nan read as floats, but no budget or duration is infinite: taken at cold start, MONTHLY_CREDIT_BUDGET=inf
    # would fail every upload later (DynamoDB cannot store it) instead of failing here, by name.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", allow_inf_nan=False, defer_build=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment comes in through from_env, which says which one

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """From os.environ, or the mapping given (a deployed function's variables, for the kit)."""
        source = EnvSettingsSource(cls)
        # Only the variables' own upper-case names count, as the template declares them.
        env = os.environ if environ is None else environ
        source.env_vars = {name.lower(): value for name, value in env.items() if name.isupper()}
        try:
            return cls(**source())
        except ValidationError as exc:
            problems = "; ".join(f"{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors(include_url=False))
            raise ConfigError(f"{cls.__name__} environment is invalid: {problems}") from None


Hosts = Annotated[list[str], NoDecode, Field(min_length=1)]  # a comma-separated list, not JSON


class _Events(_EnvModel):
    """Every function puts events on the bus and keeps its records in the application table."""

    event_bus_name: str
    app_table_name: str


class PublisherConfig(_Events):
    """The publisher's; the processor and the renditions function know the same prefixes."""

    incoming_prefix: str = "incoming/"
    generated_prefix: str = "generated/"
    # Where a photo's chosen variants are published: its keys must fit S3's limit before anything is spent.
    published_prefix: str = "published/"

    _folders = field_validator("incoming_prefix", "generated_prefix", "published_prefix")(_folder)


class _Downloads(_EnvModel):
    """Copying an image from Claid's temporary bucket (the recorder's and the renditions function's)."""

    # Hosts a tmp_url may be downloaded from (exact names; "*.example.com" matches sub-domains).
    claid_download_hosts: Hosts = ["*.claid.ai"]
    # Only the offline kit turns this on: its emulator serves tmp_urls over plain http on 127.0.0.1.
    allow_insecure_downloads: bool = False
    max_variant_bytes: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024

    _split_hosts = field_validator("claid_download_hosts", mode="before")(_csv)


class _ClaidCaller(PublisherConfig):
    """A function that calls Claid (the processor, the renditions function): its key, its limits, its budget."""

    idempotency_table_name: str
    claid_api_key_secret_arn: str
    claid_base_url: str = "https://api.claid.ai"
    # Empty: Claid's temporary bucket (tmp_url), copied into generated/ by the function that records the images.
    claid_storage_name: str = ""
    # The connector's own prefix inside the bucket: storage://<name>/<key minus this prefix>.
    claid_storage_prefix: str = ""
    monthly_credit_budget: Annotated[float, Field(ge=0, le=MAX_MONTHLY_CREDIT_BUDGET)] = 0
    presigned_url_ttl_seconds: Annotated[int, Field(ge=60, le=3600)] = 900
    idempotency_ttl_seconds: Annotated[int, Field(ge=3600)] = 1_300_000
    # Claid's latency and limits, which size everything else (template.yaml, CallBudget mapping):
    # the longest one call may take; a call starts only when the time left covers it.
    claid_call_budget_seconds: Annotated[float, Field(ge=5, le=800)] = 90
    # The account's limits, kept by one schedule shared by every instance (0 = no shared schedule).
    claid_requests_per_second: Annotated[int, Field(ge=0)] = 4
    claid_requests_per_minute: Annotated[int, Field(ge=0)] = 120
    # A call that got no answer, in connected-storage mode: how long Claid may still write its images before
    # the job is settled from what its output folder holds.
    unknown_outcome_settle_seconds: Annotated[int, Field(ge=0)] = 600

    @field_validator("claid_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class ProcessorConfig(_ClaidCaller):
    claid_scene_path: str = "/v1-ea/scene/create"
    profiles_parameter_path: str = "/backdrop/profiles/"
    max_upload_bytes: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024
    default_prompt: str = ""
    default_negative_prompt: str = ""
    default_number_of_images: Annotated[int, Field(ge=1, le=4)] = 4
    default_output_format: str = "jpeg"
    default_aspect_ratio: str = "1:1"
    default_model: str = "v1"
    default_publish: str = "none"
    # The stack's `renditions` setting (DefaultRenditions): a bad list fails the cold start by name rather than
    # rejecting every upload.
    default_renditions: str = ""

    _profiles_folder = field_validator("profiles_parameter_path")(_folder)

    @field_validator("default_renditions")
    @classmethod
    def _rendition_list(cls, value: str) -> str:
        try:
            parse_renditions(value)
        except RenditionError as exc:
            raise ValueError(str(exc)) from None
        return value


class RenditionsConfig(_ClaidCaller, _Downloads):
    claid_edit_path: str = "/v1/image/edit"
    # Claid publishes no price for image edits: the merchant checks these against their plan (README).
    rendition_edit_credits: Annotated[float, Field(ge=0, le=100)] = 1
    rendition_upscale_credits: Annotated[float, Field(ge=0, le=100)] = 2
    # Edits of one message (a selection: up to 4 images x 5 sizes) made side by side.
    parallel_edits: Annotated[int, Field(ge=1, le=100)] = 10


class RecorderConfig(_Events, _Downloads):
    notification_topic_arn: str
    generated_prefix: str = "generated/"
    monthly_credit_budget: Annotated[float, Field(ge=0, le=MAX_MONTHLY_CREDIT_BUDGET)] = 0
