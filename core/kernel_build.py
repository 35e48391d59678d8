"""The compiled kernels: an ahead-of-time build when there is one, numba's JIT otherwise.

Sources: `core.matching_kernels` (COCO matching, TIDE's cascade, accumulation) and
`core.csv_kernels` (the submission CSV's number scan). Run through numba's JIT they cost every
new process ~0.5 s (importing numba, setting up its compiler) before the cached machine code
runs. The same functions compiled ahead of time by numba.pycc into one extension module import
in milliseconds and need no numba at run time, which is what a command-line run wants:

    python -m core.kernel_build        # build once (~15 s); done on first use when missing

The build is tagged with a hash of the kernel sources, the numba/numpy/Python versions and the
CPU's instruction sets (it is compiled for this CPU), so an edited kernel is never served stale
and a copied checkout never runs another CPU's code; without a build everything still works (JIT).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

# the modules under core/ compiled into the one extension; each export is defined in one of them
SOURCES = ("matching_kernels", "csv_kernels")
# numba signatures of the exported functions (all arrays C-contiguous or not: layout "A")
SIGNATURES = {
    "match_images": "Tuple((i8[:], i8[:], i8[:], f8[:], i8[:], i8[:], b1[:], i8[:], u1[:,:,:], b1[:]))"
                    "(i8[:], i8[:], f8[:], f8[:,:], i8[:], i8[:], f8[:,:], b1[:], f8[:], f8, f8, f8[:], "
                    "f8[:,:], i8)",
    "accumulate": "Tuple((f8[:,:,:,:,:], f8[:,:,:,:]))(u1[:,:,:], b1[:], i8[:], i8[:], i8[:], i8[:,:], f8[:])",
    "accumulate_reachable": "Tuple((f8[:,:,:,:,:], f8[:,:,:,:]))(u1[:], u1[:,:,:], i8[:], i8[:,:], f8[:])",
    "class_score_order": "Tuple((i8[:], i8[:]))(f8[:], i8[:], i8[:], i8)",
    "box_flags": "u1[:](f8[:,:])",
    "box_columns": "Tuple((i8[:], f8[:], f8[:,:]))(f8[:,:])",
    "outside_images": "b1[:](f8[:,:], i8[:], b1[:], f8[:], f8[:], f8)",
    "parse_numbers": "Tuple((f8[:], i8[:], b1[:]))(u1[:], i8[:], i8[:])",
    "count_tokens": "i8[:](u1[:], i8[:], i8[:])",
    "parse_into": "void(u1[:], i8[:], i8[:], f8[:], b1[:])",
}


@lru_cache(maxsize=1)
def kernels():
    """The module with the matching kernels (`match_images`, `accumulate`...): the ahead-of-time
    build, which holds every export of SIGNATURES, made on first use when missing; else
    core.matching_kernels under numba's JIT (DETLENS_KERNELS=jit in the environment forces it)."""
    if os.environ.get("DETLENS_KERNELS") != "jit":
        folder = default_build_dir()
        # Building (~13 s, once) costs less than the JIT's first compile (~20 s) and saves every
        # later process ~0.5 s of numba start-up; where it cannot be built, the JIT serves.
        built = load_built(folder) or _try_build(folder)
        if built is not None:
            return built
    from core import matching_kernels  # numba JIT (cache=True: compiled once per checkout)

    return matching_kernels


def kernel(name: str):
    """The compiled function `name` (a key of SIGNATURES): from the ahead-of-time build, else
    under numba's JIT from the module of SOURCES that defines it."""
    built = kernels()
    if hasattr(built, name):
        return getattr(built, name)
    for source in SOURCES:
        module = importlib.import_module(f"core.{source}")
        if hasattr(module, name):
            return getattr(module, name)
    raise ValueError(f"no kernel {name!r}; the kernels are {', '.join(SIGNATURES)}")


def _try_build(folder: Path):
    """Build and load the kernels into `folder`; None where that fails (no compiler, read-only
    install, a numba without pycc)."""
    try:
        build(folder)
    except Exception:
        return None
    return load_built(folder)


def build_tag() -> str:
    """Hash of what the machine code depends on: kernel sources, this build recipe, numba, numpy, Python."""
    import numpy

    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(Path(__file__).with_name(f"{source}.py").read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(_numba_version().encode())
    digest.update(numpy.__version__.encode())
    digest.update(sys.version.encode())
    digest.update(_cpu_features().encode())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def _cpu_features() -> str:
    """The instruction sets of this machine's CPU as Linux lists them ('' where it cannot be read):
    a build for this CPU (see build) is tagged with them, so a copy of the checkout on another
    machine builds anew instead of running instructions its CPU may lack."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return line.strip()
    except OSError:
        pass
    return ""


def _numba_version() -> str:
    """numba's version without importing numba (0.3 s) nor importlib.metadata (~30 ms, every process):
    the text of the version file numba ships; the installed metadata where it has none."""
    spec = importlib.util.find_spec("numba")
    if spec is not None and spec.submodule_search_locations:
        try:
            return (Path(spec.submodule_search_locations[0]) / "_version.py").read_text("utf-8")
        except OSError:
            pass
    from importlib import metadata

    return metadata.version("numba")


def module_name() -> str:
    return f"_detlens_kernels_{build_tag()}"


def default_build_dir() -> Path:
    return Path(__file__).with_name("__pycache__")


def load_built(folder: Path):
    """The built module in `folder` for the current source and versions, else None."""
    name = module_name()
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.exists():
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except ImportError:
                return None  # built for another platform: fall back to the JIT
            return module
    return None


@contextmanager
def _releasing_gil():
    """Have pycc's Python wrappers release the GIL around the machine code, as the JIT's
    nogil=True does, so that core.evaluation's threads match images on every core. pycc has no
    option for it: its compile options are swapped for ones with release_gil set. A numba
    whose pycc differs builds without it (correct, one core)."""
    from numba.pycc import compiler

    original = getattr(compiler, "Flags", None)
    if original is None or "release_gil" not in getattr(original, "options", {}):
        yield
        return

    class Flags(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    compiler.Flags = Flags
    try:
        yield
    finally:
        compiler.Flags = original


@contextmanager
def _for_this_cpu(cc):
    """Compile for this machine's CPU, with the instruction sets it reports (as the JIT does),
    not pycc's generic x86-64: the CSV parser runs ~25% faster. Only where build_tag holds the
    CPU's instruction sets; a numba whose AOT code generator differs builds generic code."""
    from numba.core import codegen

    aot = getattr(codegen, "AOTCPUCodegen", None)
    if not _cpu_features() or aot is None or not hasattr(codegen, "get_host_cpu_features"):
        yield
        return
    original = aot._customize_tm_features
    aot._customize_tm_features = lambda self: codegen.get_host_cpu_features()
    cc.target_cpu = "host"
    try:
        yield
    finally:
        aot._customize_tm_features = original


def build(folder: Path) -> Path:
    """Compile the kernels ahead of time into `folder`; returns the extension's path."""
    with warnings.catch_warnings():  # pycc is "pending deprecation"; the JIT stays the fallback
        warnings.simplefilter("ignore")
        from numba.pycc import CC

    modules = [importlib.import_module(f"core.{source}") for source in SOURCES]

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:  # then one atomic rename
        cc = CC(module_name())
        cc.output_dir = scratch
        cc.verbose = False
        for function, signature in SIGNATURES.items():
            (module,) = [m for m in modules if hasattr(m, function)]
            cc.export(function, signature)(getattr(module, function).py_func)
        with _releasing_gil(), _for_this_cpu(cc):
            cc.compile()
        (built,) = Path(scratch).glob(f"{module_name()}*")
        target = folder / built.name
        os.replace(built, target)
    for stale in folder.glob("_detlens_kernels_*"):  # builds of older kernel sources
        if stale != target and stale.is_file():
            stale.unlink()
    return target


if __name__ == "__main__":
    try:
        print(f"built {build(default_build_dir())}")
    except Exception as exc:  # no compiler, no pycc in a future numba...: the JIT still serves
        print(f"could not build the kernels ahead of time ({type(exc).__name__}: {exc}); "
              "DetLens keeps using numba's JIT, which works, only starts slower")
        sys.exit(1)
