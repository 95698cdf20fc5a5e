"""EventBridge's envelope as EventBridge delivers it: moto's default target input leaves out `account`.

A rule target with no input transformer gets the whole event, `account` included (AWS's EventBridge event
structure); moto's default input template names every top-level field but that one, though its paths map has it.
The handlers parse the envelope with Powertools' EventBridgeModel, which requires it, as AWS always sends it.
Installed inside the moto server before its first request, like s3_fidelity."""

from __future__ import annotations


def install() -> None:
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0",', '"version": "0", "account": "<account>",'
        )
