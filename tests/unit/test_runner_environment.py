"""The runner sets a function's variables while it loads it and removes them after, while other threads read the
environment the way botocore and httpx do (`os.environ.items()`, for proxies)."""

import os
import threading

from backdrop_kit import runner


def test_reading_the_environment_while_functions_load_never_fails():
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                for _name, _value in os.environ.items():
                    pass
            except KeyError as exc:
                failures.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for n in range(3000):
            with runner._environment({f"BACKDROP_TEST_VARIABLE_{n % 7}": "x", "APP_TABLE_NAME_TEST": "t"}):
                pass
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert failures == []
    assert "APP_TABLE_NAME_TEST" not in os.environ  # removed after each load, as before
