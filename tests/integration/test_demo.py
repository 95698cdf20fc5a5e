"""The main job, as `make demo` runs it, on a small input set."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import httpx
import pytest
from backdrop_kit.cli import main
from backdrop_kit.demo import DemoOptions, print_table, run_demo
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples"


def test_demo_makes_variants_renditions_the_sheets_and_a_credit_summary(tmp_path):
    lines: list[str] = []
    result = run_demo(
        DemoOptions(
            files=[SAMPLES / "teal-vase-cutout.png"],
            out_dir=tmp_path,
            number_of_images=2,
            output_format="webp",
            renditions="shopify, 600x800 png canvas",  # renditions follow publishing: the first variant, then
        ),
        progress=lines.append,
    )
    [row] = result.jobs
    assert (row.status, row.images, row.credits) == ("succeeded", 2, 4.0)
    assert result.ledger_credits == 4.0 and result.ledger_images == 2
    for path in row.outputs:
        with Image.open(path) as img:
            assert (img.format, img.size) == ("WEBP", (1024, 1024))
    assert result.contact_sheet is not None
    with Image.open(result.contact_sheet) as sheet:
        assert sheet.width > sheet.height  # input + 2 variants in one row
    assert any("draining the pipeline" in line for line in lines)
    # Each rendition of the published variant, at its pixel size, on a sheet of its own; an upscale (2) and a resize
    # (1) in the ledger beside the generation, and the whole ledger is Claid's bill.
    assert [(r["key"], r["width"], r["height"]) for r in row.renditions] == [
        ("published/teal-vase-cutout.png/1-2048.jpeg", 2048, 2048),
        ("published/teal-vase-cutout.png/1-600x800.png", 600, 800),
    ]
    for rendition in row.renditions:
        with Image.open(rendition["file"]) as img:
            assert img.size == (rendition["width"], rendition["height"])
    assert (result.edits, result.edit_credits, result.claid["charged_credits"]) == (2, 3.0, 7.0) and result.bill_matches
    assert result.renditions_sheet is not None and result.renditions_sheet.is_file()
    table = io.StringIO()
    print_table(result, table)
    assert "published/teal-vase-cutout.png/1-2048.jpeg  2048x2048" in table.getvalue()


def test_demo_cli_json_and_a_bad_file(tmp_path, capsys):
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_text("hello")
    code = main(["demo", str(not_a_photo), "--out", str(tmp_path / "out"), "--json", "--quiet", "--images", "1"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    [job] = report["jobs"]
    assert (job["status"], job["reason"], job["credits"]) == ("rejected", "not_an_image", 0.0)
    assert main(["demo", str(tmp_path / "missing.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # refused while reading the command line (tests/unit/test_cli_arguments)
        main(["demo", "--latency", "-1"])
    assert refused.value.code == 2 and "argument --latency: '-1' is out of range" in capsys.readouterr().err


def write_png_bomb(path: Path, side: int, *, rgb: bool) -> int:
    """A side x side PNG of one colour, 8-bit RGB or a two-colour 1-bit palette. Its zero rows are compressed a
    block at a time, so making it takes a few megabytes whatever the size; returns what decoding it would take
    (Pillow holds a palette picture at a byte a pixel, RGB at three)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour_type, depth, row_bytes = (2, 8, 3 * side) if rgb else (3, 1, (side + 7) // 8)
    block = bytes(1 + row_bytes) * 64  # 64 rows, each a filter byte and its pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(block) for _ in range(side // 64))
    idat += compressor.compress(bytes(1 + row_bytes) * (side % 64)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, depth, colour_type, 0, 0, 0)
    with path.open("wb") as png:
        png.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header))
        if not rgb:
            png.write(chunk(b"PLTE", bytes((255, 255, 255, 200, 40, 40))))
        png.write(chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return side * side * (3 if rgb else 1)


# Runs a command and prints the peak memory of it and its descendants (Linux: kilobytes) as its last stderr line:
# a process of its own, so no other child of the test run can stand in for the demo's peak.
PEAK_OF = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def test_demo_shows_decompression_bombs_as_rows_that_say_why_and_never_decodes_them(tmp_path):
    bomb = tmp_path / "bomb-30000.png"  # the issue's: 900 MP in well under a megabyte
    decoded_bomb = write_png_bomb(bomb, 30000, rgb=False)
    big = tmp_path / "big-13000.png"  # under Pillow's own refusal (179 MP), over the pipeline's bound
    decoded_big = write_png_bomb(big, 13000, rgb=True)
    assert bomb.stat().st_size < 1_000_000 and big.stat().st_size < 1_000_000
    photo = SAMPLES / "teal-vase-cutout.png"
    out = tmp_path / "out"

    demo = [sys.executable, "-m", "backdrop_kit.cli", "demo", str(bomb), str(big), str(photo)]
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_OF, *demo, "--images", "1", "--out", str(out), "--json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert measured.returncode == 0, measured.stderr
    peak_bytes = int(measured.stderr.splitlines()[-1]) * 1024
    report = json.loads(measured.stdout)
    rows = {job["file"]: job for job in report["jobs"]}

    limit = "an input may have at most 89,478,485 pixels (89.5 MP)"
    assert rows["bomb-30000.png"]["input_problem"] == f"more than 179.0 MP; {limit}"
    assert rows["big-13000.png"]["input_problem"] == f"13,000x13,000 pixels (169.0 MP); {limit}"
    for name in ("bomb-30000.png", "big-13000.png"):
        # Claid (the emulator) refused it on the same bound: a failed job that cost nothing.
        job = rows[name]
        assert (job["status"], job["reason"], job["images"], job["credits"]) == ("failed", "claid_rejected", 0, 0.0)
    assert (rows["teal-vase-cutout.png"]["status"], rows["teal-vase-cutout.png"]["input_problem"]) == ("succeeded", "")
    assert report["claid"]["by_status"] == {"400": 2, "200": 1} and report["ledger_matches_claid"]
    with Image.open(report["contact_sheet"]) as sheet:
        assert sheet.height > 3 * 256  # a row for each input, the refused ones included

    # Decoding either would take the pixels alone past half a gigabyte; the whole demo, its moto server included,
    # stays under half of the smaller.
    assert peak_bytes < min(decoded_bomb, decoded_big) / 2, f"peak {peak_bytes:,} bytes"


def test_demo_publish_runs_the_publisher_and_reports_the_stable_keys(tmp_path, capsys):
    photo = str(SAMPLES / "espresso-cup.png")
    code = main(["demo", photo, "--images", "3", "--publish", "all", "--out", str(tmp_path), "--json", "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    [job] = report["jobs"]
    assert job["published"] == [
        "published/espresso-cup.png/1.jpeg",
        "published/espresso-cup.png/2.jpeg",
        "published/espresso-cup.png/3.jpeg",
    ]
    assert job["chosen"] == [1, 2, 3]
    assert main(["demo", photo, "--images", "2", "--publish", "review", "--out", str(tmp_path), "--json"]) == 0
    [waiting] = json.loads(capsys.readouterr().out)["jobs"]
    assert waiting["published"] == [] and waiting["status"] == "succeeded"
    with pytest.raises(SystemExit) as refused:  # argparse names the choices
        main(["demo", "--publish", "sometimes"])
    assert refused.value.code == 2 and "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_the_contact_sheet_marks_the_published_variant(tmp_path):
    result = run_demo(
        DemoOptions(files=[SAMPLES / "teal-vase-cutout.png"], out_dir=tmp_path, number_of_images=2, publish="first")
    )
    assert result.jobs[0].chosen == [1] and result.contact_sheet is not None
    with Image.open(result.contact_sheet) as sheet:
        rgb = sheet.convert("RGB")
        frame = (22, 128, 60)
        # The frame is drawn around the first variant's tile (column 2), not around the second one's.
        first_tile_x, second_tile_x, top = 16 + 256 + 16, 16 + 2 * (256 + 16), 16
        assert rgb.getpixel((first_tile_x - 3, top + 100)) == frame
        assert rgb.getpixel((second_tile_x - 3, top + 100)) != frame


def test_demo_with_claids_latency_shows_claids_bill_equal_to_the_ledger(tmp_path, capsys):
    photo = str(SAMPLES / "espresso-cup.png")
    code = main(["demo", photo, "--copies", "6", "--latency", "1", "--images", "2", "--out", str(tmp_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [j["status"] for j in report["jobs"]] == ["succeeded"] * 6
    assert report["claid"]["charged_credits"] == report["ledger"]["credits"] == 24
    assert report["ledger_matches_claid"] is True
    # Six calls of about a second each, started side by side: far less than one after another.
    assert report["pipeline_seconds"] < 6 * 1.0


def test_emulator_command_serves_until_stopped():
    proc = subprocess.Popen(
        [sys.executable, "-m", "backdrop_kit.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split(" on ", 1)[1].split(" ", 1)[0]
        answer = httpx.post(url + "/v1-ea/scene/create", json={}, headers={"Authorization": "Bearer local-test-key"})
        assert answer.status_code == 422
        assert "POST /v1-ea/scene/create 422" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def test_demo_review_serves_the_page_on_the_local_stack_until_stopped(tmp_path):
    photo = str(SAMPLES / "espresso-cup.png")
    command = [sys.executable, "-m", "backdrop_kit.cli", "demo", photo, "--images", "2", "--review", "--no-browser"]
    proc = subprocess.Popen(
        [*command, "--quiet", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("backdrop review: "):
            line = proc.stdout.readline()
            assert line, f"demo --review ended before serving: {lines}"
            lines.append(line)
        assert any(line.startswith("espresso-cup.png") and "succeeded" in line for line in lines)  # the table first
        url = lines[-1].split()[2]
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        base = url.split("/?")[0]
        with httpx.Client(base_url=base) as browser:
            # The printed address signs a browser in once (a cookie) and sends it on without the token.
            assert browser.get(url, follow_redirects=True).url == f"{base}/"
            [upload] = browser.get("/api/uploads").json()["uploads"]  # --review: publish review
            assert upload["awaiting"] and len(upload["variants"]) == 2
            chosen = browser.post("/api/select", json={"job_id": upload["job_id"], "variants": [2]}).json()
            assert chosen["version"] == 1 and chosen["variants"] == [2]
        assert httpx.get(f"{base}/api/uploads").status_code == 403  # not signed in, no answer
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_connect_storage_registers_the_bucket_without_echoing_secrets(monkeypatch, capsys):
    from backdrop_kit.emulator import ClaidEmulator

    with ClaidEmulator() as emulator:
        args = ["connect-storage", "--name", "backdrop", "--bucket", "shop-uploads", "--claid-url", emulator.base_url]
        assert main(args) == 2  # no secrets in the environment: refused, with the names to set
        assert "CLAID_API_KEY" in capsys.readouterr().err
        monkeypatch.setenv("CLAID_API_KEY", "local-test-key")
        monkeypatch.setenv("CLAID_CONNECTOR_ACCESS_KEY_ID", "AKIAEXAMPLE")
        monkeypatch.setenv("CLAID_CONNECTOR_SECRET_ACCESS_KEY", "very-secret")
        assert main(args) == 0
        out = capsys.readouterr()
        assert json.loads(out.out)["name"] == "backdrop" and "very-secret" not in out.out + out.err
        assert main(args) == 1  # the name is taken: Claid's 409 is shown
        assert "409" in capsys.readouterr().err
