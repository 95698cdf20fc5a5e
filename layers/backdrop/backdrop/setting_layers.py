"""The settings' layers: defaults < profile < per-object S3 metadata, merged into one Settings, later wins. A setting
that the upload's own choices leave no place for is refused when given at or above the layer that made the choice,
and left out with a note when it only came from below it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from backdrop.settings import (
    SETTING_NAMES,
    SceneKind,
    SettingNote,
    Settings,
    SettingsError,
    not_carried,
    truthy,
)

# S3 user metadata keys are read as `backdrop-<field name with '-' for '_'>`, e.g. x-amz-meta-backdrop-prompt.
METADATA_PREFIX = "backdrop-"
# A field set to one of these decides a scene kind (a prompt also rides along with a template).
_KIND_MARKERS: dict[str, SceneKind] = {"effect": "shadow", "template_url": "template"}


def metadata_keys(metadata: Mapping[str, str]) -> dict[str, str]:
    """Which metadata key gives each of our names: {"number_of_images": "backdrop-number-of-images"}; other
    metadata keys are not ours. Raises SettingsError naming both keys when two spellings give one name: S3 keeps
    `backdrop-number-of-images` and `backdrop-number_of_images` apart, and which one wins would be a guess."""
    keys: dict[str, str] = {}
    for key in sorted(metadata):  # sorted: the same message whatever order S3 lists them in
        lowered = key.lower()
        if not lowered.startswith(METADATA_PREFIX):
            continue
        name = lowered.removeprefix(METADATA_PREFIX).replace("-", "_")
        if name in keys:
            raise SettingsError(
                f"x-amz-meta-{keys[name]} and x-amz-meta-{key} both set {name}: give it once, as "
                f"x-amz-meta-{METADATA_PREFIX}{name.replace('_', '-')}"
            )
        keys[name] = key
    return keys


def metadata_to_values(metadata: Mapping[str, str]) -> dict[str, str]:
    """`backdrop-number-of-images: 2` -> {"number_of_images": "2"}; other metadata keys are not ours.
    Raises SettingsError when two keys give one setting (see metadata_keys)."""
    # `profile` chooses the profile, it is not a setting.
    return {name: metadata[key].strip() for name, key in metadata_keys(metadata).items() if name != "profile"}


class Resolved(NamedTuple):
    settings: Settings
    notes: list[SettingNote]


def _scene_decided_at(layers: list[Mapping[str, Any]]) -> tuple[SceneKind, int]:
    """The layer whose choice makes the scene kind: the last to set an effect, a template_url or a prompt,
    except that a prompt (or autoprompt) over a template refines the template rather than replacing it."""
    kind: SceneKind = "prompt"
    layer = -1
    for index, values in enumerate(layers):
        marker = next((_KIND_MARKERS[name] for name in ("effect", "template_url") if _given(values.get(name))), None)
        if marker is not None:
            kind, layer = marker, index
        elif (_given(values.get("prompt")) or truthy(values.get("autoprompt"))) and kind != "template":
            kind, layer = "prompt", index
    return kind, layer


def _given(value: Any) -> bool:
    return value is not None and value != ""


def resolve(
    defaults: Mapping[str, Any],
    profile: Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    *,
    profile_name: str | None = None,
) -> Resolved:
    """Merge the three sources, later wins, and validate the result. Raises SettingsError naming the field.

    A setting the upload's scene kind (or placement, or output format) cannot carry is refused when it was
    given at the layer that made that choice or a later one; when it only came from an earlier layer (a
    stack-wide default aspect ratio under a template profile) it is left out, and a note says so."""
    layers: list[tuple[str, Mapping[str, Any]]] = [("defaults", defaults)]
    if profile is not None:
        layers.append((f"profile {profile_name}" if profile_name else "profile", profile))
    layers.append(("object metadata", metadata))
    merged: dict[str, Any] = {}
    layer_of: dict[str, int] = {}
    sources: dict[str, str] = {}  # which source each merged value came from, for messages
    given: list[Mapping[str, Any]] = []
    for index, (source, values) in enumerate(layers):
        unknown = sorted(set(values) - SETTING_NAMES)
        if unknown:
            raise SettingsError(
                f"{', '.join(unknown)} ({source}): unknown setting; known settings are "
                + ", ".join(sorted(SETTING_NAMES))
            )
        given.append({name: value for name, value in values.items() if _given(value)})
        for name, value in given[-1].items():
            merged[name] = value
            layer_of[name] = index
            sources[name] = source

    # The layer at which each deciding choice was made; -1 when nobody made it (the default applies).
    kind, kind_layer = _scene_decided_at(given)
    deciders = {
        "scene": kind_layer,
        "placement": layer_of.get("placement_type", -1),
        "format": layer_of.get("output_format", -1),
        "compression": layer_of.get("compression", -1),
    }
    # A prompt and an autoprompt from different layers: the later one is the choice.
    if "prompt" in merged and truthy(merged.get("autoprompt")):
        earlier, later = sorted(("prompt", "autoprompt"), key=lambda name: layer_of[name])
        deciders["prompt"] = layer_of[later]
        if layer_of[earlier] < layer_of[later]:
            merged.pop(earlier)
    else:
        deciders["prompt"] = max(layer_of.get("prompt", -1), layer_of.get("autoprompt", -1))

    notes: list[SettingNote] = []
    problems: list[str] = []
    replaced = {name for name in ("prompt", "autoprompt") if name in layer_of and name not in merged}
    for name in replaced:
        notes.append(
            SettingNote(
                field=name,
                value=str(layers[layer_of[name]][1][name]),
                source=sources[name],
                reason=f"replaced by the {'autoprompt' if name == 'prompt' else 'prompt'} from "
                f"{sources['autoprompt' if name == 'prompt' else 'prompt']}",
            )
        )
    for name in list(merged):
        found = not_carried(name, merged, kind)
        if found is None:
            continue
        reason, decided_by = found
        if layer_of[name] >= deciders[decided_by]:
            problems.append(f"{name} ({sources[name]}): {reason}")
        else:
            notes.append(SettingNote(field=name, value=str(merged.pop(name)), source=sources[name], reason=reason))
    if problems:
        raise SettingsError("; ".join(problems))
    try:
        return Resolved(Settings.model_validate(merged), notes)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False):
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["loc"]:
                field = str(err["loc"][0])
                parts.append(f"{field} ({sources.get(field, 'defaults')}): {message}")
            else:
                parts.append(_with_sources(message, sources))
        raise SettingsError("; ".join(parts)) from None


def _with_sources(message: str, sources: Mapping[str, str]) -> str:
    """Settings' own checks say `field: why`; add where each field came from."""
    parts = []
    for part in message.split("; "):
        field, sep, rest = part.partition(": ")
        parts.append(f"{field} ({sources[field]}): {rest}" if sep and field in sources else part)
    return "; ".join(parts)
