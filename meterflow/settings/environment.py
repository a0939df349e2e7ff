"""Where the stores and the tracking server are: read from environment variables only (secrets
never travel as parameters, tags or logs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from meterflow.errors import ConfigError
from meterflow.redact import ESCAPE_HINT, ambiguous_credentials, redact_uri
from meterflow.sources import formats

DEFAULT_DATA_DIR = "data"
DEFAULT_EXPERIMENT = "meterflow"
DEFAULT_REGISTRY_PREFIX = "meterflow"
DEFAULT_TRACKING_TIMEOUT_S = 120


class Environment(BaseModel):
    """Store locations, from environment variables (see docs/configuration.md)."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    sql_url: str
    mongodb_uri: str | None  # None: the pipeline starts a local wire-protocol server
    mongo_database: str
    experiment: str
    tracking_uri: str | None = None  # None: sqlite:///mlflow.db in the working folder
    registry_prefix: str = DEFAULT_REGISTRY_PREFIX  # registered models <prefix>-<step>
    tracking_timeout_s: int = DEFAULT_TRACKING_TIMEOUT_S  # an unreachable server fails a call

    @field_validator("sql_url")
    @classmethod
    def _unambiguous_sql_url(cls, v: str) -> str:
        """Reject a URL whose credentials hold an unescaped ``@`` (a driver would read the host
        from inside the password and echo it). A ConfigError, not a ValueError, so that pydantic
        does not add the value (with the password) to the message."""
        if ambiguous_credentials(v):
            raise ConfigError(
                f"METERFLOW_SQL_URL {redact_uri(v)} is ambiguous: its user name or password "
                f"holds an unescaped '@'; {ESCAPE_HINT}"
            )
        return v

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if env is None else env
        data_dir = Path(env.get("METERFLOW_DATA_DIR") or DEFAULT_DATA_DIR)
        sql_url = env.get("METERFLOW_SQL_URL") or f"sqlite:///{data_dir / 'historian.db'}"
        return cls(
            data_dir=data_dir,
            sql_url=sql_url,
            mongodb_uri=env.get("MONGODB_URI") or None,
            mongo_database=env.get("METERFLOW_MONGO_DB") or formats.MONGO_DATABASE,
            experiment=env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            registry_prefix=env.get("METERFLOW_REGISTRY_PREFIX") or DEFAULT_REGISTRY_PREFIX,
            tracking_timeout_s=env.get("METERFLOW_TRACKING_TIMEOUT_S")
            or DEFAULT_TRACKING_TIMEOUT_S,
        )

    def with_mongodb_uri(self, uri: str) -> Environment:
        """The same environment with a MongoDB server (e.g. the pipeline's local one)."""
        return self.model_copy(update={"mongodb_uri": uri})

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "oldmongo"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "ground_truth"

    @property
    def local_mongo_path(self) -> Path:
        return self.data_dir / "mongo" / "nx-27017.db"

    @property
    def dtw_cache_dir(self) -> Path:
        return self.data_dir / "cache" / "dtw"

    def require_mongodb_uri(self) -> str:
        if not self.mongodb_uri:
            raise ConfigError(
                "MONGODB_URI is not set: point it at a MongoDB server, or run the pipeline "
                "(main entry point), which starts a local one"
            )
        return self.mongodb_uri
