"""The suite-wide settings of ``tests/conftest.py`` are in force."""

from hypothesis import settings


def test_hypothesis_examples_have_no_deadline() -> None:
    assert settings().deadline is None
