"""Every setting by scene kind by layer: the value is sent, or the upload is refused naming the field and the
scene kind, or (given only below the layer that chose the kind) it is left out with a note. Never dropped."""

from __future__ import annotations

from typing import Any

import pytest
from backdrop import settings as library
from backdrop.claid.request import build_scene_request
from backdrop.setting_layers import resolve
from backdrop.settings import NOT_FOR_CLAID, SETTING_NAMES, SettingsError
from backdrop_kit.emulator.schema import parse

# The scene kind is chosen by the profile, so each field is tried below it, with it, and above it.
KINDS: dict[str, dict[str, Any]] = {
    "prompt": {"prompt": "on a wooden floor"},
    "template": {"template_url": "https://e.example/t.png", "view": "top"},
    "shadow": {"effect": "shadows"},
}
LAYERS = ("defaults", "profile", "metadata")
# A valid value for each setting (with the companions it needs to make sense on its own).
VALUES: dict[str, dict[str, Any]] = {
    "prompt": {"prompt": "in a sunny kitchen"},
    "autoprompt": {"autoprompt": True},
    "guidelines": {"autoprompt": True, "guidelines": "warm light"},
    "negative_prompt": {"negative_prompt": "people, text"},
    "model": {"model": "v2-beta"},
    "aspect_ratio": {"aspect_ratio": "16:9"},
    "color": {"color": "#336699"},
    "steps": {"steps": 30},
    "preference": {"preference": "best"},
    "template_url": {"template_url": "https://e.example/other.png", "view": "front"},
    "template_mode": {"template_mode": "lock"},
    "view": {"view": "front"},
    "effect": {"effect": "shadows"},
    "placement_type": {"placement_type": "original"},
    "scale": {"scale": 0.5},
    "rotation_degree": {"rotation_degree": 45},
    "position_x": {"position_x": 0.25, "position_y": 0.75},
    "position_y": {"position_x": 0.5, "position_y": 0.1},
    "padding": {"placement_type": "padding", "padding": "10%"},
    "number_of_images": {"number_of_images": 2},
    "output_format": {"output_format": "webp"},
    "jpeg_quality": {"jpeg_quality": 70},
    "jpeg_progressive": {"jpeg_progressive": False},
    "png_compression": {"png_compression": "best"},
    "compression": {"output_format": "avif", "compression": "lossless"},
    "quality": {"output_format": "webp", "quality": 55},
}
CARRIED_BY = {
    "prompt": {"prompt", "autoprompt", "guidelines", "model", "negative_prompt", "steps", "color", "aspect_ratio"}
    | {"preference"},
    "template": {"template_url", "view", "template_mode", "model", "color", "prompt", "autoprompt", "guidelines"}
    | {"negative_prompt", "steps"},
    "shadow": {"effect", "model", "color", "view", "aspect_ratio"},
}
SCENE_FIELDS = set().union(*CARRIED_BY.values())
MARKERS = {"prompt", "autoprompt", "guidelines", "template_url", "effect"}  # these choose (or follow) the kind


def test_every_setting_is_in_the_table():
    assert set(VALUES) == SETTING_NAMES - NOT_FOR_CLAID


def test_the_settings_read_the_same_scene_table_off_the_contracts_models():
    """This table is the test's own reading of the contract; the library derives its one from claid.models."""
    assert {kind: set(fields) for kind, fields in library.SCENE_FIELDS.items()} == CARRIED_BY


@pytest.mark.parametrize("layer", LAYERS)
def test_the_publish_policy_resolves_by_layer_and_never_reaches_claid(layer):
    defaults: dict[str, Any] = {"number_of_images": 1, "publish": "all"}
    profile: dict[str, Any] = {**KINDS["prompt"]}
    metadata: dict[str, str] = {}
    {"defaults": defaults, "profile": profile, "metadata": metadata}[layer]["publish"] = "review"
    settings, notes = resolve(defaults, profile, metadata, profile_name="shop")
    assert settings.publish == "review" and not notes
    body = build_scene_request(settings, "storage://shop/incoming/x.png", None).body()
    assert "publish" not in str(body)
    parse(body)
    # choosing how to publish is not a different generation: same job id, so never paid twice
    assert settings.fingerprint() == settings.model_copy(update={"publish": "none"}).fingerprint()


def test_an_unknown_publish_policy_is_refused_naming_the_field():
    with pytest.raises(SettingsError, match=r"publish \(object metadata\)"):
        resolve({}, {**KINDS["prompt"]}, {"publish": "sometimes"}, profile_name="shop")


def sent(field: str, body: dict[str, Any]) -> Any:
    """Where a setting lands in the request body (None when it is not there)."""
    scene, obj, output = body["scene"], body["object"], body["output"]
    fmt = output.get("format")
    fmt = fmt if isinstance(fmt, dict) else {"type": fmt}
    comp = fmt.get("compression")
    found: dict[str, Any] = {
        "autoprompt": (isinstance(scene.get("prompt"), dict) and scene["prompt"].get("generate")) or None,
        "guidelines": (isinstance(scene.get("prompt"), dict) and scene["prompt"].get("guidelines")) or None,
        "position_x": obj.get("position", {}).get("x"),
        "position_y": obj.get("position", {}).get("y"),
        "number_of_images": output.get("number_of_images"),
        "output_format": fmt.get("type"),
        "jpeg_quality": fmt.get("quality"),
        "jpeg_progressive": fmt.get("progressive"),
        "png_compression": comp,
        "compression": comp if isinstance(comp, str) or comp is None else comp["type"],
        "quality": comp.get("quality") if isinstance(comp, dict) else None,
    }
    if field in found:
        return found[field]
    return scene.get(field) if field in SCENE_FIELDS else obj.get(field)


def as_metadata(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def layered(kind: str, field: str, layer: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    extra = VALUES[field]
    defaults: dict[str, Any] = {"number_of_images": 1}
    profile: dict[str, Any] = dict(KINDS[kind])
    metadata: dict[str, str] = {}
    if layer == "defaults":
        defaults.update(extra)
    elif layer == "profile":
        profile.update(extra)
    else:
        metadata.update(as_metadata(extra))
    return defaults, profile, metadata


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("field", sorted(VALUES))
def test_a_setting_is_sent_refused_or_noted_never_dropped(field, kind, layer):
    defaults, profile, metadata = layered(kind, field, layer)
    # the same field given again by a later layer is an ordinary override, not a drop
    expected = profile[field] if layer == "defaults" and field in profile else VALUES[field][field]
    try:
        settings, notes = resolve(defaults, profile, metadata, profile_name="shop")
    except SettingsError as exc:
        message = str(exc)
        assert any(f in message for f in {field, *VALUES[field], *KINDS[kind]}), message
        if field not in MARKERS and field in SCENE_FIELDS:
            assert layer != "defaults", f"a lower-layer {field} broke a {kind} upload: {message}"
            assert f"a {kind} scene takes no {field}" in message or "view" in message, message
        return
    body = build_scene_request(settings, "storage://shop/incoming/x.png", None).body()
    parse(body)  # never a body Claid would refuse
    noted = {note.field: note for note in notes}
    if sent(field, body) == expected:
        assert field not in noted
        if field in SCENE_FIELDS and field not in MARKERS:
            assert field in CARRIED_BY[settings.kind]
        return
    assert field in noted, f"{field}={expected!r} from {layer} silently dropped: {body}"
    assert noted[field].reason and noted[field].source in ("defaults", "profile shop")
    if field in SCENE_FIELDS and field not in MARKERS:
        assert layer == "defaults" and f"a {kind} scene takes no {field}" in noted[field].reason


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("field", sorted(SCENE_FIELDS - MARKERS))
def test_scene_fields_follow_the_contract_exactly(field, kind):
    """Above the kind's layer: sent if the kind carries it, else refused; below it: sent or noted."""
    carried = field in CARRIED_BY[kind]
    for layer in LAYERS:
        defaults, profile, metadata = layered(kind, field, layer)
        if field == "view" and kind == "template":
            carried = True  # a template always has a view: the later one wins
        if carried:
            settings, notes = resolve(defaults, profile, metadata)
            assert sent(field, build_scene_request(settings, "https://e.example/x.png", None).body()) is not None
            assert not notes
        elif layer == "defaults":
            settings, notes = resolve(defaults, profile, metadata)
            assert [note.field for note in notes] == [field]
        else:
            with pytest.raises(SettingsError, match=f"{field} .*: a {kind} scene takes no {field}"):
                resolve(defaults, profile, metadata)


def test_a_stack_default_ratio_does_not_break_templates_but_a_merchants_ratio_is_refused():
    defaults = {"prompt": "on a marble table", "aspect_ratio": "1:1", "model": "v1"}
    template = {"template_url": "https://e.example/t.png", "view": "top"}
    settings, notes = resolve(defaults, template, {}, profile_name="kitchen")
    assert settings.aspect_ratio is None and settings.prompt == "on a marble table"
    assert [(n.field, n.value, n.source) for n in notes] == [("aspect_ratio", "1:1", "defaults")]
    assert "template scene takes no aspect_ratio" in notes[0].reason
    with pytest.raises(SettingsError, match=r"aspect_ratio \(object metadata\): a template scene takes no"):
        resolve(defaults, template, {"aspect_ratio": "16:9"}, profile_name="kitchen")
    with pytest.raises(SettingsError, match=r"aspect_ratio \(profile kitchen\)"):
        resolve(defaults, {**template, "aspect_ratio": "16:9"}, {}, profile_name="kitchen")


def test_the_issues_reports_are_fixed():
    template = {"template_url": "https://e.example/t.png", "view": "top"}
    neg = build_scene_request(
        resolve({}, None, {**template, "negative_prompt": "people"}).settings, "https://e.example/x.png", None
    )
    assert neg.body()["scene"]["negative_prompt"] == "people"
    v2 = build_scene_request(resolve({}, None, {**template, "model": "v2"}).settings, "https://e.example/x.png", None)
    assert v2.body()["scene"]["model"] == "v2"
    with pytest.raises(SettingsError, match="view: a template scene requires view"):
        resolve({}, None, {"template_url": "https://e.example/t.png"})
    with pytest.raises(SettingsError, match=r"view \(object metadata\): a prompt scene takes no view"):
        resolve({}, None, {"prompt": "on a table", "view": "top"})


def test_a_later_kind_replaces_an_earlier_one_with_notes():
    settings, notes = resolve(
        {"prompt": "on a table", "negative_prompt": "blurry"},
        {"template_url": "https://e.example/t.png", "view": "top", "template_mode": "lock"},
        {"effect": "shadows"},
        profile_name="kitchen",
    )
    assert settings.kind == "shadow" and settings.view == "top"
    assert {n.field: n.source for n in notes} == {
        "prompt": "defaults",
        "negative_prompt": "defaults",
        "template_url": "profile kitchen",
        "template_mode": "profile kitchen",
    }
    # a prompt over a template profile refines the template rather than replacing it
    refined, notes = resolve({}, {"template_url": "https://e.example/t.png", "view": "top"}, {"prompt": "at dusk"})
    assert refined.kind == "template" and refined.prompt == "at dusk" and not notes
