"""The one place a Claid scene/create request is built from settings, an input URI and a destination."""

from __future__ import annotations

from backdrop.claid.models import (
    AvifFormat,
    Compression,
    GeneratedPrompt,
    JpegFormat,
    Output,
    OutputFormatSpec,
    PngFormat,
    Position,
    SceneObject,
    SceneRequest,
    ShadowScene,
    TemplateScene,
    TextScene,
    WebpFormat,
)
from backdrop.settings import Settings


def _format(settings: Settings) -> OutputFormatSpec:
    fmt = settings.output_format
    if fmt == "jpeg" and (settings.jpeg_quality is not None or settings.jpeg_progressive is not None):
        return JpegFormat(quality=settings.jpeg_quality, progressive=settings.jpeg_progressive)
    if fmt == "png" and settings.png_compression is not None:
        return PngFormat(compression=settings.png_compression)
    if fmt in ("webp", "avif") and settings.compression is not None:
        compression = Compression(type=settings.compression, quality=settings.quality)
        return WebpFormat(compression=compression) if fmt == "webp" else AvifFormat(compression=compression)
    if fmt in ("webp", "avif") and settings.quality is not None:
        compression = Compression(type="lossy", quality=settings.quality)
        return WebpFormat(compression=compression) if fmt == "webp" else AvifFormat(compression=compression)
    return fmt


def _scene(settings: Settings) -> TextScene | TemplateScene | ShadowScene:
    if settings.effect == "shadows":
        return ShadowScene(color=settings.color, view=settings.view)
    if settings.template_url is not None:
        return TemplateScene(
            template_url=settings.template_url,
            template_mode=settings.template_mode,
            view=settings.view,
            prompt=settings.prompt,
            color=settings.color,
            steps=settings.steps,
        )
    prompt: str | GeneratedPrompt
    if settings.autoprompt:
        prompt = GeneratedPrompt(guidelines=settings.guidelines)
    else:
        assert settings.prompt is not None  # Settings guarantees one scene mode
        prompt = settings.prompt
    return TextScene(
        model=settings.model,
        prompt=prompt,
        negative_prompt=settings.negative_prompt,
        aspect_ratio=settings.aspect_ratio,
        color=settings.color,
        steps=settings.steps,
        preference=settings.preference,
    )


def build_scene_request(settings: Settings, image_url: str, destination: str | None) -> SceneRequest:
    """`destination` is a storage:// folder (connected storage) or None (Claid's temporary bucket)."""
    position = None
    if settings.position_x is not None and settings.position_y is not None:
        position = Position(x=settings.position_x, y=settings.position_y)
    return SceneRequest(
        object=SceneObject(
            image_url=image_url,
            placement_type=settings.placement_type,
            scale=settings.scale,
            rotation_degree=settings.rotation_degree,
            position=position,
        ),
        scene=_scene(settings),
        # number_of_images is always sent: omitting it means 4 images (8 credits).
        output=Output(destination=destination, number_of_images=settings.number_of_images, format=_format(settings)),
    )
