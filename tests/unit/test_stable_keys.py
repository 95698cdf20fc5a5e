"""Stable keys are unique by construction: no two photos can share a published key, whatever their names.

The scheme (docs/decisions.md 33): the photo's whole path under the watched prefix, extension kept, is a folder,
and each chosen variant is the file `<position>.<extension>` in it. The file name holds no `/`, so everything
between the published prefix and a key's last `/` is the photo's path: reading it back proves the mapping is
one-to-one. The names drawn here are the ones that collided before (`cup.png` and `cup-2.png`, `red.png` and
`red.jpg`) and their neighbours: case, unicode, dots, spaces, nested folders, names shaped like published files.
"""

from __future__ import annotations

from itertools import combinations

from backdrop.keys import published_folder, published_key
from hypothesis import example, given
from hypothesis import strategies as st

POSITIONS = range(1, 5)
EXTENSIONS = ("jpeg", "jpg", "png", "webp", "avif")  # every format Claid writes, both spellings of JPEG
PREFIXES = st.sampled_from([("incoming/", "published/"), ("photos/", "live/")])

# Bases close to each other, so that drawn pairs are near-collisions rather than unrelated strings.
bases = st.sampled_from(
    ["cup", "Cup", "CUP", "red", "1", "2", "cup.png", "café", "cafe\u0301", "カップ", " cup", "cup ", ".", "..", "-2"]
) | st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=8)
suffixes = st.sampled_from(["", "-2", "-3", "-4", "-1", "-10", " 2", "_2"])
extensions = st.sampled_from(["", ".png", ".PNG", ".jpg", ".jpeg", ".webp", ".tar.gz", ".", ".png.jpeg", ".1"])
names = st.builds(lambda base, suffix, ext: base + suffix + ext, bases, suffixes, extensions)
# A path segment may itself look like a published file (`1.jpeg`) or a photo's folder (`cup.png`).
segments = names | st.sampled_from(["1.jpeg", "2.jpeg", "4.avif", "cup.png", "published", "incoming", ""])


@st.composite
def source_keys(draw: st.DrawFn, prefix: str) -> str:
    folders = draw(st.lists(segments, max_size=3))
    return prefix + "/".join([*folders, draw(names)])


def published_keys(source_key: str, incoming: str, published: str) -> set[str]:
    folder = published_folder(source_key, incoming, published)
    return {published_key(folder, position, ext) for position in POSITIONS for ext in EXTENSIONS}


@st.composite
def photos(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    incoming, published = draw(PREFIXES)
    keys = draw(st.lists(source_keys(incoming), min_size=2, max_size=8, unique=True))
    return incoming, published, keys


@given(photos())
@example(("incoming/", "published/", ["incoming/cup.png", "incoming/cup-2.png"]))
@example(("incoming/", "published/", ["incoming/red.png", "incoming/red.jpg", "incoming/Red.png"]))
@example(("incoming/", "published/", ["incoming/cup.png", "incoming/cup.png/1.jpeg", "incoming/cup.png/1"]))
@example(("incoming/", "published/", ["incoming/a/b.png", "incoming/a/b.png/", "incoming/a//b.png"]))
@example(("incoming/", "published/", ["incoming/café.png", "incoming/cafe\u0301.png"]))
def test_no_two_photos_share_a_published_key(drawn: tuple[str, str, list[str]]) -> None:
    incoming, published, keys = drawn
    owned = {key: published_keys(key, incoming, published) for key in keys}
    for a, b in combinations(keys, 2):
        assert not owned[a] & owned[b], f"{a!r} and {b!r} share {sorted(owned[a] & owned[b])}"


@given(PREFIXES.flatmap(lambda p: st.tuples(st.just(p), source_keys(p[0]))))
def test_each_published_key_names_its_photo_and_nothing_else(drawn: tuple[tuple[str, str], str]) -> None:
    """The proof of the property above: the photo's path is read back from any of its keys."""
    (incoming, published), source_key = drawn
    for key in published_keys(source_key, incoming, published):
        folder, _, file_name = key.rpartition("/")
        assert incoming + folder.removeprefix(published) == source_key
        assert folder.startswith(published) and "/" not in file_name
        position, _, ext = file_name.partition(".")
        assert position in {"1", "2", "3", "4"} and ext in EXTENSIONS


@given(PREFIXES.flatmap(lambda p: st.tuples(st.just(p), source_keys(p[0]))))
def test_the_mapping_is_stable_and_depends_on_the_photo_path_alone(drawn: tuple[tuple[str, str], str]) -> None:
    """A re-upload (a new version, a new job) or a new choice maps the same photo to the same folder; only the
    position and the variant's extension choose the file in it."""
    (incoming, published), source_key = drawn
    folder = published_folder(source_key, incoming, published)
    assert folder == f"{published}{source_key.removeprefix(incoming)}/"
    for position in POSITIONS:
        assert published_key(folder, position, "jpeg") == f"{folder}{position}.jpeg"
