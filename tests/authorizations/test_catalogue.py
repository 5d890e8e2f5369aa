"""The bundled catalogues parse, and scope matching is exactly "the same code or a code
below it"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authorizations.catalogue import ITEM_CODE, covers, in_scope, load_catalogue, parse_catalogue
from authorizations.errors import CatalogueError, InvalidTerms

PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=6)
CODE = st.lists(PART, min_size=1, max_size=4).map(".".join)


def test_bundled_catalogue_loads() -> None:
    catalogue = load_catalogue()
    assert catalogue.item("license.metadata").kind.value == "license_type"
    assert catalogue.purpose("approval.food-business-license").name
    for code in catalogue.items:
        assert ITEM_CODE.fullmatch(code)
    with pytest.raises(InvalidTerms):
        catalogue.item("license.nothing")
    with pytest.raises(CatalogueError):
        load_catalogue(99)


@given(granted=CODE, asked=CODE)
def test_covers_is_prefix_at_a_part_boundary(granted: str, asked: str) -> None:
    expected = asked.split(".")[: len(granted.split("."))] == granted.split(".")
    assert covers(granted, asked) is expected


@given(granted=st.lists(CODE, max_size=5), asked=CODE)
def test_in_scope_is_any_cover(granted: list[str], asked: str) -> None:
    assert in_scope(granted, asked) is any(covers(code, asked) for code in granted)


@pytest.mark.parametrize(
    ("items", "purposes"),
    [
        ("version = 1\n[[item]]\ncode='a'\nkind='field'", "version = 2\n[[purpose]]\ncode='p'"),
        ("version = 1\n[[item]]\ncode='A b'\nkind='field'", "version = 1\n[[purpose]]\ncode='p'"),
        ("version = 1\n[[item]]\ncode='a'\nkind='nope'", "version = 1\n[[purpose]]\ncode='p'"),
        (
            "version = 1\n[[item]]\ncode='a'\nkind='field'\n[[item]]\ncode='a'\nkind='field'",
            "version = 1\n[[purpose]]\ncode='p'",
        ),
        ("version = [", "version = 1"),
        ("version = 1", "version = 1\n[[purpose]]\ncode='p'"),
    ],
)
def test_bad_catalogues_are_refused(items: str, purposes: str) -> None:
    with pytest.raises(CatalogueError):
        parse_catalogue(items, purposes)
