"""A cost model per 1,000 images from what the burst measured: durations, requests and request units, priced at
public us-east-1 list prices (assumptions, written into the report; free tiers left out)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.burst import BurstResult

# USD, us-east-1 list prices (checked 2025; free tiers ignored).
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # on-demand write request unit
DYNAMODB_READ_UNIT = 0.125 / 1e6  # on-demand read request unit
SQS_REQUEST = 0.40 / 1e6  # standard queue, per 64 KB request
EVENTBRIDGE_EVENT = 1.00 / 1e6  # custom event published (per 64 KB chunk); rule deliveries to Lambda are free
SNS_PUBLISH = 0.50 / 1e6  # standard topic; deliveries to SQS and Lambda are free
S3_WRITE_REQUEST = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_READ_REQUEST = 0.0004 / 1000  # GET, HEAD and the rest
SECRETS_API_CALL = 0.05 / 10_000
CLAID_CREDITS_PER_IMAGE = 2

PRICES = [
    ("Lambda, arm64", f"${LAMBDA_ARM_GB_SECOND:.10f} per GB-second, $0.20 per million requests"),
    ("DynamoDB on-demand", "$0.625 per million write request units, $0.125 per million read request units"),
    ("SQS standard", "$0.40 per million requests"),
    ("EventBridge", "$1.00 per million custom events published (rule deliveries free)"),
    ("SNS standard", "$0.50 per million publishes (SQS/Lambda deliveries free; e-mail $2 per 100,000)"),
    ("S3 requests", "$0.005 per 1,000 PUT/LIST, $0.0004 per 1,000 GET/HEAD"),
    ("Secrets Manager", "$0.05 per 10,000 API calls"),
]

S3_WRITES = {"PutObject", "CopyObject", "ListObjectsV2", "ListObjects"}


@dataclass(frozen=True)
class Line:
    item: str
    quantity: str
    usd: float


def per_thousand_images(burst: BurstResult) -> tuple[list[Line], float]:
    """Cost lines scaled to 1,000 images, and the Claid credits for them."""
    images = sum(c.images_returned for c in burst.charged) or 1
    per = 1000 / images
    k = burst.config.scale
    t = burst.traffic
    lines: list[Line] = []

    for function_id, memory_mb in (
        ("ProcessorFunction", burst.processor_memory_mb),
        ("RecorderFunction", burst.recorder_memory_mb),
    ):
        runs = [i for i in burst.invocations if i.function_id == function_id]
        seconds = sum(i.seconds for i in runs)
        if function_id == "ProcessorFunction":
            # The processor mostly waits for its start slots and for Claid, which the run sped up k times: its
            # durations are scaled back (its own work is scaled too, so this over-counts a little).
            seconds *= k
        gb_seconds = seconds * memory_mb / 1024 * per
        lines.append(
            Line(
                f"{function_id} duration",
                f"{gb_seconds:,.0f} GB-s ({len(runs) * per:,.0f} invocations x {seconds / max(1, len(runs)):.1f} s "
                f"at {memory_mb} MB)",
                gb_seconds * LAMBDA_ARM_GB_SECOND,
            )
        )
        lines.append(Line(f"{function_id} requests", f"{len(runs) * per:,.0f}", len(runs) * per * LAMBDA_REQUEST))

    write_units = sum(v for who, v in t.write_units.items() if who != "kit") * per
    read_units = sum(v for who, v in t.read_units.items() if who != "kit") * per
    lines.append(
        Line(
            "DynamoDB request units",
            f"{write_units:,.0f} WRU + {read_units:,.0f} RRU",
            write_units * DYNAMODB_WRITE_UNIT + read_units * DYNAMODB_READ_UNIT,
        )
    )

    # SQS as Lambda's poller would use it: the S3 notification, one receive and one delete per batch, plus the
    # processor's own calls (hand-backs). The runner's idle polling is not AWS's and is left out.
    processor_runs = sum(1 for i in burst.invocations if i.function_id == "ProcessorFunction")
    own_sqs = sum(n for (who, svc, _), n in t.calls.items() if who == "ProcessorFunction" and svc == "sqs")
    sqs_requests = (burst.config.uploads + 2 * processor_runs + own_sqs) * per
    lines.append(Line("SQS requests", f"{sqs_requests:,.0f}", sqs_requests * SQS_REQUEST))

    events = sum(v for who, v in t.event_entries.items() if who != "kit") * per
    lines.append(Line("EventBridge events", f"{events:,.0f}", events * EVENTBRIDGE_EVENT))
    publishes = sum(n for (who, svc, op), n in t.calls.items() if svc == "sns" and op == "Publish" and who != "kit")
    lines.append(Line("SNS publishes", f"{publishes * per:,.0f}", publishes * per * SNS_PUBLISH))

    s3_writes = s3_reads = 0.0
    for (who, svc, op), n in t.calls.items():
        if svc != "s3" or who == "kit":
            continue
        if op in S3_WRITES:
            s3_writes += n
        else:
            s3_reads += n
    # Claid reads each upload once and, with connected storage, writes each image into the bucket.
    claid_reads = burst.config.uploads
    claid_writes = images if burst.config.mode == "connected" else 0
    s3_writes = (s3_writes + claid_writes) * per
    s3_reads = (s3_reads + claid_reads) * per
    lines.append(
        Line(
            "S3 requests (functions and Claid's)",
            f"{s3_writes:,.0f} PUT + {s3_reads:,.0f} GET/HEAD",
            s3_writes * S3_WRITE_REQUEST + s3_reads * S3_READ_REQUEST,
        )
    )
    secrets = sum(n for (who, svc, _), n in t.calls.items() if svc == "secretsmanager" and who != "kit") * per
    lines.append(Line("Secrets Manager calls", f"{secrets:,.0f}", secrets * SECRETS_API_CALL))
    return lines, CLAID_CREDITS_PER_IMAGE * 1000.0


def lambda_usd(seconds: float, invocations: int, memory_mb: int) -> float:
    """Lambda's price for this many invocations lasting `seconds` in all, at `memory_mb`."""
    return seconds * memory_mb / 1024 * LAMBDA_ARM_GB_SECOND + invocations * LAMBDA_REQUEST


def lambda_items(lines: list[Line]) -> list[Line]:
    """The per-function lines (durations and requests) of per_thousand_images."""
    return [line for line in lines if line.item.endswith(("Function duration", "Function requests"))]
