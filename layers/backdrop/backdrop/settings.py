"""Generation settings: one validated model, resolved from defaults < profile < per-object S3 metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

AspectRatio = Literal["4:7", "7:9", "4:5", "1:1", "9:7", "19:13", "7:4", "16:9", "12:5"]
OutputFormat = Literal["jpeg", "png", "webp", "avif"]
Prompt = Annotated[str, Field(min_length=3, max_length=2048)]
Percent = Annotated[int, Field(ge=1, le=100)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]

# S3 user metadata keys are read as `backdrop-<field name with '-' for '_'>`, e.g. x-amz-meta-backdrop-prompt.
METADATA_PREFIX = "backdrop-"


class SettingsError(ValueError):
    """Settings that cannot be sent to Claid; the message names each offending field and its source."""


class Settings(BaseModel):
    """Everything a merchant can choose about one generation; each field maps to the Claid contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # scene: one of prompt / autoprompt / template_url / effect ("shadows")
    prompt: Prompt | None = None
    autoprompt: bool = False
    guidelines: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    negative_prompt: Prompt | None = None
    model: Literal["v1", "v2"] = "v1"
    aspect_ratio: AspectRatio = "1:1"
    color: HexColor | None = None
    steps: Annotated[int, Field(ge=1, le=49)] | None = None
    preference: Literal["fast", "optimal", "best"] | None = None
    template_url: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    template_mode: Literal["transform", "adjust", "lock"] | None = None
    view: Literal["top", "front"] | None = None
    effect: Literal["shadows"] | None = None
    # object placement
    placement_type: Literal["absolute", "original"] = "absolute"
    scale: Annotated[float, Field(ge=0.1, le=1.0)] | None = None
    rotation_degree: Annotated[float, Field(ge=0, le=360)] | None = None
    position_x: Unit | None = None
    position_y: Unit | None = None
    # output
    number_of_images: Annotated[int, Field(ge=1, le=4)] = 4
    output_format: OutputFormat = "jpeg"
    jpeg_quality: Percent | None = None
    jpeg_progressive: bool | None = None
    png_compression: Literal["fast", "optimal", "best"] | None = None
    compression: Literal["lossy", "lossless"] | None = None  # webp / avif
    quality: Percent | None = None  # webp / avif lossy quality

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        problems: list[str] = []
        modes = [
            name
            for name, on in (
                ("prompt", self.prompt is not None),
                ("autoprompt", self.autoprompt),
                ("template_url", self.template_url is not None),
                ("effect", self.effect is not None),
            )
            if on
        ]
        if not modes:
            problems.append("prompt: a prompt, autoprompt=true, a template_url or effect=shadows is required")
        if self.autoprompt and self.prompt is not None:
            problems.append("autoprompt: choose either a prompt or autoprompt, not both")
        if self.effect is not None and (self.prompt is not None or self.autoprompt or self.template_url):
            problems.append("effect: the shadows effect takes no prompt and no template")
        if self.guidelines is not None and not self.autoprompt:
            problems.append("guidelines: only used with autoprompt=true")
        if self.preference is not None and self.model != "v2":
            problems.append("preference: only model v2 takes a preference")
        if self.steps is not None and self.model != "v1":
            problems.append("steps: only model v1 takes steps")
        if self.color is not None and self.model != "v1" and self.template_url is None:
            problems.append("color: only model v1, templates and the shadows effect take a colour")
        if self.template_mode is not None and self.template_url is None:
            problems.append("template_mode: needs a template_url")
        if (self.position_x is None) != (self.position_y is None):
            problems.append("position_x: give position_x and position_y together")
        fmt = self.output_format
        if fmt != "jpeg" and (self.jpeg_quality is not None or self.jpeg_progressive is not None):
            problems.append(f"jpeg_quality: only for output_format=jpeg, not {fmt}")
        if fmt != "png" and self.png_compression is not None:
            problems.append(f"png_compression: only for output_format=png, not {fmt}")
        if fmt not in ("webp", "avif") and (self.compression is not None or self.quality is not None):
            problems.append(f"compression: only for output_format=webp or avif, not {fmt}")
        if self.quality is not None and self.compression == "lossless":
            problems.append("quality: a lossless compression takes no quality")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def fingerprint(self) -> str:
        """A stable digest of what Claid will be asked for: part of the job id."""
        canonical = json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def worst_case_images(self) -> int:
        return self.number_of_images


SETTING_NAMES = frozenset(Settings.model_fields)


def metadata_to_values(metadata: Mapping[str, str]) -> dict[str, str]:
    """`backdrop-number-of-images: 2` -> {"number_of_images": "2"}; other metadata keys are not ours."""
    values: dict[str, str] = {}
    for key, value in metadata.items():
        lowered = key.lower()
        if lowered.startswith(METADATA_PREFIX):
            name = lowered.removeprefix(METADATA_PREFIX).replace("-", "_")
            if name == "profile":
                continue  # chooses the profile, not a setting
            values[name] = value.strip()
    return values


def resolve_settings(
    defaults: Mapping[str, Any],
    profile: Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    *,
    profile_name: str | None = None,
) -> Settings:
    """Merge the three sources, later wins, and validate the result. Raises SettingsError naming the field."""
    layers: list[tuple[str, Mapping[str, Any]]] = [("defaults", defaults)]
    if profile is not None:
        layers.append((f"profile {profile_name}" if profile_name else "profile", profile))
    layers.append(("object metadata", metadata))
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}  # which source each merged value came from, for error messages
    for source, values in layers:
        unknown = sorted(set(values) - SETTING_NAMES)
        if unknown:
            raise SettingsError(
                f"{', '.join(unknown)} ({source}): unknown setting; known settings are "
                + ", ".join(sorted(SETTING_NAMES))
            )
        for name, value in values.items():
            if value is None or value == "":
                continue
            # A prompt from a later source replaces an autoprompt from an earlier one, and vice versa.
            if name == "prompt":
                merged.pop("autoprompt", None)
                merged.pop("guidelines", None)
                merged.pop("effect", None)
            elif name == "autoprompt" and str(value).lower() in ("true", "1", "yes"):
                merged.pop("prompt", None)
                merged.pop("effect", None)
            elif name == "effect":
                merged.pop("prompt", None)
                merged.pop("autoprompt", None)
            elif name == "output_format" and value != merged.get("output_format"):
                for option in (
                    "jpeg_quality",
                    "jpeg_progressive",
                    "png_compression",
                    "compression",
                    "quality",
                ):
                    merged.pop(option, None)
            merged[name] = value
            sources[name] = source
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["loc"]:
                field = str(err["loc"][0])
                parts.append(f"{field} ({sources.get(field, 'defaults')}): {message}")
            else:
                parts.append(message)
        raise SettingsError("; ".join(parts)) from None
