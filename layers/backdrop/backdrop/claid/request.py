"""The one place a Claid scene/create request is built from settings, an input URI and a destination."""

from __future__ import annotations

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
from backdrop.settings import Settings


def _format(settings: Settings) -> OutputFormatSpec:
    fmt = settings.output_format
    if fmt == "jpeg" and (settings.jpeg_quality is not None or settings.jpeg_progressive is not None):
        return JpegFormat(type="jpeg", quality=settings.jpeg_quality, progressive=settings.jpeg_progressive)
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
        return GeneratedPrompt(generate=True, guidelines=settings.guidelines)
    return settings.prompt


def _scene(settings: Settings) -> Scene:
    # Settings has already refused any field the scene kind cannot carry, so each one below is sent.
    kind = settings.kind
    if kind == "shadow":
        return ShadowScene(
            model=settings.model,
            color=settings.color,
            view=settings.view,
            aspect_ratio=settings.aspect_ratio,
        )
    assert settings.color != "transparent"  # Settings allows it only in a shadow scene
    if kind == "template":
        assert settings.template_url is not None and settings.view in ("top", "front")
        return TemplateScene(
            template_url=settings.template_url,
            view=settings.view,
            model=settings.model,
            template_mode=settings.template_mode,
            color=settings.color,
            prompt=_prompt(settings),
            negative_prompt=settings.negative_prompt,
            steps=settings.steps,
        )
    prompt = _prompt(settings)
    assert prompt is not None  # Settings requires a prompt or autoprompt in a prompt scene
    return PromptScene(
        prompt=prompt,
        model=settings.model,
        negative_prompt=settings.negative_prompt,
        steps=settings.steps,
        color=settings.color,
        aspect_ratio=settings.aspect_ratio,
        preference=settings.preference,
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
        scale=settings.scale,
        rotation_degree=settings.rotation_degree,
        position=position,
    )


def build_scene_request(settings: Settings, image_url: str, destination: str | None) -> SceneRequest:
    """`destination` is a storage:// folder (connected storage) or None (Claid's temporary bucket)."""
    return SceneRequest(
        object=_object(settings, image_url),
        scene=_scene(settings),
        # number_of_images is always sent: omitting it means 4 images (8 credits).
        output=Output(destination=destination, number_of_images=settings.number_of_images, format=_format(settings)),
    )
