"""The main job, offline: photos in, variants + contact sheet + a credit summary out."""

from __future__ import annotations

import itertools
import json
import math
import mimetypes
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from email.charset import Charset
from pathlib import Path
from typing import Any

from backdrop.jobs import current_month
from backdrop.publishing import renditions_of
from backdrop.store.ledger import DynamoLedger
from backdrop.store.selections import DynamoSelections
from PIL import Image, ImageDraw, ImageFont, ImageOps

from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.emulator.images import open_bounded
from backdrop_kit.emulator.latency import LatencyModel
from backdrop_kit.runner import Runner
from backdrop_kit.stack import LocalStack, StackOptions

SAMPLES = Path(__file__).resolve().parent / "samples"


def bundled_samples() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


@dataclass
class DemoOptions:
    files: list[Path] = field(default_factory=list)
    out_dir: Path = Path("out")
    number_of_images: int | None = None
    output_format: str | None = None
    prompt: str | None = None
    mode: str = "connected"
    monthly_credit_budget: float = 0
    log_level: str = "WARNING"  # the functions' own JSON logs; the demo prints its own progress lines
    latency: float = 0.0  # the emulator's median seconds for a one-image call (0 = instant)
    copies: int = 1  # upload each photo this many times (distinct keys): a catalogue's worth of work
    seed: int = 0
    publish: str | None = None  # none | all | first | review: the publishing policy, as object metadata
    # The sizes each published image is also made at (Claid's image edit), as object metadata; implies publish first.
    renditions: str | None = None


@dataclass
class JobRow:
    file: str
    key: str
    status: str
    reason: str
    images: int
    credits: float
    outputs: list[str]
    job_id: str
    published: list[str] = field(default_factory=list)  # stable keys in the bucket, the first chosen first
    chosen: list[int] = field(default_factory=list)  # which variants (1-based) are published
    # Why the contact sheet shows no picture of the input (a decompression bomb, not an image); "" when it does.
    input_problem: str = ""
    # Each rendition of the published images: stable key, size asked for, pixel size made, local copy.
    renditions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DemoResult:
    jobs: list[JobRow]
    ledger_credits: float
    ledger_images: int
    contact_sheet: Path | None
    seconds: float
    claid: dict[str, Any] = field(default_factory=dict)  # the emulator's own bill: what Claid charged
    pipeline_seconds: float = 0.0  # from the last upload until every job was recorded
    edit_credits: float = 0.0  # the ledger's line for Claid's image edits (renditions)
    edits: int = 0
    renditions_sheet: Path | None = None

    @property
    def bill_matches(self) -> bool:
        ledger = self.ledger_credits + self.edit_credits
        return abs(ledger - float(self.claid.get("charged_credits", 0))) < 1e-9

    def as_json(self) -> dict[str, Any]:
        return {
            "jobs": [row.__dict__ for row in self.jobs],
            "ledger": {
                "credits": self.ledger_credits,
                "images": self.ledger_images,
                "edit_credits": self.edit_credits,
                "edits": self.edits,
            },
            "claid": self.claid,
            "ledger_matches_claid": self.bill_matches,
            "contact_sheet": str(self.contact_sheet) if self.contact_sheet else None,
            "renditions_sheet": str(self.renditions_sheet) if self.renditions_sheet else None,
            "seconds": round(self.seconds, 2),
            "pipeline_seconds": round(self.pipeline_seconds, 2),
        }


def _metadata(options: DemoOptions) -> dict[str, str]:
    meta = {}
    if options.number_of_images is not None:
        meta["backdrop-number-of-images"] = str(options.number_of_images)
    if options.output_format is not None:
        meta["backdrop-output-format"] = options.output_format
    if options.publish is not None:
        meta["backdrop-publish"] = options.publish
    elif options.renditions:
        meta["backdrop-publish"] = "first"  # renditions are made of what is published
    if options.renditions is not None:
        meta["backdrop-renditions"] = options.renditions
    if options.prompt is not None:
        meta["backdrop-prompt"] = metadata_header_value(options.prompt)
    return meta


def metadata_header_value(text: str) -> str:
    """`text` as an S3 user metadata header carries it: printable US-ASCII as it is, anything else as RFC 2047
    encoded words (at most 75 characters each), which S3 decodes before it stores the value."""
    if text.isascii() and text.isprintable():
        return text
    words = Charset("utf-8").header_encode_lines(text, itertools.repeat(75))
    return " ".join(word for word in words if word)


def run_demo(
    options: DemoOptions,
    progress: Callable[[str], None] = lambda _: None,
    hold: Callable[[LocalStack, Runner, DemoResult], None] | None = None,
) -> DemoResult:
    """Run the pipeline on the photos. `hold`, when given, is called with the stack still running once the
    result is known (the review page serves from it), and the stack stops when it returns."""
    started = time.monotonic()
    files = options.files or bundled_samples()
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"no such file: {', '.join(missing)}")
    progress("starting the local stack (moto server + Claid emulator)")
    emulator = EmulatorConfig(latency=options.latency, seed=options.seed)
    # An unanswered call is settled once the emulator can no longer be writing its images (its longest
    # generation time), rather than after the deployed default of ten minutes.
    longest = LatencyModel(options.latency, emulator.latency_sigma).longest()
    stack_options = StackOptions(
        mode=options.mode,
        monthly_credit_budget=options.monthly_credit_budget,
        log_level=options.log_level,
        emulator=emulator,
        parameters={"ClaidUnknownOutcomeSettleSeconds": str(math.ceil(longest) + 5)},
    )
    with LocalStack(stack_options) as stack:
        runner = Runner(stack, progress=progress)
        if options.latency:
            model = stack.emulator.latency
            progress(
                f"Claid latency: median {options.latency:g}s for one image, {model.percentile_99():.1f}s at p99 "
                f"({model.percentile_99(4):.1f}s for four); call budget {stack.parameters['ClaidCallBudgetSeconds']}s"
            )
        s3 = stack.client("s3")
        metadata = _metadata(options)
        keys = {}
        for path in files:
            for copy in range(options.copies):
                name = path.name if options.copies == 1 else f"{path.stem}-{copy + 1:03d}{path.suffix}"
                key = f"incoming/{name}"
                keys[key] = path
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                s3.put_object(
                    Bucket=stack.uploads_bucket,
                    Key=key,
                    Body=path.read_bytes(),
                    ContentType=content_type,
                    Metadata=metadata,
                )
        progress(f"uploaded {len(keys)} photo(s) to s3://{stack.uploads_bucket}/incoming/")
        uploaded = time.monotonic()
        publishing = options.publish in ("all", "first") or (options.publish is None and bool(options.renditions))
        progress(
            "draining the pipeline: S3 -> SQS -> processor -> Claid emulator -> EventBridge -> recorder"
            + (" -> publisher" if publishing else "")
            + (" -> renditions (Claid's image edit)" if publishing and options.renditions else "")
        )
        # Long enough for every call at the emulator's slowest, at Claid's per-minute limit, plus settling.
        runner.drain(timeout=240 + len(keys) * 0.6 + 3 * longest)
        pipeline_seconds = time.monotonic() - uploaded
        rows, sheet_rows = _collect(stack, keys, options.out_dir)
        usage = DynamoLedger(stack.client("dynamodb"), stack.app_table).month_usage(current_month())
        bill = stack.emulator.stats()
        sheet = draw_contact_sheet(sheet_rows, options.out_dir / "contact-sheet.png") if sheet_rows else None
        with_renditions = [row for row in rows if row.renditions]
        renditions_sheet = (
            draw_renditions_sheet(with_renditions, options.out_dir / "renditions.png") if with_renditions else None
        )
        total = usage.get("total", {})
        result = DemoResult(
            jobs=rows,
            ledger_credits=float(total.get("credits_used", Decimal(0))),
            ledger_images=int(total.get("images", 0)),
            contact_sheet=sheet,
            seconds=time.monotonic() - started,
            claid={
                "charged_credits": bill["credits_charged"],
                "requests": bill["requests"],
                "images": bill["images"],
                "charged_without_answer": bill["charged_without_answer"],
                "by_status": bill["by_status"],
                "edits": bill["edits"],
                "edit_credits": bill["edit_credits"],
            },
            pipeline_seconds=pipeline_seconds,
            edit_credits=float(total.get("edit_credits_used", Decimal(0))),
            edits=int(total.get("edits", 0)),
            renditions_sheet=renditions_sheet,
        )
        if hold is not None:
            hold(stack, runner, result)
    return result


SheetRow = tuple[Path, list[Path], list[int]]  # the input, its variants, the variants published (1-based)


def _collect(stack: LocalStack, keys: dict[str, Path], out_dir: Path) -> tuple[list[JobRow], list[SheetRow]]:
    s3 = stack.client("s3")
    by_key = {item["source_key"]: item for item in stack.job_items()}
    selections = DynamoSelections(stack.client("dynamodb"), stack.app_table)
    rows, sheet_rows = [], []
    problems: dict[Path, str] = {}  # the copies of one photo share their input
    for key, path in keys.items():
        name = key.removeprefix("incoming/")
        item = by_key.get(key)
        if item is None:
            rows.append(JobRow(name, key, "missing", "no terminal record (see the DLQs)", 0, 0.0, [], ""))
            continue
        detail = json.loads(item["detail"])
        saved = []
        target = out_dir / Path(name).stem
        for index, output in enumerate(detail.get("outputs", []), start=1):
            if not output.get("key"):
                continue
            target.mkdir(parents=True, exist_ok=True)
            local = target / f"variant-{index}.{output['format']}"
            local.write_bytes(s3.get_object(Bucket=output["bucket"], Key=output["key"])["Body"].read())
            saved.append(local)
        problem = detail.get("problem") or {}
        current = selections.current(stack.uploads_bucket, key)
        mine = current is not None and current.job_id == item["job_id"]
        targets = json.loads(current.targets) if mine and current else []
        chosen = [int(t["variant"]) for t in targets]
        renditions = _renditions(s3, renditions_of(current) if mine else [], target)
        if path not in problems:
            problems[path] = _unreadable(path)
        rows.append(
            JobRow(
                name,
                key,
                item["status"],
                problem.get("code", ""),
                int(item["images"]),
                float(item["credits"]),
                [str(p) for p in saved],
                item["job_id"],
                published=[t["key"] for t in targets],
                chosen=chosen,
                input_problem=problems[path],
                renditions=renditions,
            )
        )
        sheet_rows.append((path, saved, chosen))
    return rows, sheet_rows


def _renditions(s3: Any, planned: list[Any], target: Path) -> list[dict[str, Any]]:
    """Each rendition at its stable key, saved beside the variants with its pixel size; one not made (refused,
    failed) is listed with no file."""
    found = []
    for rendition in planned:
        row: dict[str, Any] = {"key": rendition.key, "spec": rendition.spec, "position": rendition.position}
        try:
            data = s3.get_object(Bucket=rendition.bucket, Key=rendition.key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            found.append({**row, "file": None, "width": None, "height": None})
            continue
        local = target / "renditions" / rendition.key.rpartition("/")[2]
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        with open_bounded(local) as image:
            found.append({**row, "file": str(local), "width": image.width, "height": image.height})
    return found


THUMB = 256
PAD = 16
LABEL = 22


def _unreadable(path: Path) -> str:
    """Why the picture at `path` cannot be drawn, from its header alone; "" when it can."""
    try:
        with open_bounded(path):
            return ""
    except ValueError as exc:
        return str(exc)


def _thumbnail(path: Path) -> tuple[Image.Image, str]:
    """The picture at `path` fitted into THUMB x THUMB, and its size. Read with the same pixel bound as the
    pipeline's (open_bounded: the header is checked before anything is decoded), and never converted at full size
    where it can be helped. Raises ValueError saying why it cannot be drawn."""
    with open_bounded(path) as img:
        size = f"{img.width}x{img.height}"
        try:
            img.draft("RGB", (THUMB, THUMB))  # a JPEG decodes at 1/2 to 1/8 of its size straight away
            # Palettes, bilevel and 16-bit pictures resize badly or not at all: into colours first, within the bound.
            picture = img if img.mode in ("RGB", "RGBA", "L", "LA") else img.convert("RGBA")
            picture.thumbnail((THUMB, THUMB))
            return ImageOps.contain(picture.convert("RGBA"), (THUMB, THUMB)), size
        except Exception as exc:  # a header that reads but pixels that do not (Pillow raises many kinds)
            raise ValueError(f"not a readable image ({type(exc).__name__})") from None


def draw_contact_sheet(rows: list[SheetRow], target: Path) -> Path:
    """Each input beside its variants, labelled; a published variant is framed and says so."""
    columns = 1 + max((len(v) for _, v, _ in rows), default=0)
    width = PAD + columns * (THUMB + PAD)
    height = PAD + len(rows) * (THUMB + LABEL + PAD)
    sheet = Image.new("RGB", (width, height), (245, 245, 242))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for r, (source, variants, chosen) in enumerate(rows):
        y = PAD + r * (THUMB + LABEL + PAD)
        for c, image_path in enumerate([source, *variants]):
            x = PAD + c * (THUMB + PAD)
            tile = Image.new("RGBA", (THUMB, THUMB), (225, 225, 220, 255))
            size = ""
            try:
                thumb, dimensions = _thumbnail(image_path)
                size = f"  {dimensions}"
                tile.alpha_composite(thumb, ((THUMB - thumb.width) // 2, (THUMB - thumb.height) // 2))
            except ValueError as exc:  # not a picture, or a bomb (the pipeline refused it too): say why, undecoded
                # Each figure stays on one line with its unit (held by a no-break space while wrapping; the font
                # has no glyph for it).
                lines = textwrap.wrap(f"not drawn: {exc}".replace(" MP", "\u00a0MP"), width=30)
                why = "\n".join(lines).replace("\u00a0", " ")
                ImageDraw.Draw(tile).multiline_text((12, THUMB // 3), why, fill=(120, 40, 40), font=font, spacing=4)
            sheet.paste(tile.convert("RGB"), (x, y))
            label = f"input: {source.name}" if c == 0 else f"variant {c}  {image_path.suffix[1:]}{size}"
            colour = (40, 40, 40)
            if c in chosen:
                position = chosen.index(c) + 1
                draw.rectangle((x - 5, y - 5, x + THUMB + 4, y + THUMB + 4), outline=(22, 128, 60), width=5)
                label = f"PUBLISHED{'' if position == 1 else f' #{position}'}  variant {c}{size}"
                colour = (22, 128, 60)
            draw.text((x, y + THUMB + 4), label[:40], fill=colour, font=font)
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)
    return target


def draw_renditions_sheet(rows: list[JobRow], target: Path) -> Path:
    """Each published image's renditions, one row per photo, each labelled with its key and its pixel size (a
    rendition that was not made says so)."""
    columns = max(len(row.renditions) for row in rows)
    width = PAD + columns * (THUMB + PAD)
    height = PAD + len(rows) * (THUMB + 2 * LABEL + PAD)
    sheet = Image.new("RGB", (width, height), (245, 245, 242))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for r, row in enumerate(rows):
        y = PAD + r * (THUMB + 2 * LABEL + PAD)
        for c, rendition in enumerate(row.renditions):
            x = PAD + c * (THUMB + PAD)
            tile = Image.new("RGBA", (THUMB, THUMB), (225, 225, 220, 255))
            if rendition["file"]:
                thumb, _ = _thumbnail(Path(rendition["file"]))
                tile.alpha_composite(thumb, ((THUMB - thumb.width) // 2, (THUMB - thumb.height) // 2))
                size = f"{rendition['width']}x{rendition['height']} px"
                colour = (40, 40, 40)
            else:
                size = "not made (see Renditions Failed)"
                colour = (120, 40, 40)
            sheet.paste(tile.convert("RGB"), (x, y))
            draw.text((x, y + THUMB + 4), rendition["key"].rpartition("/")[2][:40], fill=(40, 40, 40), font=font)
            draw.text((x, y + THUMB + 4 + LABEL), f"{row.file}: {size}"[:40], fill=colour, font=font)
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)
    return target


def print_table(result: DemoResult, stream: Any = sys.stdout) -> None:
    headers: tuple[str, ...] = ("file", "status", "reason", "images", "credits")
    table: list[tuple[str, ...]] = [
        (r.file, r.status, r.reason or "-", str(r.images), f"{r.credits:g}") for r in result.jobs
    ]
    if any(r.published for r in result.jobs):
        headers += ("published",)
        table = [
            (*row, ", ".join(f"{k} (variant {v})" for k, v in zip(r.published, r.chosen, strict=True)) or "-")
            for row, r in zip(table, result.jobs, strict=True)
        ]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line, file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), file=stream)
    print(f"\nledger: {result.ledger_credits:g} credits for {result.ledger_images} image(s) this month", file=stream)
    made = [r for row in result.jobs for r in row.renditions]
    if made or result.edits:
        ready = [r for r in made if r["file"]]
        print(
            f"renditions: {len(ready)} of {len(made)} at their stable keys; ledger: {result.edit_credits:g} credits "
            f"for {result.edits} image edit(s)",
            file=stream,
        )
        for r in ready:
            print(f"  {r['key']}  {r['width']}x{r['height']}", file=stream)
    if result.claid:
        verdict = "matches the ledger" if result.bill_matches else "DOES NOT match the ledger"
        print(
            f"Claid's bill: {result.claid['charged_credits']:g} credits for {result.claid['requests']} request(s) "
            f"({verdict})",
            file=stream,
        )
    if result.contact_sheet:
        print(f"contact sheet: {result.contact_sheet}", file=stream)
    if result.renditions_sheet:
        print(f"renditions sheet: {result.renditions_sheet}", file=stream)
    print(f"done in {result.seconds:.1f}s ({result.pipeline_seconds:.1f}s from upload to the last record)", file=stream)
