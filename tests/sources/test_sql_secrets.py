"""SQL URLs whose password holds an unescaped ``@``: rejected at the edge in one line that says
how to escape it, and no piece of the password in any message, log or stderr, even where a
driver echoes the host it cut out of the password."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from meterflow.errors import ConfigError, SourceError
from meterflow.etl import CleaningConfig
from meterflow.redact import ambiguous_credentials, password_pieces, scrub
from meterflow.settings import Environment
from meterflow.sources.meters import read_meters
from meterflow.sources.mongo_server import free_port
from meterflow.sources.sql import etl_sql
from meterflow.sources.sql_engine import describe_db_error, redact_url
from tests.conftest import REPO, subprocess_env

# distinctive pieces, so that no word of a message can contain one by chance
PASSWORDS = ["x9Q@k2Wz", "Zq7v@@Hh8m", "@Lead9q", "Trail9q@", "s3cr@etw0rd/Pq9?x"]


def pieces(password: str) -> set[str]:
    return {p for p in re.split(r"[@/?]", password) if len(p) >= 3} | {password}


def assert_hidden(text: str, password: str) -> None:
    for piece in pieces(password):
        assert piece not in text, (piece, text)


def url_with(password: str, host: str = "127.0.0.1") -> str:
    return f"postgresql+psycopg2://meter:{password}@{host}:{free_port()}/historian"


@pytest.mark.parametrize("password", PASSWORDS)
def test_environment_rejects_an_unescaped_at_in_one_line_without_the_password(password: str):
    with pytest.raises(ConfigError) as err:
        Environment.from_env({"METERFLOW_SQL_URL": url_with(password)})
    msg = str(err.value)
    assert "\n" not in msg and "%40" in msg and "METERFLOW_SQL_URL" in msg
    assert "postgresql+psycopg2://***:***@127.0.0.1:" in msg
    assert_hidden(msg, password)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://meter:x9Q%40k2Wz@pg.example.net/historian",
        "postgresql://pg.example.net/historian?application_name=a@b",
        "sqlite:////data/user@site/historian.db",
        "sqlite:///historian.db",
    ],
)
def test_environment_accepts_escaped_and_credential_free_urls(url: str):
    assert Environment.from_env({"METERFLOW_SQL_URL": url}).sql_url == url
    assert not ambiguous_credentials(url)


@pytest.mark.parametrize("password", PASSWORDS)
def test_sql_readers_reject_the_ambiguous_url_before_any_driver_sees_it(
    password: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
):
    url = url_with(password)
    caplog.set_level(logging.DEBUG)
    for read in (
        lambda: etl_sql(url, meters=pd.DataFrame(), config=CleaningConfig()),
        lambda: etl_sql(url, meters=pd.DataFrame(), config=CleaningConfig(), use_adbc=False),
        lambda: read_meters(url),
    ):
        with pytest.raises(SourceError, match="is ambiguous: its user name or password") as err:
            read()
        assert "\n" not in str(err.value) and "%40" in str(err.value)
        assert_hidden(str(err.value), password)
    out = capsys.readouterr()
    assert_hidden(out.out + out.err + caplog.text, password)


@pytest.mark.parametrize("password", PASSWORDS)
def test_driver_messages_naming_a_host_cut_out_of_the_password_are_scrubbed(password: str):
    """Where an ambiguous URL reached a driver anyway (another client, a URL object), the
    driver's text about the host it parsed shows no piece of the password."""
    url = url_with(password, host="pg.example.invalid")
    mangled = password.split("@", 1)[1] + "@pg.example.invalid"
    exc = sa.exc.OperationalError(
        "SELECT 1", {}, Exception(f'could not translate host name "{mangled}" to address')
    )
    msg = describe_db_error(exc, url)
    assert_hidden(msg, password)
    # the driver's text with the pieces hidden, or only the error type (a piece is too short)
    assert msg.startswith(("could not translate host name", "OperationalError ["))
    assert msg.endswith(f"[{redact_url(url)}]") and "***:***@pg.example.invalid:" in msg
    obj = sa.URL.create(
        "postgresql+psycopg2", username="meter", password="x9Q", host="k2Wz@pg.example.invalid"
    )
    assert_hidden(redact_url(obj), "x9Q@k2Wz")


def test_scrub_hides_every_piece_or_refuses_when_a_piece_is_too_short():
    uri = "postgresql://meter:s3cr@etw0rd/Pq9x@pg.example.net/db"
    assert password_pieces(uri)[0] == "s3cr@etw0rd/Pq9x"
    assert (
        scrub('host "etw0rd/Pq9x@pg.example.net" unknown', uri)
        == 'host "***/***@pg.example.net" unknown'
    )
    assert scrub("anything", "postgresql://meter:p@ss@pg.example.net/db") is None  # 'p', 'ss'
    assert scrub("no credentials", "sqlite:///a@b.db") == "no credentials"


def test_entry_point_prints_one_line_without_the_password(tmp_path):
    password = "x9Q@k2Wz"
    env = subprocess_env(
        METERFLOW_SQL_URL=url_with(password),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        METERFLOW_DATA_DIR=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "etl_sql.py"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "%40" in lines[0] and "METERFLOW_SQL_URL" in lines[0], lines
    assert_hidden(done.stdout + done.stderr, password)
