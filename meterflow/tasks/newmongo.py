"""The ``load_newmongo`` step: new reading documents from MongoDB, incrementally.

``since=watermark`` continues after the newest document of the last finished load of the same
database and collection (its ``meterflow.watermark`` tag); the documents of the day the watermark
falls in, and each meter's last read before it, come along as ``context`` so the ETL can
difference registers across the boundary and complete that day. Credentials in ``MONGODB_URI``
never reach params, tags or logs.

Late documents (read time at or before the watermark, stored after that load): with
``lookback_days`` > 0 the read starts ``lookback_days`` local days before the day the watermark
falls in (tag ``meterflow.lookback_since``). Read documents no earlier load of the collection
loaded (by ``_id``) join the ``documents`` table as late documents (metric ``late_documents``);
the re-read ones already loaded become ``context``, so ``etl_newmongo`` rebuilds those whole
days without counting them twice, and ``harmonization`` replaces the rebuilt meter-days. The
watermark never moves backwards.

The logged ``documents`` table (Parquet) holds the documents first loaded by this run: typed
columns (``_id`` as text) plus ``issue``/``issue_detail``/``coercions`` of drifted documents,
which ``etl_newmongo`` quarantines or records as corrections (see ``meterflow.etl.counters``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from meterflow import tracking
from meterflow.etl import CleaningConfig
from meterflow.etl.predictor import DocumentsTranslator
from meterflow.etl.story import LoadStory, after, load_description, when
from meterflow.redact import uri_host
from meterflow.schemas import Table
from meterflow.settings import Environment, LoadNewMongoOptions, parse_utc
from meterflow.sources.meters import read_meters
from meterflow.sources.mongo import lookback_since, read_mongo_documents, read_mongo_previous
from meterflow.sources.mongo_changes import StoreMarks, store_marks, stored_since

log = logging.getLogger(__name__)

TAG_WATERMARK = "meterflow.watermark"
TAG_TARGET = "meterflow.mongo_target"
TAG_HOST = "meterflow.mongo_host"  # host:port/ of the server read, no credentials
TAG_SINCE = "meterflow.since"
TAG_LOOKBACK = "meterflow.lookback_since"
TAG_STORE_COUNT = "meterflow.store_count"  # the collection's marks before the read
TAG_NEWEST_ID = "meterflow.store_newest_id"


def _target(uri: str, database: str, collection: str) -> str:
    """Identity of the collection read (hash of host, database, collection; no credentials)."""
    host = uri_host(uri)
    return hashlib.sha256(f"{host}|{database}|{collection}".encode()).hexdigest()[:16]


def _loads(target: str) -> list[Any]:
    """Finished loads of ``target``, newest first."""
    runs = tracking.finished_runs("load_newmongo")
    return [r for r in runs if r.data.tags.get(TAG_TARGET) == target]


def last_watermark(target: str) -> pd.Timestamp | None:
    """Watermark of the newest finished load of ``target``, if any."""
    for run in _loads(target):
        if run.data.tags.get(TAG_WATERMARK):
            return pd.Timestamp(run.data.tags[TAG_WATERMARK])
    return None


def loaded_ids(target: str, since: pd.Timestamp) -> set[str]:
    """``_id`` of the documents earlier loads of ``target`` loaded, from the newest load back to
    the first one whose own ``since`` is at or before ``since`` (or that loaded everything):
    together their ``documents`` tables hold every document loaded after ``since``."""
    ids: set[str] = set()
    for run in _loads(target):
        ids.update(tracking.load_table(run.info.run_id, Table.DOCUMENTS)["_id"].astype(str))
        lower = run.data.tags.get(TAG_SINCE, "")
        if not lower or pd.Timestamp(lower) <= since:
            break
    return ids


def _bounds(
    opts: LoadNewMongoOptions, target: str
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(since, read_since)``: documents after ``since`` are new; the read starts after
    ``read_since``, the look-back boundary for ``since=watermark`` (else ``since``)."""
    if opts.since == "all":
        return None, None
    if opts.since != "watermark":
        since = parse_utc(opts.since)
        return since, since
    since = last_watermark(target)
    if since is None or not opts.lookback_days:
        return since, since
    return since, lookback_since(since, opts.lookback_days, opts.timezone)


def split_late(
    read: pd.DataFrame, since: pd.Timestamp | None, known: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """``(documents, reread, late)`` of the documents ``read``: those after ``since`` and the
    late ones (at or before ``since``, ``_id`` not in ``known``) to load; the others at or
    before ``since`` (loaded before); how many were late."""
    if since is None:
        return read, read.iloc[:0], 0
    old = (read["ts"].notna() & (read["ts"] <= since)).to_numpy()
    late = old & ~read["_id"].astype(str).isin(known).to_numpy()
    documents = read[~old | late].reset_index(drop=True)
    documents.attrs = dict(read.attrs)
    return documents, read[old & ~late].reset_index(drop=True), int(late.sum())


def _watermark(read: pd.DataFrame, since: pd.Timestamp | None) -> pd.Timestamp | None:
    """The newest ``ts`` read, never before ``since``."""
    marks = [t for t in (read["ts"].max() if len(read) else None, since) if not pd.isna(t)]
    return max(pd.Timestamp(t) for t in marks) if marks else None


def _context(
    uri: str,
    database: str,
    opts: LoadNewMongoOptions,
    bounds: tuple[pd.Timestamp | None, pd.Timestamp | None],
    reread: pd.DataFrame,
) -> pd.DataFrame:
    """Context documents: those before the read (the day ``read_since`` falls in and each
    meter's last read; only the last read at a look-back boundary, a local midnight) and the
    usable re-read ones."""
    since, read_since = bounds
    if read_since is None:
        return reread
    before = read_mongo_previous(
        uri,
        database,
        opts.collection,
        since=read_since,
        timezone=None if read_since != since else opts.timezone,
    )
    usable = reread[(reread["issue"] == "").to_numpy()]
    return pd.concat([before, usable], ignore_index=True) if len(usable) else before


def _iso(ts: pd.Timestamp | None) -> str:
    return "" if ts is None else pd.Timestamp(ts).isoformat()


def _read_and_split(
    uri: str,
    database: str,
    opts: LoadNewMongoOptions,
    target: str,
    bounds: tuple[pd.Timestamp | None, pd.Timestamp | None],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """``(read, documents, reread, late)``: the documents after ``read_since``, split as
    :func:`split_late` does."""
    since, read_since = bounds
    until = parse_utc(opts.until) if opts.until else None
    read = read_mongo_documents(
        uri, database, opts.collection, since=read_since, until=until, batch_size=opts.batch_size
    )
    any_old = since is not None and bool((read["ts"] <= since).any())
    known = loaded_ids(target, read_since) if any_old else set()
    return read, *split_late(read, since, known)


def _previous_marks(target: str) -> StoreMarks | None:
    """The store marks the newest finished load of ``target`` recorded, if it did."""
    for run in _loads(target)[:1]:
        tags = run.data.tags
        if tags.get(TAG_STORE_COUNT, "").isdigit():
            return StoreMarks(int(tags[TAG_STORE_COUNT]), tags.get(TAG_NEWEST_ID, ""))
    return None


def _late_before_window(
    uri: str,
    database: str,
    opts: LoadNewMongoOptions,
    marks: tuple[StoreMarks, StoreMarks | None],
    stored_new: int,
    read_since: pd.Timestamp,
) -> tuple[pd.DataFrame, int]:
    """``(late, unlocated)``: the documents stored since the last load whose read time is before
    the window read (``meter_id``, ``ts``), and how many such documents could not be located
    (``_id`` not an ObjectId). ``stored_new``: the window's documents no load loaded."""
    now, previous = marks
    empty = pd.DataFrame({"meter_id": [], "ts": pd.to_datetime([])})
    if previous is None or opts.until:
        return empty, 0
    unexplained = now.count - previous.count - stored_new
    if unexplained <= 0:
        if unexplained < 0:
            log.info("load_newmongo: %d document(s) fewer than expected (deleted)", -unexplained)
        return empty, 0
    if not previous.ordered:
        log.warning(
            "load_newmongo: %d document(s) stored since the last load are older than the window "
            "read (after %s) and cannot be located (_id is not an ObjectId); load them with "
            "since=<an earlier time>",
            unexplained,
            read_since,
        )
        return empty, unexplained
    late = stored_since(
        uri, database, opts.collection, after_id=previous.newest_id, until=read_since
    )
    return late, 0


def _widen_for_late(late: pd.DataFrame, read_since: pd.Timestamp, timezone: str) -> pd.Timestamp:
    """The start of the oldest local day a late document falls in; warns naming the days."""
    local = late["ts"].dt.tz_localize("UTC").dt.tz_convert(timezone)
    days = sorted({(t - pd.Timedelta(microseconds=1)).date() for t in local})
    log.warning(
        "load_newmongo: %d late document(s) changed %d day(s) older than the look-back window "
        "(%s%s); re-reading from %s instead of %s",
        len(late),
        len(days),
        ", ".join(map(str, days[:5])),
        ", ..." if len(days) > 5 else "",
        days[0],
        read_since,
    )
    oldest = late["ts"].min() - pd.Timedelta(microseconds=1)
    return lookback_since(oldest, 0, timezone)


@dataclass
class _Read:
    """What one load read: the documents after ``read_since``, split by :func:`split_late`, and
    the late documents older than the look-back window it found."""

    read: pd.DataFrame
    documents: pd.DataFrame
    reread: pd.DataFrame
    late: int
    read_since: pd.Timestamp | None
    before_lookback: int = 0
    unlocated: int = 0


def _read_new_and_late(
    uri: str,
    database: str,
    opts: LoadNewMongoOptions,
    target: str,
    bounds: tuple[pd.Timestamp | None, pd.Timestamp | None],
    marks: StoreMarks,
) -> _Read:
    """Read after ``read_since``; when documents were stored since the last load (``marks``:
    the collection's now) that are older than that, read again from the start of the oldest
    day they changed."""
    since, read_since = bounds
    done = _Read(*_read_and_split(uri, database, opts, target, (since, read_since)), read_since)
    if since is None or read_since is None:
        return done
    found, unlocated = _late_before_window(
        uri, database, opts, (marks, _previous_marks(target)), len(done.documents), read_since
    )
    done.unlocated = unlocated
    if len(found):
        wider = _widen_for_late(found, read_since, opts.timezone)
        done = _Read(*_read_and_split(uri, database, opts, target, (since, wider)), wider)
        done.before_lookback = len(found)
    return done


def run_load_newmongo(opts: LoadNewMongoOptions, env: Environment) -> str:
    """Load the new and late documents with their context (see module docstring); the run id."""
    tracking.configure(env)
    uri, database = env.require_mongodb_uri(), env.mongo_database
    target = _target(uri, database, opts.collection)
    with tracking.step_run("load_newmongo", opts) as run:
        marks = store_marks(uri, database, opts.collection)
        since, read_since = _bounds(opts, target)
        meters = read_meters(env.sql_url)
        got = _read_new_and_late(uri, database, opts, target, (since, read_since), marks)
        context = _context(uri, database, opts, (since, got.read_since), got.reread)
        watermark = _watermark(got.read, since)
        run.set_tags(
            {
                TAG_TARGET: target,
                TAG_HOST: uri_host(uri),
                TAG_SINCE: _iso(since),
                TAG_LOOKBACK: _iso(got.read_since) if got.read_since != since else "",
                TAG_WATERMARK: _iso(watermark),
                TAG_STORE_COUNT: marks.count,
                TAG_NEWEST_ID: marks.newest_id,
            }
        )
        run.log_table(got.documents, Table.DOCUMENTS)
        run.log_table(context, Table.CONTEXT)
        run.log_table(meters, Table.METERS)
        run.log_metrics(_metrics(got, context))
        config = CleaningConfig(timezone=opts.timezone)
        run.log_model(DocumentsTranslator(meters, config))
        store = f"{uri_host(uri).rstrip('/')} database {database}, collection {opts.collection}"
        story = _story(store, got, context, (since, watermark), opts.since == "watermark")
        run.describe(load_description(story))
        _log_summary(story)
        return run.run_id


def _story(
    store: str,
    got: _Read,
    context: pd.DataFrame,
    marks: tuple[pd.Timestamp | None, pd.Timestamp | None],
    after_watermark: bool,
) -> LoadStory:
    """What the description says of this load; ``marks``: ``(since, watermark)``."""
    since, watermark = marks
    documents = got.documents
    return LoadStory(
        store=store,
        documents=len(documents),
        late=got.late,
        meters=int(documents["meter_id"].nunique()),
        context=len(context),
        with_issue=int((documents["issue"] != "").sum()),
        since=since,
        read_since=got.read_since,
        watermark=watermark,
        incremental=after_watermark and since is not None,
    )


def _log_summary(story: LoadStory) -> None:
    new = story.documents - story.late
    log.info("load_newmongo: %d new documents %s", new, after(story.since))
    if story.read_since != story.since:
        log.info(
            "load_newmongo: %d late document(s) merged from the look-back window (%s, %s]",
            story.late,
            when(story.read_since),
            when(story.since),
        )
    log.info("load_newmongo: watermark now %s", when(story.watermark, "n/a"))


def _metrics(got: _Read, context: pd.DataFrame) -> dict[str, float]:
    documents = got.documents
    return {
        "documents": len(documents),
        "late_documents": got.late,
        "lookback_documents": len(got.reread) + got.late,
        "late_before_lookback_documents": got.before_lookback,
        "late_unlocated_documents": got.unlocated,
        "context_documents": len(context),
        "meters_with_documents": documents["meter_id"].nunique(),
        "documents_with_issue": int((documents["issue"] != "").sum()),
        "documents_coerced": int((documents["coercions"] != "").sum()),
    }
