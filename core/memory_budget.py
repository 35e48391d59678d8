"""The server's memory budget and the byte-bounded caches that honour it.

    DETLENS_MEMORY_BUDGET_MB=1536 streamlit run app.py

The budget is the resident memory the dashboard server aims to stay under. RESERVED_MB of it
is left to the interpreter, its libraries and the one evaluation being built; the rest is
shared out between the caches (`cache_capacity(share)`), each a `BoundedCache` that evicts
its least recently used entries until its estimated size is under its share.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from types import FunctionType, ModuleType
from typing import Callable, Hashable, Iterable, Mapping

import numpy as np
import pandas as pd

ENV_VAR = "DETLENS_MEMORY_BUDGET_MB"
DEFAULT_BUDGET_MB = 1536
# Python, Streamlit, numba, pandas and plotly take ~200 MB; building one evaluation of 490,000
# boxes needs ~250 MB of temporaries on top of what it keeps (bench/bench_memory.py).
RESERVED_MB = 512
MIN_BUDGET_MB = RESERVED_MB + 64
_MB = 1 << 20
_OBJECT_ITEM_BYTES = 64      # a short str or int in an object array (pointer + object)
_SAMPLE = 1000               # object columns are sized from this many elements


@dataclass(frozen=True)
class Budget:
    """The budget in bytes and, when the setting was unusable, why the default is used."""

    bytes: int
    problem: str | None = None

    @property
    def mb(self) -> int:
        return self.bytes // _MB


def read_budget(environ: Mapping[str, str] | None = None) -> Budget:
    """DETLENS_MEMORY_BUDGET_MB from the environment, else DEFAULT_BUDGET_MB; never raises."""
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not raw:
        return Budget(DEFAULT_BUDGET_MB * _MB)
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not (np.isfinite(mb) and mb >= MIN_BUDGET_MB):  # NaN compares False: rejected too
        return Budget(DEFAULT_BUDGET_MB * _MB, problem=(
            f"Invalid {ENV_VAR} {raw!r}. Only a number of megabytes >= {MIN_BUDGET_MB} (e.g. 2048) "
            f"is supported; using the default, {DEFAULT_BUDGET_MB}."))
    return Budget(int(mb * _MB))


def cache_capacity(share: float, budget: Budget) -> int:
    """Bytes for a cache holding `share` (0-1) of what the budget leaves after RESERVED_MB."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"Invalid share {share!r}. Only values in (0, 1] are supported.")
    return int(max(budget.bytes - RESERVED_MB * _MB, 0) * share)


# ---------------------------------------------------------------------------------- sizing
def estimate_bytes(obj, *, skip: Iterable = ()) -> int:
    """Bytes held by obj and everything it references (arrays, tables, bytes, containers,
    object attributes), each counted once, leaving out everything reachable from `skip` (what
    another cache holds). An estimate: object overheads are ignored, object columns sampled."""
    seen, owners = _skip_footprint(tuple(skip))  # owners: arrays owning memory (views share it)
    return _walk([obj], seen, owners)


_FOOTPRINTS: OrderedDict[tuple, tuple] = OrderedDict()  # skip ids -> (refs, signature, seen, owners)
_FOOTPRINTS_KEPT = 8
_FOOTPRINTS_LOCK = threading.Lock()


def _skip_footprint(skip: tuple) -> tuple[set, set]:
    """What `skip` reaches (ids) and the arrays owning its memory, fresh sets to walk on.

    Remembered while the same objects are skipped again with as many attributes: every cache put
    and remeasure of a page's tables skips the evaluations they depend on, and walking those
    took ~40 ms of each Compare score move at competition scale (py-spy). An attribute an
    evaluation builds later (a cached_property) changes its count and the walk is redone; its
    objects stay alive with it, so a remembered id cannot name another object meanwhile."""
    key = tuple(id(item) for item in skip)
    signature = tuple(len(getattr(item, "__dict__", ())) for item in skip)
    with _FOOTPRINTS_LOCK:
        known = _FOOTPRINTS.get(key)
        if known is not None and known[1] == signature and all(r() is o for r, o in zip(known[0], skip)):
            _FOOTPRINTS.move_to_end(key)
            return set(known[2]), set(known[3])
    seen: set[int] = set()
    owners: set[int] = set()
    _walk(list(skip), seen, owners)
    try:
        refs = tuple(weakref.ref(item) for item in skip)
    except TypeError:  # not weakly referable (a dict, a tuple): walked every time
        return seen, owners
    with _FOOTPRINTS_LOCK:
        _FOOTPRINTS[key] = (refs, signature, frozenset(seen), frozenset(owners))
        _FOOTPRINTS.move_to_end(key)
        while len(_FOOTPRINTS) > _FOOTPRINTS_KEPT:
            _FOOTPRINTS.popitem(last=False)
    return seen, owners


def _walk(stack: list, seen: set, owners: set) -> int:
    """Bytes reachable from stack's objects not yet in seen/owners (both updated)."""
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += _array_bytes(item, owners)
        elif isinstance(item, (pd.DataFrame, pd.Series, pd.Index)):
            total += _pandas_bytes(item, owners)
        elif isinstance(item, (bytes, bytearray)):
            total += len(item)
        elif isinstance(item, memoryview):
            total += item.nbytes
        elif isinstance(item, str):
            total += len(item)
        elif isinstance(item, (int, float, bool, complex, type, ModuleType, FunctionType)):
            continue
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        else:
            stack.extend(_attributes(item))
    return int(total)


def _array_bytes(array: np.ndarray, owners: set) -> int:
    base = array
    while isinstance(base.base, np.ndarray):  # a view: count the array that owns the memory
        base = base.base
    if id(base) in owners:
        return 0
    owners.add(id(base))
    if base.dtype == object:
        return base.size * _OBJECT_ITEM_BYTES + _sampled_objects(base.ravel())
    return base.nbytes


def _pandas_bytes(table, owners: set) -> int:
    if isinstance(table, pd.DataFrame):
        columns = [table.iloc[:, i] for i in range(table.shape[1])]
        return _index_bytes(table.index) + sum(_series_bytes(s, owners) for s in columns)
    if isinstance(table, pd.Series):
        return _index_bytes(table.index) + _series_bytes(table, owners)
    return _index_bytes(table)


def _series_bytes(series: pd.Series, owners: set) -> int:
    values = series.array
    if isinstance(values, pd.Categorical):
        return int(values.codes.nbytes) + _index_bytes(values.categories)
    if series.dtype == object:
        numpy = np.asarray(values, dtype=object)
        return numpy.size * _OBJECT_ITEM_BYTES + _sampled_objects(numpy)
    try:  # columns of one dtype share a 2-D block: their arrays are views of it, counted once
        return _array_bytes(series.to_numpy(copy=False), owners)
    except (TypeError, ValueError):  # extension arrays without a numpy form
        return int(series.memory_usage(index=False, deep=False))


def _index_bytes(index: pd.Index) -> int:
    if isinstance(index, pd.RangeIndex):
        return 0
    return int(index.memory_usage(deep=False))


def _sampled_objects(values: np.ndarray) -> int:
    """Bytes of the str/bytes payloads of an object array, from up to _SAMPLE elements."""
    n = len(values)
    if not n:
        return 0
    step = max(n // _SAMPLE, 1)
    sample = values[::step]
    payload = sum(len(v) for v in sample if isinstance(v, (str, bytes)))
    return int(payload * n / len(sample))


def _attributes(obj) -> list:
    values = []
    if hasattr(obj, "__dict__"):
        values.extend(vars(obj).values())  # cached_property results live here too
    for name in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, name):
            values.append(getattr(obj, name))
    return values


# ------------------------------------------------------------------------------- releasing
def _load_libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl): nothing to trim
        return None


_LIBC = _load_libc()


def release_freed_memory() -> bool:
    """Hand freed heap memory back to the system (glibc malloc_trim); False where unavailable.

    glibc keeps freed blocks of a few MB in its heap, so without this an evicted evaluation
    leaves the server's resident size where it was.
    """
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


# ---------------------------------------------------------------------------------- cache
@dataclass
class _Entry:
    value: object
    size: int
    depends_on: tuple = ()
    signature: object = None


class BoundedCache:
    """A thread-safe LRU cache bounded by the estimated bytes of its values.

    put() evicts the least recently used entries until the total is at most `capacity_bytes`;
    the newest entry is always kept, even alone over the capacity (the page needs it). Entries
    may depend on objects held elsewhere (an evaluation): `discard_dependents(obj)` drops them
    when that object leaves its own cache, and they are sized without it. `on_evict(key,
    value)` is called for every entry that is evicted or discarded, outside the lock.
    `signature(value)`, when given, tells whether a value built lazy parts since it was sized:
    remeasure() sizes it again only when the signature changed (sizing walks its arrays).
    """

    def __init__(self, capacity_bytes: int, name: str = "cache", *, max_entries: int | None = None,
                 sizeof: Callable[..., int] = estimate_bytes,
                 on_evict: Callable[[Hashable, object], None] | None = None,
                 release: Callable[[], object] = release_freed_memory,
                 signature: Callable[[object], object] | None = None):
        if capacity_bytes < 0:
            raise ValueError(f"Invalid capacity_bytes {capacity_bytes!r}. Only values >= 0 are supported.")
        self.capacity_bytes = int(capacity_bytes)
        self.name = name
        self.max_entries = max_entries
        self._sizeof = sizeof
        self._on_evict = on_evict
        self._release = release
        self._signature = signature
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._total = 0
        self._lock = threading.RLock()
        self._creating: dict[Hashable, _Flight] = {}
        self.evictions = 0

    # -- reading
    def get(self, key: Hashable, default=None):
        """The value under key (now the most recently used), or default."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry.value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list:
        """Keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def holds(self, value) -> bool:
        """Whether `value` itself (by identity) is one of the cached values."""
        with self._lock:
            return any(entry.value is value for entry in self._entries.values())

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total

    # -- writing
    def put(self, key: Hashable, value, *, size: int | None = None, depends_on: Iterable = ()):
        """Store value (sized now unless `size` is given), evict down to capacity; returns value."""
        depends_on = tuple(depends_on)
        signature = self._signature(value) if self._signature is not None else None
        if size is None:
            size = self._sizeof(value, skip=depends_on) if depends_on else self._sizeof(value)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._total -= old.size
            self._entries[key] = _Entry(value, int(size), depends_on, signature)
            self._total += int(size)
            evicted = self._evict_locked()
        self._after_eviction(evicted)
        return value

    def get_or_create(self, key: Hashable, create: Callable[[], object], *, depends_on: Iterable = ()):
        """The cached value, or create() stored under key. Single flight: concurrent callers of
        one key wait for the one create() already running and get its value, or its exception."""
        with self._lock:  # re-entrant: get() takes it too
            value = self.get(key, _MISSING)
            if value is not _MISSING:
                return value
            flight = self._creating.get(key)
            leading = flight is None
            if leading:
                flight = self._creating[key] = _Flight()
        if not leading:
            return flight.wait(lambda: self.get_or_create(key, create, depends_on=depends_on))
        try:
            flight.value = self.put(key, create(), depends_on=depends_on)
        except Exception as exc:  # every waiter raises it too: the same input fails the same way
            flight.error = exc
            raise
        finally:  # also on a BaseException (a Streamlit rerun stopping this thread): waiters retry
            with self._lock:
                self._creating.pop(key, None)
            flight.done.set()
        return flight.value

    def remeasure(self, key: Hashable) -> None:
        """Size the entry again (its value built lazy parts since), evicting others if needed."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            value, depends_on = entry.value, entry.depends_on
        signature = self._signature(value) if self._signature is not None else None
        if signature is not None and signature == entry.signature:
            return
        size = self._sizeof(value, skip=depends_on) if depends_on else self._sizeof(value)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.value is not value:
                return
            self._total += int(size) - entry.size
            entry.size, entry.signature = int(size), signature
            evicted = self._evict_locked(keep=key)
        self._after_eviction(evicted)

    def pop(self, key: Hashable, default=None):
        """Remove and return the value under key (no on_evict: the caller asked for it)."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return default
            self._total -= entry.size
            return entry.value

    def discard_dependents(self, obj) -> int:
        """Drop every entry that depends on obj (by identity); returns how many."""
        with self._lock:
            keys = [k for k, e in self._entries.items() if any(d is obj for d in e.depends_on)]
            evicted = [(k, self._drop_locked(k)) for k in keys]
        self._after_eviction(evicted)
        return len(evicted)

    def clear(self) -> None:
        with self._lock:
            evicted = [(k, self._drop_locked(k)) for k in list(self._entries)]
        self._after_eviction(evicted)

    # -- internals
    def _drop_locked(self, key):
        entry = self._entries.pop(key)
        self._total -= entry.size
        self.evictions += 1
        return entry.value

    def _evict_locked(self, keep: Hashable | None = None) -> list:
        evicted = []
        newest = next(reversed(self._entries)) if self._entries else None

        def over() -> bool:
            too_big = self._total > self.capacity_bytes
            too_many = self.max_entries is not None and len(self._entries) > self.max_entries
            return too_big or too_many

        for key in list(self._entries):
            if not over():
                break
            if key == newest or (keep is not None and key == keep):
                continue
            evicted.append((key, self._drop_locked(key)))
        return evicted

    def _after_eviction(self, evicted: list) -> None:
        if not evicted:
            return
        if self._on_evict is not None:
            for item in evicted:
                self._on_evict(*item)
            del item
        evicted.clear()  # the cache's last references to the values go before the trim
        self._release()


_MISSING = object()


class _Flight:
    """One create() in progress: the callers waiting for it read its value or its exception."""

    def __init__(self):
        self.done = threading.Event()
        self.value = _MISSING
        self.error: Exception | None = None

    def wait(self, retry: Callable[[], object]):
        """The flight's value once it landed; its exception raised here; retry() when the
        creating thread was stopped before it finished (no value, no exception)."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        if self.value is _MISSING:
            return retry()
        return self.value
