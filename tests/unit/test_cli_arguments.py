"""The `backdrop` commands refuse bad numbers and text while reading the command line: exit 2, the option named,
and nothing started."""

from __future__ import annotations

import pytest
from backdrop_kit import cli
from backdrop_kit.emulator import cli as emulator_cli

NEWLINE = "on a\nmarble counter"

# (command line, the option the message names, what the message says); one line per numeric or text option.
REFUSED = [
    (["demo", "--budget", "inf"], "--budget", "'inf' is not a finite number; give one from 0 to 1,000,000,000"),
    (["demo", "--budget", "nan"], "--budget", "'nan' is not a finite number"),
    (["demo", "--budget", "-5"], "--budget", "'-5' is out of range; give a number from 0 to 1,000,000,000"),
    (["demo", "--budget", "1e300"], "--budget", "'1e300' is out of range"),
    (["demo", "--budget", "ten"], "--budget", "'ten' is not a number"),
    (["demo", "--latency", "-1"], "--latency", "'-1' is out of range; give a number from 0 to 600"),
    (["demo", "--latency", "1e999"], "--latency", "'1e999' is not a finite number"),
    (["demo", "--copies", "0"], "--copies", "'0' is out of range; give a number from 1 to 100"),
    (["demo", "--copies", "2.5"], "--copies", "'2.5' is not a whole number"),
    (["demo", "--seed", "nan"], "--seed", "'nan' is not a whole number"),
    (["demo", "--images", "inf"], "--images", "invalid int value: 'inf'"),
    (["demo", "--prompt", NEWLINE], "--prompt", "holds a control character (U+000A) at character 5"),
    (["demo", "--prompt", "a\x1b[31mred"], "--prompt", "holds a control character (U+001B) at character 2"),
    (["demo", "--prompt", "a\u2028b"], "--prompt", "holds a line separator (U+2028)"),
    (["demo", "--prompt", "a\x85b"], "--prompt", "holds a control character (U+0085)"),
    (["demo", "--prompt", "caf\udce9"], "--prompt", "holds bytes that are not text in this terminal's encoding"),
    (["demo", "--out", "out\n"], "--out", "U+000A"),
    (["demo", "cup\r.png"], "files", "U+000D"),
    (["local", "invoke", "Processor\tFunction", "-e", "x.json"], "function_id", "U+0009"),
    (["local", "invoke", "ProcessorFunction", "-e", "x\0.json"], "--event/-e", "U+0000"),
    (["usage", "--stack", "shop\n"], "--stack", "U+000A"),
    (["usage", "--table", "t\n"], "--table", "U+000A"),
    (["usage", "--stack", "shop", "--month", "2026-11\n"], "--month", "U+000A"),
    (["usage", "--stack", "shop", "--chart", "c\n.png"], "--chart", "U+000A"),
    (["usage", "--stack", "shop", "--budget", "inf"], "--budget", "'inf' is not a finite number"),
    (["redrive", "--dlq-url", "q\n", "--queue-url", "q"], "--dlq-url", "U+000A"),
    (["redrive", "--dlq-url", "q", "--queue-url", "q\n"], "--queue-url", "U+000A"),
    (["redrive", "--dlq-url", "q", "--queue-url", "q", "--limit", "-1"], "--limit", "'-1' is out of range"),
    (["estimate", "s3://b/\n", "--stack", "shop"], "source", "U+000A"),
    (["estimate", "s3://b/", "--stack", "shop\n"], "--stack", "U+000A"),
    (["estimate", "s3://b/", "--stack", "shop", "--latency", "nan"], "--latency", "'nan' is not a finite number"),
    (["backfill", "s3://b/", "--stack", "shop", "--latency", "-3"], "--latency", "'-3' is out of range"),
    (["backfill", "s3://b/", "--stack", "shop", "--limit", "-1"], "--limit", "'-1' is out of range"),
    (["review", "--stack", "shop\n"], "--stack", "U+000A"),
    (["review", "--stack", "shop", "--port", "70000"], "--port", "give a number from 0 to 65,535"),
    (["review", "--stack", "shop", "--days", "0"], "--days", "give a number from 1 to 90"),
    (["review", "--stack", "shop", "--days", "nan"], "--days", "'nan' is not a whole number"),
    (["connect-storage", "--stack", "shop\n"], "--stack", "U+000A"),
    (["connect-storage", "--name", "x" * 51], "--name", "is 51 characters long; at most 50"),
    (["connect-storage", "--name", ""], "--name", "must be at least 1 character(s) long"),
    (["connect-storage", "--bucket", "b\n"], "--bucket", "U+000A"),
    (["connect-storage", "--path", "p\n"], "--path", "U+000A"),
    (["connect-storage", "--claid-url", "https://x\n"], "--claid-url", "U+000A"),
    (["connect-storage", "--name", "bad name/!"], "--name", "use 1 to 50 letters, digits, '_', '.' or '-'"),
    (["usage", "--stack", "shop", "--chart", "/no/such/folder/u.png"], "--chart", "no folder '/no/such/folder'"),
    (["usage", "--stack", "shop", "--chart", "usage.jpg"], "--chart", "must end with .png"),
    (["local", "start", "--param", "WebhookUrl"], "--param", "is not Name=value"),
    (["local", "start", "--param", "A=b\n"], "--param", "U+000A"),
    (["local", "start", "--port", "70000"], "--port", "give a number from 0 to 65,535"),
    (["local", "start", "--latency", "inf"], "--latency", "'inf' is not a finite number"),
    (["replay", "JobsDLQ\n", "--stack", "shop"], "DLQ", "U+000A"),
    (["replay", "JobsDLQ", "--stack", "shop", "--limit", "-1"], "--limit", "'-1' is out of range"),
    (["photo", "incoming/x.png\n", "--stack", "shop"], "photo", "U+000A"),
    (["photo", "incoming/x.png", "--stack", "shop\n"], "--stack", "U+000A"),
    (["webhook", "ping", "--stack", "shop", "--wait", "nan"], "--wait", "'nan' is not a finite number"),
    (["webhook", "ping", "--stack", "shop", "--wait", "301"], "--wait", "give a number from 0 to 300"),
    # the emulator's own options (`backdrop emulator …` hands them to backdrop_kit.emulator.cli)
    (["emulator", "--host", "127.0.0.1\n"], "--host", "U+000A"),
    (["emulator", "--port", "-1"], "--port", "'-1' is out of range"),
    (["emulator", "--api-key", "key\n"], "--api-key", "U+000A"),
    (["emulator", "--credits", "inf"], "--credits", "'inf' is not a finite number"),
    (["emulator", "--rate-per-second", "-4"], "--rate-per-second", "'-4' is out of range"),
    (["emulator", "--rate-per-minute", "1.5"], "--rate-per-minute", "'1.5' is not a whole number"),
    (["emulator", "--fault-rate", "nan"], "--fault-rate", "'nan' is not a finite number; give one from 0 to 1"),
    (["emulator", "--fault-rate", "1.5"], "--fault-rate", "'1.5' is out of range"),
    (["emulator", "--fault-kinds", "500,5OO"], "--fault-kinds", "unknown '5OO'; choose from 500, 429, slow, drop"),
    (["emulator", "--latency", "inf"], "--latency", "'inf' is not a finite number"),
    (["emulator", "--latency-sigma", "-0.1"], "--latency-sigma", "'-0.1' is out of range"),
    (["emulator", "--seed", "x"], "--seed", "'x' is not a whole number"),
    (["emulator", "--s3-endpoint-url", "http://x\n"], "--s3-endpoint-url", "U+000A"),
]


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fails the test if a command got as far as starting a stack, an emulator or a command's own work."""

    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a command started although its arguments were refused")

    from backdrop_kit.emulator.server import ClaidEmulator
    from backdrop_kit.stack import LocalStack

    monkeypatch.setattr(LocalStack, "start", started)
    monkeypatch.setattr(ClaidEmulator, "start", started)
    for name in dir(cli):
        if name.startswith("cmd_"):
            monkeypatch.setattr(cli, name, started)


@pytest.mark.parametrize(("argv", "option", "says"), REFUSED, ids=[" ".join(c[0])[:60] for c in REFUSED])
def test_a_bad_number_or_text_exits_2_naming_the_option(argv, option, says, nothing_starts, capsys):
    with pytest.raises(SystemExit) as refused:
        cli.main(argv)
    err = capsys.readouterr().err
    assert refused.value.code == 2
    assert f"error: argument {option}: " in err
    assert says in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "prompt",
    [
        "auf einer Marmorplatte, weiches Tageslicht, Äpfel und Grüße",
        "大理石のカウンターの上、柔らかな自然光",
        "大理石のカウンター\u3000柔らかな光",  # an ideographic space is a space, not a control character
        "على طاولة رخامية",
        "a family 👨\u200d👩\u200d👧 of cups",  # zero-width joiners (format characters) make one emoji
        "on a marble counter, soft daylight",
    ],
)
def test_a_prompt_in_any_language_is_taken_as_it_is(prompt):
    args = cli.build_parser().parse_args(["demo", "--prompt", prompt])
    assert args.prompt == prompt


def test_numbers_in_range_are_read_as_numbers():
    args = cli.build_parser().parse_args(
        ["demo", "--budget", "12.5", "--latency", "0", "--copies", "3", "--seed", "-7"]
    )
    assert (args.budget, args.latency, args.copies, args.seed) == (12.5, 0.0, 3, -7)
    review = cli.build_parser().parse_args(["review", "--stack", "shop", "--port", "65535", "--days", "90"])
    assert (review.port, review.days) == (65535, 90)


def test_the_emulator_reads_its_fault_kinds_as_a_list(monkeypatch):
    configs = []

    class Recorded(Exception):
        pass

    def capture(self: object, config: object) -> None:
        configs.append(config)
        raise Recorded

    monkeypatch.setattr(emulator_cli.ClaidEmulator, "__init__", capture)
    with pytest.raises(Recorded):
        emulator_cli.main(["--fault-kinds", "lost, drop", "--fault-rate", "0.5"])
    [config] = configs
    assert config.fault_kinds == ("lost", "drop") and config.fault_rate == 0.5
    with pytest.raises(Recorded):
        emulator_cli.main([])
    assert configs[1].fault_kinds == ("500", "429", "slow", "drop")
