"""Shared helpers for the benchmark scripts: timing, Markdown tables, machine and version
reports, and the atomic rewrite of one script's section of ``docs/benchmarks.md``.

Each script in ``benchmarks/`` owns one section of the results file, delimited by
``<!-- BEGIN name -->`` and ``<!-- END name -->``; :func:`write_section` replaces that section
only and leaves the rest of the file as it was.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = [
    "REPO",
    "DEFAULT_OUT",
    "DOC_HEADER",
    "Timing",
    "time_call",
    "time_interleaved",
    "md_table",
    "fmt_ms",
    "fmt_ratio",
    "fmt_err",
    "load_average",
    "package_version",
    "cpu_model",
    "machine_report",
    "write_section",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"

DOC_HEADER = """\
# Benchmarks

The tables below are produced by the scripts in `benchmarks/`; do not edit them by hand.
`make bench` installs the `bench` extra and runs `benchmarks/run_all.py`, which runs every
benchmark script in that folder. Each script regenerates only its own section of this file
(between its `<!-- BEGIN name -->` and `<!-- END name -->` markers) and leaves the others
as they are, so one benchmark can be rerun on its own, e.g. `python benchmarks/radon.py`
(`--quick` for a short smoke run, `--out PATH` to write elsewhere). Every section says which
machine, library versions and thread counts produced its numbers.

GPU numbers are produced by `benchmarks/gpu.sh` on a lent GPU machine; none has been
measured yet, so every number below is from a CPU.
"""


# -- timing ------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Wall-clock times (seconds) of the repeated calls, after one untimed warm-up call."""

    times: list[float] = field(default_factory=list)
    warmup: float = float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def n(self) -> int:
        return len(self.times)


def time_call(
    fn: Callable[[], object],
    repeats: int = 7,
    budget_s: float = 20.0,
    min_repeats: int = 1,
    warmup: bool = True,
) -> Timing:
    """Median-ready timings of ``fn()``.

    One warm-up call (JIT compilation, plan caches, allocations) is made and not counted,
    then ``fn`` is called up to ``repeats`` times, stopping early once ``budget_s`` seconds
    have been spent on timed calls (but never before ``min_repeats`` calls).
    """
    out = Timing()
    if warmup:
        t0 = time.perf_counter()
        fn()
        out.warmup = time.perf_counter() - t0
    spent = 0.0
    for i in range(max(repeats, min_repeats)):
        if i >= min_repeats and spent >= budget_s:
            break
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        out.times.append(dt)
        spent += dt
    return out


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int = 7,
    budget_s: float = 20.0,
    min_repeats: int = 1,
    warmup: bool = True,
) -> tuple[dict[str, Timing], dict[str, object]]:
    """Time several callables in round-robin order, so that a change in machine load (other
    processes on the same cores) hits all of them alike rather than whichever ran then.

    Each callable gets one untimed warm-up call (its result is returned, e.g. to score
    accuracy), then up to ``repeats`` timed calls, one per round; a callable drops out of
    later rounds once it has spent ``budget_s`` seconds in timed calls (after at least
    ``min_repeats`` calls). Returns ``({name: Timing}, {name: warm-up result})``; with
    ``warmup=False`` the caller has already made the warm-up calls and the results are empty.
    """
    timings = {k: Timing() for k in fns}
    results = {}
    for k, fn in fns.items() if warmup else ():
        t0 = time.perf_counter()
        results[k] = fn()
        timings[k].warmup = time.perf_counter() - t0
    spent = dict.fromkeys(fns, 0.0)
    for i in range(max(repeats, min_repeats)):
        for k, fn in fns.items():
            if i >= min_repeats and spent[k] >= budget_s:
                continue
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            timings[k].times.append(dt)
            spent[k] += dt
    return timings, results


# -- formatting --------------------------------------------------------------------------------
def fmt_ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "n/a"
    ms = seconds * 1e3
    if ms >= 1000:
        return f"{ms:,.0f}"
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def fmt_ratio(r: float | None) -> str:
    if r is None or r != r:
        return "n/a"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def fmt_err(e: float | None) -> str:
    if e is None or e != e:
        return "n/a"
    return f"{e:.4f}"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]],
             align: Sequence[str] | None = None) -> str:  # fmt: skip
    """A GitHub Markdown table; ``align`` holds ``"l"`` or ``"r"`` per column."""
    headers = [str(h) for h in headers]
    align = list(align) if align is not None else ["l"] + ["r"] * (len(headers) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    for row in rows:
        cells = [str(c).replace("|", "\\|") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- machine and versions ----------------------------------------------------------------------
def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except (OSError, AttributeError):
        return "n/a"


def machine_report(packages: Sequence[str], machine: str | None = None,
                   extra: dict[str, str] | None = None) -> dict[str, str]:  # fmt: skip
    """Date, machine, CPU, thread counts and package versions as an ordered dict of strings."""
    import numba
    import torch

    gpu = "no GPU"
    if torch.cuda.is_available():
        gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    info = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine or f"{os.cpu_count()}-core machine, {gpu}",
        "CPU": f"{cpu_model()}, {os.cpu_count()} cores (os.cpu_count)",
        "GPU": gpu,
        "OS / Python": f"{platform.platform()} / Python {platform.python_version()}",
        "threads": (
            f"numba.get_num_threads() = {numba.get_num_threads()} "
            f"(layer {numba.threading_layer() if _numba_layer_known() else 'not yet chosen'}), "
            f"torch.get_num_threads() = {torch.get_num_threads()}"
        ),
        "versions": ", ".join(f"{p} {package_version(p)}" for p in packages),
    }
    if extra:
        info.update(extra)
    return info


def _numba_layer_known() -> bool:
    import numba

    try:
        numba.threading_layer()
        return True
    except ValueError:  # no parallel kernel has run yet
        return False


# -- results file ------------------------------------------------------------------------------
@contextmanager
def _folder_lock(folder: Path):
    """Serialise read-modify-write of files in ``folder`` between benchmark processes."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_section(name: str, body: str, out: Path | str = DEFAULT_OUT,
                  header: str = DOC_HEADER) -> Path:  # fmt: skip
    """Replace the ``name`` section of ``out`` with ``body`` (atomically).

    The file is created with ``header`` when missing; a missing section is appended; text
    outside the section is kept byte for byte. The new file is written to a temporary file in
    the same folder and moved over the old one with :func:`os.replace`.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    with _folder_lock(out.parent):
        old = out.read_text(encoding="utf-8") if out.exists() else header.rstrip() + "\n"
        i, j = old.find(begin), old.find(end)
        if i >= 0 and j > i:
            new = old[:i] + block + old[j + len(end) :]
        elif i >= 0 or j >= 0:
            raise ValueError(f"{out}: unbalanced markers for section {name!r}; fix by hand")
        else:
            new = old.rstrip() + "\n\n" + block + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new)
            if out.exists():
                os.chmod(tmp, os.stat(out).st_mode & 0o777)
            else:
                os.chmod(tmp, 0o644)
            os.replace(tmp, out)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return out
