"""The one place a Claid request is built: scene/create from settings, an input URI and a destination; an image
edit from a rendition's size, an input URI and a destination."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backdrop.claid.models import (
    AbsoluteObject,
    AvifFormat,
    Compression,
    GeneratedPrompt,
    JpegFormat,
    Lossy,
    OriginalObject,
    Output,
    OutputFormatSpec,
    PaddingObject,
    PngFormat,
    Position,
    PromptScene,
    Scene,
    SceneObject,
    SceneRequest,
    ShadowScene,
    TemplateScene,
    WebpFormat,
)
from backdrop.renditions import RenditionSpec

if TYPE_CHECKING:  # settings read the contract off backdrop.claid.models, so they import this package
    from backdrop.claid.edit_models import EditRequest, Fit
    from backdrop.settings import Settings


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that have a value: Claid takes no null, so an unset field is left out."""
    return {name: value for name, value in fields.items() if value is not None}


def _format(settings: Settings) -> OutputFormatSpec:
    fmt = settings.output_format
    if fmt == "jpeg" and (settings.jpeg_quality is not None or settings.jpeg_progressive is not None):
        return JpegFormat(type="jpeg", **_given(quality=settings.jpeg_quality, progressive=settings.jpeg_progressive))
    if fmt == "png" and settings.png_compression is not None:
        return PngFormat(type="png", compression=settings.png_compression)
    if fmt in ("webp", "avif") and (settings.compression is not None or settings.quality is not None):
        compression: Compression
        if settings.quality is not None:  # Settings allows a quality only with lossy (or no) compression
            compression = Lossy(type="lossy", quality=settings.quality)
        else:
            assert settings.compression is not None
            compression = settings.compression
        return (
            WebpFormat(type="webp", compression=compression)
            if fmt == "webp"
            else AvifFormat(type="avif", compression=compression)
        )
    return fmt


def _prompt(settings: Settings) -> str | GeneratedPrompt | None:
    if settings.autoprompt:
        return GeneratedPrompt(generate=True, **_given(guidelines=settings.guidelines))
    return settings.prompt


def _scene(settings: Settings) -> Scene:
    # Settings has already refused any field the scene kind cannot carry, so each one below is sent.
    kind = settings.kind
    if kind == "shadow":
        return ShadowScene(
            **_given(model=settings.model, color=settings.color, view=settings.view, aspect_ratio=settings.aspect_ratio)
        )
    assert settings.color != "transparent"  # Settings allows it only in a shadow scene
    if kind == "template":
        assert settings.template_url is not None and settings.view in ("top", "front")
        return TemplateScene(
            template_url=settings.template_url,
            view=settings.view,
            **_given(
                model=settings.model,
                template_mode=settings.template_mode,
                color=settings.color,
                prompt=_prompt(settings),
                negative_prompt=settings.negative_prompt,
                steps=settings.steps,
            ),
        )
    prompt = _prompt(settings)
    assert prompt is not None  # Settings requires a prompt or autoprompt in a prompt scene
    return PromptScene(
        prompt=prompt,
        **_given(
            model=settings.model,
            negative_prompt=settings.negative_prompt,
            steps=settings.steps,
            color=settings.color,
            aspect_ratio=settings.aspect_ratio,
            preference=settings.preference,
        ),
    )


def _object(settings: Settings, image_url: str) -> SceneObject:
    if settings.placement_type == "original":
        return OriginalObject(image_url=image_url, placement_type="original")
    if settings.placement_type == "padding":
        assert settings.padding is not None  # Settings requires it
        return PaddingObject(image_url=image_url, placement_type="padding", padding=settings.padding)
    position = None
    if settings.position_x is not None and settings.position_y is not None:
        position = Position(x=settings.position_x, y=settings.position_y)  # y: 0 is the bottom edge
    return AbsoluteObject(
        image_url=image_url,
        placement_type="absolute",
        **_given(scale=settings.scale, rotation_degree=settings.rotation_degree, position=position),
    )


def build_scene_request(settings: Settings, image_url: str, destination: str | None) -> SceneRequest:
    """`destination` is a storage:// folder (connected storage) or None (Claid's temporary bucket)."""
    return SceneRequest(
        object=_object(settings, image_url),
        scene=_scene(settings),
        # number_of_images is always sent: omitting it means 4 images (8 credits).
        output=Output(
            **_given(destination=destination), number_of_images=settings.number_of_images, format=_format(settings)
        ),
    )


def _fit(spec: RenditionSpec) -> Fit:
    from backdrop.claid.edit_models import CropFit

    if spec.fit == "crop":
        # Claid's smart crop keeps the product in the box; a centre crop could cut it off a wide render.
        return CropFit(type="crop", crop="smart")
    return spec.fit


def build_edit_request(spec: RenditionSpec, input_uri: str, destination: str | None, *, upscale: bool) -> EditRequest:
    """A rendition: the input resized to the spec's box with its fit, upscaled by Claid when the box is larger
    than the input (smart_resize: for images that are already good, as generated ones are), in the spec's format.
    `destination` is the storage:// file (connected storage: a full file name, never a folder, so two renditions of
    one input cannot land on one name) or None (Claid's temporary bucket). The edit contract's classes are built
    here, on the first edit: a function that never edits images does not pay for them at its cold start."""
    from backdrop.claid.edit_models import EditOutput, EditRequest, Operations, Resizing, Restorations

    return EditRequest(
        input=input_uri,
        operations=Operations(
            resizing=Resizing(width=spec.width, height=spec.height, fit=_fit(spec)),
            **_given(restorations=Restorations(upscale="smart_resize") if upscale else None),
        ),
        output=EditOutput(**_given(destination=destination), format=spec.format),
    )
