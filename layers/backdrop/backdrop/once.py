"""At most once per key: the step that spends Claid credits (a generation, an edit) runs inside Powertools'
idempotency, on DynamoDB. A second delivery of the same job gets the outcome the first one stored; a delivery
that arrives while another instance runs the step learns so (`InProgressElsewhere`) and goes back to the queue.

The guarded step is a library function, handed in by the composition (backdrop.wiring); the logic that calls it
(processing.Processor, editing.Editor) sees only `Once`, and unit tests give it `RunsEveryTime` instead."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

if TYPE_CHECKING:
    from backdrop.claid.client import Deadline


Item = TypeVar("Item", bound=BaseModel)
Outcome = TypeVar("Outcome", bound=BaseModel)
In = TypeVar("In", bound=BaseModel, contravariant=True)
Out = TypeVar("Out", bound=BaseModel, covariant=True)


class InProgressElsewhere(Exception):
    """Another instance holds this item's idempotency lock: it is running the step right now."""


class Step(Protocol[In, Out]):
    def __call__(self, item: In, deadline: Deadline, /) -> Out: ...


class Guarded(Protocol[In, Out]):
    """What the logic sees of a guarded step: call it, or drop what it stored for an item."""

    def __call__(self, item: In, deadline: Deadline, /) -> Out: ...

    def forget(self, item: In, /) -> None: ...

    def start_invocation(self, context: LambdaContext, /) -> None: ...


class OutcomeDropped(Exception):
    """Why a stored outcome was dropped (Powertools' delete_record asks for the exception)."""


class Once(Generic[Item, Outcome]):
    """`step(item, deadline)` at most once per `item.<key>` while the stored outcome lives (`ttl_seconds`)."""

    def __init__(
        self,
        step: Step[Item, Outcome],
        *,
        key: str,
        outcome: type[Outcome],
        table_name: str,
        dynamodb: Any,
        ttl_seconds: int,
        stored_as: str,
    ) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath=key, expires_after_seconds=ttl_seconds, raise_on_no_idempotency_key=True
        )
        self._persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb)

        def guarded(item: Item, deadline: Deadline) -> Outcome:
            return step(item, deadline)

        # Stored outcomes are found by their key's prefix. Powertools derives it from where the guarded function is
        # defined, so it is named here, as the handlers named it when they held the guard (`<function>.handler.
        # <name>`): the outcomes stored before this module existed still answer their redeliveries (no second charge).
        function = os.getenv("AWS_LAMBDA_FUNCTION_NAME", "test-func")
        self._run: Callable[..., Outcome] = idempotent_function(
            guarded,
            data_keyword_argument="item",
            persistence_store=self._persistence,
            config=self.config,
            output_serializer=PydanticSerializer(model=outcome),
            key_prefix=f"{function}.handler.{stored_as}",
        )

    def __call__(self, item: Item, deadline: Deadline) -> Outcome:
        try:
            return self._run(item=item, deadline=deadline)
        except IdempotencyAlreadyInProgressError:
            raise InProgressElsewhere(getattr(item, self.config.event_key_jmespath, "?")) from None

    def forget(self, item: Item) -> None:
        """Drop the stored outcome, so that the next call runs the step again. Only after a call on this item."""
        self._persistence.delete_record(data=item.model_dump(mode="json"), exception=OutcomeDropped())

    def start_invocation(self, context: LambdaContext) -> None:
        """Lets an outcome's in-progress lock expire with the invocation that took it."""
        self.config.register_lambda_context(context)


class RunsEveryTime(Generic[Item, Outcome]):
    """For unit tests of the logic: the step, unguarded (every call runs it), with `forget` counted."""

    def __init__(self, step: Step[Item, Outcome]) -> None:
        self.step = step
        self.forgotten: list[Item] = []

    def __call__(self, item: Item, deadline: Deadline) -> Outcome:
        return self.step(item, deadline)

    def forget(self, item: Item) -> None:
        self.forgotten.append(item)

    def start_invocation(self, context: LambdaContext) -> None:
        pass
