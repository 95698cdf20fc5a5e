"""moto's TransactWriteItems at a cost that does not grow with the table.

To undo a cancelled transaction, moto copies every table the transaction names, whole (a deepcopy), before each
one, and puts the copies back if it cancels. A transaction's cost then grows with the table: in a 1,000-upload
burst the recorder's ledger transaction went from 25 ms on a fresh stack to about 0.5 s, and the moto server's
memory past 10 GB. DynamoDB's own cost does not depend on the table's size.

`install()` (run inside the moto server process, before it serves a request) keeps moto's transaction logic as it
is, and changes only what is saved to undo it: the items the transaction names, as they were, put back if it is
cancelled. moto's whole-table copy is skipped for the duration of the call. That is safe because the server
handles one request at a time (kit/backdrop_kit/moto_server.py), which is also what makes the transaction atomic.
tests/unit/test_dynamodb_transactions.py holds it to all-or-nothing.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

_INSTALLED = "_backdrop_items_only"


def install() -> None:
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    backend = models.DynamoDBBackend
    original: Callable[..., None] = backend.transact_write_items
    if getattr(original, _INSTALLED, False):
        return

    def deepcopy_but_tables(value: Any, memo: Any = None) -> Any:
        # What moto saves a table as: the table itself (so putting it back changes nothing).
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _items_before(self, transact_items)
        models.copy = SimpleNamespace(deepcopy=deepcopy_but_tables)  # type: ignore[assignment]
        try:
            original(self, transact_items)
        except BaseException:
            _put_back(saved)
            raise
        finally:
            models.copy = copy

    setattr(transact_write_items, _INSTALLED, True)
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _items_before(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
    """(table, hash key, range key, a copy of the item or None) for each item the transaction names."""
    saved = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            if op_type == "Put":
                names = [n for n in (table.hash_key_attr, table.range_key_attr) if n is not None]
                key = {name: op["Item"][name] for name in names}
            else:
                key = op["Key"]
            hash_key, range_key = backend.get_keys_value(table, key)
            current = table.get_item(hash_key, range_key)
        except Exception:  # an entry moto refuses before it writes anything for it
            continue
        saved.append((table, hash_key, range_key, copy.deepcopy(current)))
    return saved


def _put_back(saved: list[tuple[Any, Any, Any, Any]]) -> None:
    for table, hash_key, range_key, item in reversed(saved):
        if item is None:
            table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item
