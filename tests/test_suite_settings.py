"""The suite-wide settings of the root ``conftest.py`` are in force."""

import os

import pytest
import sqlalchemy
from hypothesis import settings


def test_hypothesis_examples_have_no_deadline() -> None:
    assert settings().deadline is None


@pytest.mark.no_database
def test_a_test_marked_no_database_finds_a_database_server_that_refuses_it() -> None:
    url = sqlalchemy.engine.make_url(os.environ["LIANXIN_TEST_DATABASE_URL"])
    assert url.get_backend_name() == "postgresql"
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError):
            engine.connect()
    finally:
        engine.dispose()
