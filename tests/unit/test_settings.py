"""Settings: defaults < profile < metadata, every bad value named with its field and source."""

import pytest
from backdrop.limits import check_metadata
from backdrop.setting_layers import metadata_to_values, resolve
from backdrop.settings import Settings, SettingsError
from backdrop.uploads import UploadRejected


def resolve_settings(*sources, **named) -> Settings:
    """The merged settings alone (the notes are tested in test_settings_layers)."""
    return resolve(*sources, **named).settings


DEFAULTS = {"prompt": "on a marble table", "number_of_images": 4, "output_format": "jpeg", "aspect_ratio": "1:1"}


def test_defaults_alone_resolve():
    s = resolve_settings(DEFAULTS, None, {})
    assert s.prompt == "on a marble table"
    assert s.number_of_images == 4
    assert s.output_format == "jpeg"


def test_later_sources_win():
    s = resolve_settings(DEFAULTS, {"number_of_images": 2, "output_format": "png"}, {"number_of_images": "1"})
    assert s.number_of_images == 1  # metadata beats profile
    assert s.output_format == "png"  # profile beats defaults


def test_metadata_keys_map_to_fields():
    values = metadata_to_values({"backdrop-number-of-images": "2", "backdrop-prompt": " a beach ", "other": "x"})
    assert values == {"number_of_images": "2", "prompt": "a beach"}


def test_profile_key_in_metadata_is_not_a_setting():
    assert metadata_to_values({"backdrop-profile": "summer"}) == {}


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"number_of_images": "9"}, "number_of_images"),
        ({"number_of_images": "two"}, "number_of_images"),
        ({"aspect_ratio": "7:4"}, "aspect_ratio"),  # the prose pages' old list, not the OpenAPI's
        ({"output_format": "gif"}, "output_format"),
        ({"prompt": "ab"}, "prompt"),
        ({"color": "red"}, "color"),
        ({"jpeg_quality": "0"}, "jpeg_quality"),
        ({"colour": "#ffffff"}, "colour"),
    ],
)
def test_bad_metadata_names_field_and_source(metadata, field):
    with pytest.raises(SettingsError) as err:
        resolve_settings(DEFAULTS, None, metadata)
    assert field in str(err.value)
    assert "object metadata" in str(err.value)


def test_bad_profile_value_names_the_profile():
    with pytest.raises(SettingsError, match=r"number_of_images \(profile summer\)"):
        resolve_settings(DEFAULTS, {"number_of_images": 0}, {}, profile_name="summer")


def test_autoprompt_replaces_an_earlier_prompt():
    s = resolve_settings(DEFAULTS, None, {"autoprompt": "true", "guidelines": "bright"})
    assert s.autoprompt and s.prompt is None and s.guidelines == "bright"


def test_a_later_prompt_replaces_autoprompt():
    s = resolve_settings({"autoprompt": True}, None, {"prompt": "on snow"})
    assert not s.autoprompt and s.prompt == "on snow"


def test_changing_format_drops_options_of_the_old_one():
    s = resolve_settings({**DEFAULTS, "jpeg_quality": 80}, {"output_format": "webp", "quality": 70}, {})
    assert s.output_format == "webp" and s.jpeg_quality is None and s.quality == 70


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "prompt"),
        ({"prompt": "abc", "autoprompt": True}, "autoprompt"),
        ({"prompt": "abc", "view": "top"}, "a prompt scene takes no view"),
        ({"template_url": "https://e/t.png", "view": "top", "aspect_ratio": "1:1"}, "a template scene takes no aspect"),
        ({"template_url": "https://e/t.png"}, "view: a template scene requires view"),
        ({"effect": "shadows", "negative_prompt": "blurry"}, "a shadow scene takes no negative_prompt"),
        ({"effect": "shadows", "template_url": "https://e/t.png", "view": "top"}, "effect"),
        ({"prompt": "abc", "placement_type": "original", "scale": 0.5}, "placement_type original takes no scale"),
        ({"prompt": "abc", "placement_type": "padding"}, "padding: placement_type padding requires"),
        ({"prompt": "abc", "padding": "10%"}, "placement_type absolute takes no padding"),
        ({"effect": "shadows", "color": "transparent"}, "transparent needs output_format=png"),
        ({"prompt": "abc", "color": "transparent", "output_format": "png"}, "a prompt scene takes a hex colour"),
        ({"template_url": "https://e/t.png", "view": "auto"}, "view top or front"),
        ({"prompt": "abc", "guidelines": "warm light"}, "guidelines go only with autoprompt"),
        ({"prompt": "abc", "output_format": "png", "jpeg_quality": 80}, "jpeg_quality"),
        ({"prompt": "abc", "output_format": "webp", "compression": "lossless", "quality": 50}, "quality"),
        ({"prompt": "abc", "position_x": 0.2}, "position_x"),
    ],
)
def test_incoherent_settings_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        Settings.model_validate(values)


def test_fingerprint_is_stable_and_sensitive():
    a = Settings(prompt="on a table", number_of_images=2)
    b = Settings(prompt="on a table", number_of_images=2)
    c = Settings(prompt="on a table", number_of_images=3)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize("second", ["4", "1"])  # different values or the same: one setting, one key
def test_two_spellings_of_one_setting_are_refused_naming_both_keys(second):
    metadata = {"backdrop-number-of-images": "1", "backdrop-number_of_images": second, "backdrop-prompt": "a beach"}
    with pytest.raises(SettingsError) as refused:
        metadata_to_values(metadata)
    assert str(refused.value) == (
        "x-amz-meta-backdrop-number-of-images and x-amz-meta-backdrop-number_of_images both set number_of_images: "
        "give it once, as x-amz-meta-backdrop-number-of-images"
    )
    with pytest.raises(UploadRejected) as rejected:  # the processor's check, before any setting is resolved
        check_metadata(metadata)
    assert rejected.value.reason == "bad_metadata"
    assert "backdrop-number-of-images and" in rejected.value.message
    assert "backdrop-number_of_images both" in rejected.value.message


def test_one_spelling_alone_is_read_whichever_it_is():
    check_metadata({"backdrop-number_of_images": "1"})
    assert metadata_to_values({"backdrop-number_of_images": "1"}) == {"number_of_images": "1"}
    assert metadata_to_values({"backdrop-number-of-images": "1", "other-number_of_images": "4"}) == {
        "number_of_images": "1"
    }
