"""The ``load_newmongo`` step: new reading documents from MongoDB, incrementally.

``since=watermark`` continues after the newest document of the last finished load of the same
database and collection (its ``meterflow.watermark`` tag); the documents of the day the watermark
falls in, and each meter's last read before it, come along as ``context`` so the ETL can
difference registers across the boundary and complete that day. Credentials in ``MONGODB_URI``
never reach params, tags or logs.

The logged ``documents`` table (Parquet) holds the documents as read: typed columns (``_id`` as
text) plus ``issue``/``issue_detail``/``coercions`` of drifted documents, which ``etl_newmongo``
quarantines or records as corrections (see ``meterflow.etl.counters``).
"""

from __future__ import annotations

import hashlib
import logging

import pandas as pd

from meterflow import tracking
from meterflow.config import Environment, LoadNewMongoOptions, parse_utc
from meterflow.etl import CleaningConfig
from meterflow.etl.predictor import DocumentsTranslator
from meterflow.redact import uri_host
from meterflow.schemas import Table
from meterflow.sources.meters import read_meters
from meterflow.sources.mongo import read_mongo_documents, read_mongo_previous

log = logging.getLogger(__name__)

TAG_WATERMARK = "meterflow.watermark"
TAG_TARGET = "meterflow.mongo_target"


def _target(uri: str, database: str, collection: str) -> str:
    """Identity of the collection read (hash of host, database, collection; no credentials)."""
    host = uri_host(uri)
    return hashlib.sha256(f"{host}|{database}|{collection}".encode()).hexdigest()[:16]


def last_watermark(target: str) -> pd.Timestamp | None:
    """Watermark of the newest finished load of ``target``, if any."""
    for run in tracking.finished_runs("load_newmongo"):
        tags = run.data.tags
        if tags.get(TAG_TARGET) == target and tags.get(TAG_WATERMARK):
            return pd.Timestamp(tags[TAG_WATERMARK])
    return None


def run_load_newmongo(opts: LoadNewMongoOptions, env: Environment) -> str:
    tracking.configure(env)
    uri = env.require_mongodb_uri()
    target = _target(uri, env.mongo_database, opts.collection)
    with tracking.step_run("load_newmongo", opts) as run:
        if opts.since == "watermark":
            since = last_watermark(target)
        elif opts.since == "all":
            since = None
        else:
            since = parse_utc(opts.since)
        until = parse_utc(opts.until) if opts.until else None
        meters = read_meters(env.sql_url)
        documents = read_mongo_documents(
            uri,
            env.mongo_database,
            opts.collection,
            since=since,
            until=until,
            batch_size=opts.batch_size,
        )
        context = (
            read_mongo_previous(
                uri, env.mongo_database, opts.collection, since=since, timezone=opts.timezone
            )
            if since is not None
            else documents.iloc[:0]
        )
        watermark = documents["ts"].max() if len(documents) else since
        run.set_tags(
            {
                TAG_TARGET: target,
                "meterflow.mongo_host": uri_host(uri),
                "meterflow.since": "" if since is None else since.isoformat(),
                TAG_WATERMARK: "" if watermark is None else pd.Timestamp(watermark).isoformat(),
            }
        )
        run.log_table(documents, Table.DOCUMENTS)
        run.log_table(context, Table.CONTEXT)
        run.log_table(meters, Table.METERS)
        run.log_metrics(
            {
                "documents": len(documents),
                "context_documents": len(context),
                "meters_with_documents": documents["meter_id"].nunique(),
                "documents_with_issue": int((documents["issue"] != "").sum()),
                "documents_coerced": int((documents["coercions"] != "").sum()),
            }
        )
        config = CleaningConfig(timezone=opts.timezone)
        run.log_model(DocumentsTranslator(meters, config))
        log.info("load_newmongo: %d documents after %s", len(documents), since)
        log.info("load_newmongo: watermark now %s", watermark)
        return run.run_id
