"""The submission catalog's store: SQLite by default, PostgreSQL in team mode, one code path.

    catalog = Catalog(resolve_url())            # DETLENS_DB_URL, or ~/.detlens/catalog.sqlite
    sub, created = catalog.register(data, "fold3.csv", n_boxes=..., n_images=...)
    catalog.update(sub.id, model="DETA swin-L", lb_score=0.712)

Every submission is one row keyed by the sha256 of its bytes (the same file is one entry);
the bytes are kept zlib-compressed so a teammate on a shared database can open it. Results
(an evaluation's numbers) are cached per (GT sha256, prediction sha256, IoU). The schema is
created and migrated here (table `detlens_schema`, MIGRATIONS); a database written by a newer
DetLens, a corrupt or foreign file and an unreachable server raise CatalogError, whose message
never holds the password of the URL.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

ENV_VAR = "DETLENS_DB_URL"
DEFAULT_PATH = Path("~/.detlens/catalog.sqlite")
SCHEMA_VERSION = 1
USER_FIELDS = ("display_name", "model", "notes", "author", "lb_score", "private_score")
_FLOAT_FIELDS = ("lb_score", "private_score")

metadata = sa.MetaData()
schema_table = sa.Table(
    "detlens_schema", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
submissions_table = sa.Table(
    "detlens_submissions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("n_boxes", sa.Integer),
    sa.Column("n_images", sa.Integer),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("notes", sa.Text),
    sa.Column("author", sa.Text),
    sa.Column("lb_score", sa.Float),
    sa.Column("private_score", sa.Float),
    sa.Column("content", sa.LargeBinary, nullable=False),  # zlib of the file's bytes
)
results_table = sa.Table(
    "detlens_results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gt_sha256", sa.String(64), nullable=False),
    sa.Column("pred_sha256", sa.String(64), nullable=False),
    sa.Column("iou_thr", sa.Float, nullable=False),
    sa.Column("gt_name", sa.Text),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # json: stats, per_class, tide, counts
    sa.UniqueConstraint("gt_sha256", "pred_sha256", "iou_thr", name="detlens_results_key"),
)


def _migrate_to_1(conn) -> None:
    for table in (submissions_table, results_table):
        table.create(conn, checkfirst=True)


# version -> the step that brings a database from version-1 to it; a new column is a new step
MIGRATIONS = {1: _migrate_to_1}


class CatalogError(RuntimeError):
    """The store cannot be used; the message says why and what to do (no password in it)."""


@dataclass(frozen=True)
class Submission:
    """One catalogued submission (without its bytes: `Catalog.content(id)`)."""

    id: int
    sha256: str
    file_name: str
    size_bytes: int
    n_boxes: int | None
    n_images: int | None
    first_seen: dt.datetime
    display_name: str | None
    model: str | None
    notes: str | None
    author: str | None
    lb_score: float | None
    private_score: float | None

    @property
    def name(self) -> str:
        """What to call it: the display name, else the file name."""
        return self.display_name or self.file_name


def resolve_url(explicit: str | None = None, environ=None) -> str:
    """The store's URL: `explicit` (--db), else DETLENS_DB_URL, else SQLite at DEFAULT_PATH.

    A plain path (no `://`) means a SQLite file there.
    """
    environ = os.environ if environ is None else environ
    url = explicit or environ.get(ENV_VAR) or ""
    if not url.strip():
        return f"sqlite:///{DEFAULT_PATH.expanduser()}"
    url = url.strip()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to show or log."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown only by its scheme
        return url.split("://", 1)[0] + "://***"


def _password(url: str) -> str | None:
    try:
        return sa.engine.make_url(url).password
    except Exception:  # noqa: BLE001
        return None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Catalog:
    """The store at `url`; opening it creates or migrates the schema (CatalogError if it cannot)."""

    def __init__(self, url: str):
        self.url = url
        self.masked_url = mask_url(url)
        self._secret = _password(url)
        try:
            self.engine = _engine(url)
        except CatalogError:
            raise
        except Exception as exc:  # noqa: BLE001 - bad URL, missing driver
            raise self._error("cannot open", exc) from None
        self._guard(self._migrate)

    # ------------------------------------------------------------------ errors
    def _clean(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _error(self, doing: str, exc: Exception) -> CatalogError:
        orig = getattr(exc, "orig", None) or exc
        reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        hint = ""
        if isinstance(orig, Exception) and "not a database" in reason:
            hint = " The file is not a SQLite database (corrupt, or another program's file)."
        if self.url.startswith("postgres"):
            hint += " Check that the server is running and reachable, and the URL (DETLENS_DB_URL or --db)."
        else:
            hint += f" Point {ENV_VAR} (or --db) at a new file to start another catalog."
        return CatalogError(self._clean(f"submission catalog {self.masked_url}: {doing}: {reason}.{hint}"))

    def _guard(self, fn, *args, doing: str = "cannot be used", **kwargs):
        try:
            return fn(*args, **kwargs)
        except CatalogError:
            raise
        except (sa_exc.SQLAlchemyError, OSError, zlib.error) as exc:
            raise self._error(doing, exc) from None

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # one migrator at a time across processes
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(74237011)"))
            names = set(sa.inspect(conn).get_table_names())
            if schema_table.name not in names:
                ours = {t.name for t in metadata.sorted_tables}
                foreign = sorted(names - ours)
                if foreign:
                    raise CatalogError(self._clean(
                        f"submission catalog {self.masked_url}: this database holds tables that are not "
                        f"DetLens' ({', '.join(foreign[:5])}); DetLens keeps its catalog in a database of its "
                        f"own. Point {ENV_VAR} (or --db) at a new file or an empty database."))
                schema_table.create(conn)
                conn.execute(schema_table.insert().values(id=1, version=0))
            version = conn.execute(sa.select(schema_table.c.version).where(schema_table.c.id == 1)).scalar()
            version = 0 if version is None else int(version)
            if version > SCHEMA_VERSION:
                raise CatalogError(self._clean(
                    f"submission catalog {self.masked_url}: its schema is version {version}, written by a newer "
                    f"DetLens (this one knows up to version {SCHEMA_VERSION}). Upgrade DetLens, or point "
                    f"{ENV_VAR} (or --db) at another catalog; the rest of the app works without it."))
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
                conn.execute(schema_table.update().where(schema_table.c.id == 1).values(version=step))

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(schema_table.c.version)).scalar())

    # ------------------------------------------------------------------ submissions
    def register(self, data: bytes, file_name: str, *, n_boxes: int | None = None,
                 n_images: int | None = None, **fields) -> tuple[Submission, bool]:
        """Catalogue `data` (once per content); returns the entry and whether it is new.

        fields: USER_FIELDS to set on a new entry; for an existing one, only those still empty
        are filled (a re-registration never overwrites a teammate's edit).
        """
        fields = _checked_fields(fields)
        sha256 = hashlib.sha256(data).hexdigest()
        return self._guard(self._register, sha256, data, file_name, n_boxes, n_images, fields,
                           doing="cannot register a submission")

    def _register(self, sha256, data, file_name, n_boxes, n_images, fields):
        existing = self.find(sha256)
        if existing is None:
            row = dict(sha256=sha256, file_name=str(file_name), size_bytes=len(data), n_boxes=n_boxes,
                       n_images=n_images, first_seen=_utcnow(), content=zlib.compress(data, 6), **fields)
            with self.engine.begin() as conn:
                created = conn.execute(_insert_ignore(conn, submissions_table, ["sha256"]).values(**row)).rowcount
            if created:
                return self.find(sha256), True
            existing = self.find(sha256)  # another writer registered it meanwhile
        empty = {k: v for k, v in fields.items() if getattr(existing, k) in (None, "") and v not in (None, "")}
        if empty:
            with self.engine.begin() as conn:
                for key, value in empty.items():  # only where still empty, in the database itself
                    column = submissions_table.c[key]
                    conn.execute(submissions_table.update()
                                 .where(submissions_table.c.id == existing.id)
                                 .where(sa.or_(column.is_(None), column == "") if key not in _FLOAT_FIELDS
                                        else column.is_(None))
                                 .values({key: value}))
            existing = self.get(existing.id)
        return existing, False

    def update(self, submission_id: int, **fields) -> Submission:
        """Set user fields of one entry; only the named columns are written (no lost edit)."""
        fields = _checked_fields(fields)

        def run():
            if fields:
                with self.engine.begin() as conn:
                    done = conn.execute(submissions_table.update()
                                        .where(submissions_table.c.id == int(submission_id)).values(**fields))
                    if not done.rowcount:
                        raise KeyError(submission_id)
            return self.get(submission_id)
        return self._guard(run, doing="cannot save the edit")

    def _select(self, *where):
        columns = [c for c in submissions_table.c if c.name != "content"]
        return sa.select(*columns).where(*where).order_by(submissions_table.c.id)

    def list(self) -> list[Submission]:
        def run():
            with self.engine.connect() as conn:
                return [Submission(**row._mapping) for row in conn.execute(self._select())]
        return self._guard(run, doing="cannot list submissions")

    def get(self, submission_id: int) -> Submission:
        """The entry with this id; KeyError when there is none."""
        def run():
            with self.engine.connect() as conn:
                row = conn.execute(self._select(submissions_table.c.id == int(submission_id))).first()
            if row is None:
                raise KeyError(submission_id)
            return Submission(**row._mapping)
        return self._guard(run, doing="cannot read a submission")

    def find(self, sha256: str) -> Submission | None:
        def run():
            with self.engine.connect() as conn:
                row = conn.execute(self._select(submissions_table.c.sha256 == sha256)).first()
            return None if row is None else Submission(**row._mapping)
        return self._guard(run, doing="cannot read a submission")

    def content(self, submission_id: int) -> bytes:
        """The submission file's bytes, as registered."""
        def run():
            with self.engine.connect() as conn:
                blob = conn.execute(sa.select(submissions_table.c.content)
                                    .where(submissions_table.c.id == int(submission_id))).scalar()
            if blob is None:
                raise KeyError(submission_id)
            return zlib.decompress(blob)
        return self._guard(run, doing="cannot read a submission's file")

    # ------------------------------------------------------------------ cached results
    def save_result(self, gt_sha256: str, pred_sha256: str, iou_thr: float, payload: dict,
                    gt_name: str | None = None) -> bool:
        """Keep an evaluation's numbers; False when they were cached already."""
        text = json.dumps(payload, allow_nan=False)

        def run():
            with self.engine.begin() as conn:
                return bool(conn.execute(
                    _insert_ignore(conn, results_table, ["gt_sha256", "pred_sha256", "iou_thr"]).values(
                        gt_sha256=gt_sha256, pred_sha256=pred_sha256, iou_thr=_iou_key(iou_thr),
                        gt_name=gt_name, created=_utcnow(), payload=text)).rowcount)
        return self._guard(run, doing="cannot cache a result")

    def result(self, gt_sha256: str, pred_sha256: str, iou_thr: float) -> dict | None:
        """The cached numbers, or None when this pair was never evaluated at this IoU."""
        def run():
            with self.engine.connect() as conn:
                text = conn.execute(sa.select(results_table.c.payload).where(
                    results_table.c.gt_sha256 == gt_sha256, results_table.c.pred_sha256 == pred_sha256,
                    results_table.c.iou_thr == _iou_key(iou_thr))).scalar()
            return None if text is None else json.loads(text)
        return self._guard(run, doing="cannot read a cached result")

    def results_for(self, gt_sha256: str, iou_thr: float) -> dict[str, dict]:
        """pred sha256 -> cached numbers, for every submission evaluated against this GT."""
        def run():
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(results_table.c.pred_sha256, results_table.c.payload).where(
                    results_table.c.gt_sha256 == gt_sha256, results_table.c.iou_thr == _iou_key(iou_thr)))
                return {sha: json.loads(text) for sha, text in rows}
        return self._guard(run, doing="cannot read cached results")

    def ground_truths(self) -> list[tuple[str, str | None, int]]:
        """(GT sha256, its name, number of results) for every GT something was evaluated on."""
        def run():
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(results_table.c.gt_sha256, sa.func.max(results_table.c.gt_name),
                                              sa.func.count()).group_by(results_table.c.gt_sha256))
                return [(a, b, int(c)) for a, b, c in rows]
        return self._guard(run, doing="cannot read cached results")

    def close(self) -> None:
        self.engine.dispose()


def _iou_key(iou_thr: float) -> float:
    return round(float(iou_thr), 6)  # 0.1 + 0.4 and 0.5 are one key


def _checked_fields(fields: dict) -> dict:
    unknown = sorted(set(fields) - set(USER_FIELDS))
    if unknown:
        raise ValueError(f"Invalid field(s) {', '.join(unknown)}. Only {', '.join(USER_FIELDS)} are supported.")
    out = {}
    for key, value in fields.items():
        if key in _FLOAT_FIELDS:
            out[key] = None if value is None or value == "" else _score(key, value)
        else:
            out[key] = None if value is None else str(value)
    return out


def _score(key: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, e.g. 0.712; got {str(value)[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{key} must be a finite number; got {value!r}")
    return number


def _insert_ignore(conn, table: sa.Table, keys: list[str]):
    """INSERT that does nothing when a row with the same `keys` exists (both dialects)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=keys)


def _engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL: readers never wait for a writer
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, the pip dependency
    return sa.create_engine(url, pool_pre_ping=True, connect_args=_connect_args(parsed))


def _connect_args(parsed) -> dict:
    return {"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {}
