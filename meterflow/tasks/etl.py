"""The ETL steps: each source through the shared cleaning into daily profiles, nothing lost.

Every run logs the tables ``profiles``, ``quarantine`` (every dropped, corrected or filled
reading with its reason and store location), ``quality`` (per meter of the meter table, also
those without readings), ``corrections_summary``, ``scale_corrections``, ``reasons`` (what each
reason code means), ``files`` (file sources: every file found and whether it was read) and
``meters``, the reconciled counts (readings_in = readings_kept + readings_quarantined), a
``ReadingsCleaner`` model and a description (``etl.story``): the per-reason counts are the
``corrections_summary`` table and the ``quarantine_reasons`` figure, not metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path

from meterflow import domain, tracking
from meterflow.errors import ConfigError, MeterflowError
from meterflow.etl import CleaningConfig, EtlResult
from meterflow.etl.figures import completeness_figure, quarantine_reasons_figure
from meterflow.etl.params import CleaningParams
from meterflow.etl.predictor import ReadingsCleaner
from meterflow.etl.quality import quality_with_every_meter
from meterflow.etl.quarantine import reasons_table
from meterflow.etl.story import EtlStory, etl_description, headline_metrics
from meterflow.redact import redact_uri, uri_host
from meterflow.schemas import Table
from meterflow.settings import (
    Environment,
    EtlNewMongoOptions,
    EtlOldMongoOptions,
    EtlSourceOptions,
    EtlSqlOptions,
    parse_utc,
)
from meterflow.sources import diskspace, formats
from meterflow.sources.contract import etl_source
from meterflow.sources.meters import read_meters
from meterflow.sources.mongo import etl_newmongo
from meterflow.sources.oldexports import etl_oldexports
from meterflow.sources.registry import etl_step, source_class
from meterflow.sources.sql import etl_sql
from meterflow.tasks.newmongo import TAG_HOST

log = logging.getLogger(__name__)

RESULT_TABLES = (
    Table.PROFILES,
    Table.QUARANTINE,
    Table.QUALITY,
    Table.CORRECTIONS_SUMMARY,
    Table.SCALE_CORRECTIONS,
)


def cleaning_config(opts: CleaningParams) -> CleaningConfig:
    return CleaningConfig(
        resolution_min=opts.resolution,
        timezone=opts.timezone,
        max_gap_min=opts.max_gap_min,
        night_max_gap_min=opts.night_max_gap_min,
    )


def log_result(
    run: tracking.StepRun,
    result: EtlResult,
    meters,
    config: CleaningConfig,
    source: tuple[str, str],
) -> None:
    """Log an ETL result: tables, reconciled counts, figures, model and the description;
    ``source``: the source's name and where its store is (no credentials)."""
    source, store = source
    m = result.metrics
    if m["readings_in"] != m["readings_kept"] + m["readings_quarantined"]:
        raise MeterflowError(
            f"{source}: counts do not reconcile: in={m['readings_in']:.0f} "
            f"kept={m['readings_kept']:.0f} quarantined={m['readings_quarantined']:.0f}"
        )
    result.quality = quality_with_every_meter(result.quality, meters)
    tables = [getattr(result, name) for name in RESULT_TABLES]
    needed = diskspace.table_bytes(*tables, meters) + diskspace.MODEL_BYTES
    diskspace.require_output_space(needed, tracking.tracking_uri(), f"the {source} ETL outputs")
    for name, table in zip(RESULT_TABLES, tables, strict=True):
        run.log_table(table, name)
    if result.files is not None:
        run.log_table(result.files, Table.FILES)
    run.log_table(reasons_table(), Table.REASONS)
    run.log_table(meters, Table.METERS)
    run.log_metrics(headline_metrics(m, result.quality))
    run.log_figure(quarantine_reasons_figure(result.quarantine), "quarantine_reasons")
    run.log_figure(completeness_figure(result.profiles), "completeness")
    run.log_model(ReadingsCleaner(meters, config, source))
    title = source_class(source).title
    run.describe(etl_description(result, EtlStory(title, store, len(meters))))
    counts = (m["readings_in"], m["readings_kept"], m["readings_quarantined"])
    log.info("%s: %d readings in, %d kept, %d quarantined", source, *counts)
    log.info("%s: %d meter-days out", source, m["meter_days_out"])


def store_location(source: str, env: Environment) -> str:
    """Where the store of a registered source is, without credentials."""
    if source == domain.SOURCE_SQL:
        return redact_uri(env.sql_url)
    if source == domain.SOURCE_OLDMONGO:
        return str(env.exports_dir)
    if source == domain.SOURCE_NEWMONGO:
        uri = env.require_mongodb_uri()
        return f"{uri_host(uri).rstrip('/')} database {env.mongo_database}"
    return "the store of its environment"


def run_etl_sql(opts: EtlSqlOptions, env: Environment) -> str:
    tracking.configure(env)
    config = cleaning_config(opts)
    with tracking.step_run("etl_sql", opts) as run:
        meters = read_meters(env.sql_url)
        result = etl_sql(
            env.sql_url,
            meters=meters,
            config=config,
            start=parse_utc(opts.start) if opts.start else None,
            end=parse_utc(opts.end) if opts.end else None,
            chunk_size=opts.chunk_size,
            table=opts.table,
            historian_timezone=opts.historian_timezone,
        )
        store = f"{redact_uri(env.sql_url)}, table {opts.table}"
        log_result(run, result, meters, config, (domain.SOURCE_SQL, store))
        return run.run_id


def run_etl_oldmongo(opts: EtlOldMongoOptions, env: Environment) -> str:
    tracking.configure(env)
    config = cleaning_config(opts)
    with tracking.step_run("etl_oldmongo", opts) as run:
        meters = read_meters(env.sql_url)
        reference = None
        if opts.reference_run:
            reference_run = tracking.resolve_run(opts.reference_run, "etl_sql")
            reference = tracking.load_table(reference_run, Table.PROFILES)
        folder = Path(opts.exports_dir) if opts.exports_dir else env.exports_dir
        result = etl_oldexports(
            folder,
            meters=meters,
            config=config,
            reference_profiles=reference,
            on_error="quarantine" if opts.on_bad_file == "quarantine" else "raise",
        )
        log_result(run, result, meters, config, (domain.SOURCE_OLDMONGO, str(folder)))
        return run.run_id


def run_etl_newmongo(opts: EtlNewMongoOptions, env: Environment) -> str:
    tracking.configure(env)
    config = cleaning_config(opts)
    with tracking.step_run("etl_newmongo", opts) as run:
        raw_run = tracking.resolve_run(opts.raw_run, "load_newmongo")
        run.set_tags({"input.raw_run": raw_run})
        context = tracking.load_table(raw_run, Table.CONTEXT)
        meters = tracking.load_table(raw_run, Table.METERS)
        collection = tracking.run_params(raw_run).get("collection") or formats.MONGO_COLLECTION
        with tracking.table_file(raw_run, Table.DOCUMENTS) as documents:  # read block by block
            result = etl_newmongo(
                documents, meters=meters, config=config, previous=context, collection=collection
            )
        host = (tracking.run_tag(raw_run, TAG_HOST) or "MongoDB").rstrip("/")
        store = f"{host} collection {collection}, loaded by run {raw_run}"
        log_result(run, result, meters, config, (domain.SOURCE_NEWMONGO, store))
        return run.run_id


def run_etl_source(opts: EtlSourceOptions, env: Environment) -> str:
    """The ETL of any registered source through its adapter's defaults (``sources.contract``)."""
    tracking.configure(env)
    config = cleaning_config(opts)
    source = source_class(opts.source)
    with tracking.step_run(etl_step(opts.source), opts) as run:
        meters = read_meters(env.sql_url)
        reference = None
        if opts.reference_run:
            if source.reference_source is None:
                raise ConfigError(f"source {opts.source} takes no reference_run")
            expected = etl_step(source.reference_source)
            reference_run = tracking.resolve_run(opts.reference_run, expected)
            reference = tracking.load_table(reference_run, Table.PROFILES)
        adapter = source.from_stores(env, config)
        result = etl_source(adapter, meters=meters, reference_profiles=reference)
        log_result(run, result, meters, config, (opts.source, store_location(opts.source, env)))
        return run.run_id
