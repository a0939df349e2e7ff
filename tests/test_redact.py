"""URIs shown in messages, logs and tags never hold a password, however awkward it is."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

import pytest

from meterflow.errors import SourceError
from meterflow.redact import redact_uri, uri_host
from meterflow.sources.mongo import read_mongo_documents

PASSWORDS = [
    "pa/ss",
    "p@ss",
    "p:ss",
    "pa%ss",
    "pa?ss",
    "pa#ss",
    "a/b@c:d?e#f%g",
    "p@x/ss",  # a parser trusting the first authority would show host 'x' and path '/ss@...'
    "pw://x",
    "p%40ss%2Fw",  # already percent-encoded: neither form may show
    "pässwörd/ü@",
    "[pa]ss",
]
# (template, host part after the credentials, query)
URIS = [
    ("mongodb://{cred}@db1.example.net:27017/meters", "db1.example.net:27017/meters",
     "?authSource=admin"),
    ("mongodb+srv://{cred}@cluster0.example.net/meters", "cluster0.example.net/meters",
     "?retryWrites=true&w=majority"),
    ("mongodb://{cred}@h1.example.net:27017,h2.example.net:27018/meters",
     "h1.example.net:27017,h2.example.net:27018/meters", "?replicaSet=rs0"),
    ("postgresql+psycopg2://{cred}@pg.example.net:5432/historian", "pg.example.net:5432/historian",
     ""),
]  # fmt: skip
CASES = [
    pytest.param(template, host, query, password, encode, id=f"{template[:8]}-{password}-{encode}")
    for template, host, query in URIS
    for password in PASSWORDS
    for encode in (False, True)
]


def assert_hidden(text: str, password: str) -> None:
    for form in {password, unquote(password), quote(password, safe="")}:
        assert form not in text, (form, text)


@pytest.mark.parametrize(("template", "host", "query", "password", "encode"), CASES)
def test_password_never_shows(template: str, host: str, query: str, password: str, encode: bool):
    secret = quote(password, safe="") if encode else password
    uri = template.format(cred=f"meter:{secret}") + query
    redacted, shown_host = redact_uri(uri), uri_host(uri)
    assert_hidden(redacted, password)
    assert_hidden(shown_host, password)
    assert redacted == template.format(cred="***:***") + query
    assert shown_host == host


@pytest.mark.parametrize(("template", "host", "query"), URIS)
@pytest.mark.parametrize("password", PASSWORDS)
def test_well_formed_uris_agree_with_urlsplit(template: str, host: str, query: str, password: str):
    uri = template.format(cred=f"me%40ter:{quote(password, safe='')}") + query
    parts = urlsplit(uri)
    assert uri_host(uri) == parts.netloc.rpartition("@")[2] + parts.path
    assert redact_uri(uri) == f"{parts.scheme}://***:***@{uri_host(uri)}{query}"


@pytest.mark.parametrize(
    ("uri", "redacted", "host"),
    [
        ("mongodb://h:1/db?x=1", "mongodb://h:1/db?x=1", "h:1/db"),
        ("mongodb+srv://cluster0.example.net/", "mongodb+srv://cluster0.example.net/",
         "cluster0.example.net/"),
        ("mongodb://u:p@h:1/db?x=1", "mongodb://***:***@h:1/db?x=1", "h:1/db"),
        ("mongodb://user@h:1", "mongodb://***:***@h:1", "h:1"),
        ("sqlite:///data/meters.db", "sqlite:///data/meters.db", "/data/meters.db"),
        ("localhost:27017", "localhost:27017", "localhost:27017"),
        ("user:s3cr3t@localhost:27017", "<unparseable URI>", "<unparseable URI>"),
        ("u:s3cr3t@h://x", "<unparseable URI>", "<unparseable URI>"),
        ("postgresql://u@h/db?password=s3cr3t&sslmode=require",
         "postgresql://***:***@h/db?password=***&sslmode=require", "h/db"),
        ("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=s3cr3t#frag",
         "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***#frag", "h/"),
        ("mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:s3cr3t",
         "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=***", "h/"),
    ],
)  # fmt: skip
def test_uris_without_or_with_plain_credentials(uri: str, redacted: str, host: str):
    assert redact_uri(uri) == redacted
    assert uri_host(uri) == host


@pytest.mark.parametrize("password", ["pa/ss", "p@ss", "p:ss", "pa?ss", "p%40ss%2Fw", "pä/ss@x"])
def test_mongo_source_error_hides_the_password(password: str):
    uri = f"mongodb://meter:{password}@127.0.0.1:1/meters"
    with pytest.raises(SourceError) as excinfo:
        read_mongo_documents(uri, "meters", "readings", timeout_ms=200)
    text = str(excinfo.value)
    assert_hidden(text, password)
    assert "\n" not in text and "***:***@127.0.0.1:1/meters" in text
    assert text.endswith("(source=newmongo)")
