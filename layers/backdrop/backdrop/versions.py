"""Which of two versions of one S3 object is newer: S3's own order (the notification's sequencer), else time."""

from __future__ import annotations

from typing import Protocol


class Versioned(Protocol):
    """The parts of a source object that order its versions (events.SourceObject has them)."""

    @property
    def version_id(self) -> str | None: ...

    @property
    def sequencer(self) -> str | None: ...

    @property
    def last_modified(self) -> str | None: ...


def sequencer_order(sequencer: str) -> str:
    """A sequencer made comparable as a string: S3's are hexadecimal strings of varying length, compared after
    right-padding the shorter with zeros (AWS's S3 guide, "Event message structure"; older editions said left).
    Upper case, so 'a' and 'A' compare equal."""
    return sequencer.upper().ljust(64, "0")


def is_newer(candidate: Versioned, current: Versioned | None) -> bool:
    """Whether `candidate` is a newer version of the object than `current` (None: nothing recorded yet).
    Sequencers decide when both have one (they order the events of one key, which is S3's version order);
    otherwise the versions' LastModified times do. A tie, or a candidate with nothing to compare, is not newer:
    the version already recorded stays. A current version with no order at all (a pointer written before
    versions were ordered) gives way, as every pointer did then. The same version is never newer than itself."""
    if current is None:
        return True
    if candidate.version_id and candidate.version_id == current.version_id:
        return False
    if candidate.sequencer and current.sequencer:
        return sequencer_order(candidate.sequencer) > sequencer_order(current.sequencer)
    if candidate.last_modified and current.last_modified:
        return candidate.last_modified > current.last_modified
    return not (current.sequencer or current.last_modified)
