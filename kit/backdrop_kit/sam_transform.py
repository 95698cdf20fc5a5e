"""The real SAM transform (aws-sam-translator), run offline inside aws-sam-cli's own environment for the kit.

This file runs under that environment's Python, never imported by the kit: aws-sam-translator pins pydantic
to a release the app must not inherit. It serves JSON lines on stdin/stdout, one template per line, until its
stdin closes (so it ends with the process that started it):
    in:  {"template": {...}, "parameters": {...}, "region": "us-east-1"}
    out: {"template": {...}} or {"error": "..."}
Nothing here calls AWS: the region comes with the request, and managed policies given by name (the only thing
the transform would ask IAM for) are refused with a clear message instead of looked up.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


class OfflinePolicyLoader:
    """What SAM asks IAM for: the ARNs of AWS managed policies named in a function's Policies. backdrop's
    template names none by name (its statements are inline), so the map is empty and a name fails the
    transform with SAM's own message rather than a network call."""

    def load(self) -> dict[str, str]:
        return {}


def transform_one(request: dict[str, Any]) -> dict[str, Any]:
    os.environ["AWS_DEFAULT_REGION"] = request["region"]
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    try:
        out = transform(request["template"], dict(request["parameters"]), OfflinePolicyLoader())
    except InvalidDocumentException as exc:
        return {"error": "; ".join(str(cause) for cause in exc.causes) or str(exc)}
    except Exception as exc:  # reported to the kit, which raises it with the template's name
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"template": out}


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(transform_one(json.loads(line)), default=str) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
