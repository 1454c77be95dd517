"""What the whole suite shares: the offline environment, tiny local models, running the CLI, the bad-input tables
and the property-test settings. Helpers that are not fixtures are imported: `from tests.conftest import run_cli`."""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from rewardkit import (
    RewardkitError,
    get_reward,
)
from rewardkit.core import plugins
from rewardkit.core.plugins import get_registry

# Set before anything imports transformers/huggingface_hub, which read these at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("DISABLE_MLFLOW_INTEGRATION", "TRUE")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine torch's spinning OpenMP threads
# made the trainer tests ~5x slower (measured: 10 s vs 1.2 s for a GRPO test). Env var works if torch is not
# imported yet; otherwise set it directly.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
# bitsandbytes logs a harmless "Failed to load CPU gemm_4bit_forward" warning on import (no `kernels` package).
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

# Tests live one folder a layer below this one; these name the suite's own files (scripts/, fixtures/) and the
# repository wherever a test module sits. Test modules import them: `from tests.conftest import TESTS`.
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# Keyword arguments every TRL config in tests should start from: CPU, fp32, no reporting, no saving.
TRAINER_DEFAULTS = dict(
    report_to="none",
    use_cpu=True,
    bf16=False,  # TRL configs default bf16=True when fp16 is unset
    fp16=False,
    activation_checkpointing=False,  # TRL defaults gradient checkpointing on; it only slows tiny models
    save_strategy="no",
    logging_steps=1,
    disable_tqdm=True,
    dataloader_num_workers=0,
    seed=0,
)


@pytest.fixture(scope="session")
def trainer_defaults() -> dict:
    """Return a fresh copy of the common TRL config kwargs for CPU tests."""
    return dict(TRAINER_DEFAULTS)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a saved tiny Qwen2 causal LM + char tokenizer (loadable with Auto* classes)."""
    from rewardkit.core.tiny import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a saved tiny BERT usable as bert_score `model_type=str(path), num_layers=2`."""
    from rewardkit.core.tiny import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


# --- bad-input tables: a row is (id, what to run, what to expect); each test module holds the rows of its module -----
NAN = float("nan")
INF = float("inf")


def accelerate_two_processes(*target: str) -> list[str]:
    """`accelerate launch` of `target` as two CPU processes on a free rendezvous port (a fixed one collides with
    another launch on the machine). --multi_gpu goes through torchrun, which uses gloo on CPU; --cpu would run one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), *target,
    ]  # fmt: skip


@dataclass
class Ctx:
    """What a row's `run` gets: its temp folder, monkeypatch, capsys, and cleanups run when the row ends."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture
    cleanups: list

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path

    def mkdir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir()
        return path

    def plugins(self, entry_points: Any = None) -> plugins.Plugins:
        """This row's own plugin manager (built-ins and the given entry points), active until the row ends."""
        own = plugins.Plugins(entry_points=entry_points)
        context = plugins.using(own)
        context.__enter__()
        self.cleanups.append(lambda: context.__exit__(None, None, None))
        return own

    def plugin(self, obj: Any, name: str) -> None:
        own = plugins.active()
        if own is plugins.DEFAULT:
            own = self.plugins()
        if not own.pm.has_plugin(name):
            own.register(obj, name=name, source=name)

    def entry_points(self, modules: dict[str, str]) -> None:
        """Plugins found through entry points: {distribution: module source}; a fresh plugin manager."""
        eps = []
        for dist, source in modules.items():
            module = dist.replace("-", "_")
            self.write(f"{module}.py", source)
            self.cleanups.append(lambda m=module: sys.modules.pop(m, None))
            eps.append(
                SimpleNamespace(
                    name=module,
                    module=module,
                    dist=SimpleNamespace(name=dist),
                    load=lambda m=module: importlib.import_module(m),
                )
            )
        self.monkeypatch.syspath_prepend(str(self.tmp))
        self.plugins(entry_points=lambda: eps)


@dataclass(frozen=True)
class Row:
    id: str
    run: Callable[[Ctx], Any]
    expect: Callable[[Callable[[], Any]], None]


def raises(exc: type[BaseException], match: str) -> Callable:
    def check(call):
        with pytest.raises(exc, match=match) as info:
            call()
        if isinstance(info.value, RewardkitError):  # the CLI prints it as one line
            assert "\n" not in str(info.value), str(info.value)

    return check


def returns(expected: Any) -> Callable:
    def check(call):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a documented value comes without a warning
            assert call() == expected

    return check


def warns(match: str, expected: Any) -> Callable:
    def check(call):
        with pytest.warns(RuntimeWarning, match=match):
            assert call() == expected

    return check


def fast(seconds: float, inner: Callable) -> Callable:
    def check(call):
        start = time.perf_counter()
        inner(call)
        assert time.perf_counter() - start < seconds

    return check


def em(**columns) -> Callable[[Ctx], Any]:
    return lambda c: get_reward("exact_match")(**columns)


def rewards_spec(rewards: dict, **top) -> dict:
    return {"rewards": rewards, **top}


BREVITY = {"use": "brevity", "max_length": 10}


def row_ids(rows: list[Row]) -> list[str]:
    """The rows' ids for pytest, each one once: a repeated id would make two rows hard to tell apart."""
    ids = [row.id for row in rows]
    assert len(ids) == len(set(ids)), f"repeated row ids: {sorted({i for i in ids if ids.count(i) > 1})}"
    return ids


@contextmanager
def row_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Iterator[Ctx]:
    """A Ctx whose cleanups (plugin managers, imported modules) run in reverse when the block ends."""
    ctx = Ctx(tmp_path, monkeypatch, capsys, [])
    try:
        yield ctx
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()


def run_row(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Run one row of a bad-input table: its call under its expectation, then its cleanups."""
    with row_context(tmp_path, monkeypatch, capsys) as ctx:
        row.expect(lambda: row.run(ctx))


# --- the `rewardkit` command in a subprocess, and a folder to score ------------------------------------------------
SCORE_SPEC = "rewards:\n  em: {use: exact_match, reference: answer}\n"
SCORE_ROWS = '{"completion": "1", "answer": "1"}\n{"completion": "2", "answer": "1"}\n'


def run_cli(*args, cwd=None, env=None, stdout=subprocess.PIPE, timeout=60):
    """Run the real CLI in a subprocess (`python -m rewardkit`: no torch import, ~1 s), stderr captured."""
    return subprocess.run(
        [sys.executable, "-m", "rewardkit", *map(str, args)],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def run_cli_here(*args: Any, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in this process (`rewardkit.cli.main.main`, which restores what it changes), with its stdout,
    stderr and exit code as `run_cli` gives them. For a command that imports torch/TRL: a subprocess spends 5-10 s
    importing them before it does anything. Keep run_cli where the test is about the process itself (a signal,
    a fresh interpreter's imports, its exit)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout
    from unittest import mock

    from rewardkit.cli import main as cli

    argv = ["rewardkit", *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "argv", argv), mock.patch.dict(os.environ, env or {}):
        with redirect_stdout(out), redirect_stderr(err):
            try:
                cli.main()
                code: Any = 0
            except SystemExit as done:
                code = done.code
    code = 0 if code is None else code if isinstance(code, int) else 1  # sys.exit("text") exits 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@dataclass
class Served:
    """A `rewardkit serve` process started by `rewardkit_serve`: its URL, and its output once stopped."""

    process: subprocess.Popen
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig`, wait for the exit; the exit code (killed after `timeout`)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        """Everything the server printed (stdout and stderr)."""
        return self.log.read_text(errors="replace")


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (one the OS just handed out and took back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def rewardkit_serve(spec: Any, *args: str, log: Path, env: dict | None = None, ready: float = 120) -> Iterator[Served]:
    """A real `rewardkit serve SPEC --port 0 ARGS` process on 127.0.0.1, ready (GET /health answered) when yielded,
    stopped at the end."""
    import urllib.request

    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rewardkit", "serve", str(spec), "--port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    served = Served(process, "", log)
    try:
        deadline = time.monotonic() + ready
        while time.monotonic() < deadline and process.poll() is None:
            found = [w for w in log.read_text(errors="replace").split() if w.startswith("http://127.0.0.1:")]
            if found:
                served.url = found[0]
                try:
                    with urllib.request.urlopen(served.url + "/health", timeout=5):
                        break
                except OSError:
                    pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"rewardkit serve did not start: {served.output()[-2000:]}")
        yield served
    finally:
        served.stop()


@pytest.fixture
def scoring(tmp_path) -> Path:
    (tmp_path / "spec.yaml").write_text(SCORE_SPEC)
    (tmp_path / "rows.jsonl").write_text(SCORE_ROWS)
    return tmp_path


# --- property tests (hypothesis) ---------------------------------------------------------------------------------
# Every example must finish fast (a deadline, sizes bounded by the strategies) and either succeed or raise a
# rewardkit error (a `RewardkitError` subclass) - never a raw ValueError, RecursionError, OverflowError, TypeError
# or a YAML/JSON/TOML library exception.
MATHY_TEXT = st.text(alphabet=st.sampled_from(list("0123456789-+.,/ eE$#{}\\boxedfrac ab\u2212")), max_size=60)
ANY_TEXT = st.one_of(st.text(max_size=80), MATHY_TEXT)
FUZZ_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# The spec, expression and view-chain fuzzers run in well under 20 s on a busy 2-core machine; each example must
# finish within the deadline.
FUZZ_DEADLINE = timedelta(seconds=2)
FUZZ_FAST = settings(max_examples=150, deadline=FUZZ_DEADLINE, suppress_health_check=[HealthCheck.too_slow])


def only_rewardkit_errors(call):
    """call(); a RewardkitError is a fine answer, anything else fails the example."""
    try:
        return call()
    except RewardkitError:
        return None


def warm_up_before_deadlines() -> None:
    """Load the plugins and the ROUGE scorer once, outside the per-example deadline of FUZZ_FAST."""
    get_registry()
    get_reward("rouge1")(completions=["a"], answer=["a"])


# --- run locks: a live holder in another process, a stale lock file ----------------------------------------------
_HOLD = (
    "import sys, time; from pathlib import Path; from rewardkit.train.run_lock import locked\n"
    "with locked(Path(sys.argv[1]), print):\n    print('held', flush=True); time.sleep(120)\n"
)


@contextmanager
def holding_lock(folder: Path) -> Iterator[subprocess.Popen]:
    """A live process holding `folder`'s run lock (as a running `rewardkit train` does) for the block."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def stale_lock(folder: Path, pid: int) -> None:
    """The lock file a killed run leaves: it names `pid`, but no process holds the lock."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".rewardkit-train.lock").write_text(
        json.dumps({"pid": pid, "host": socket.gethostname(), "started": "then"})
    )


def default_sigint() -> None:
    """preexec_fn for a child that must see Ctrl-C: a shell without job control starts background jobs with SIGINT
    ignored and children inherit that, so a test must not depend on how pytest itself was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
