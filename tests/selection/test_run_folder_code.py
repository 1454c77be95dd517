"""A run folder is data: `rewardkit select DIR` imports no code named in DIR/scores.json unless the user says so."""

from __future__ import annotations

import json

import pytest

from rewardkit import ConfigError
from rewardkit.selection.checkpoints import select
from tests.conftest import run_cli
from tests.selection.conftest import write_step_file

EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n\ndef f(completions, **kw):\n    return [1.0] * len(completions)\n"


def _received_run(tmp_path):
    """An inference folder as someone might send it: scores.json names a Python file shipped beside it."""
    folder = tmp_path / "run" / "inference"
    folder.parent.mkdir()
    write_step_file(folder, "step_1.json", step=1)
    marker = tmp_path / "marker"
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker)))
    spec = {"rewards": {"x": {"use": f"{folder / 'evil.py'}:f"}}}
    (folder / "scores.json").write_text(json.dumps({"spec": spec, "checkpoints": []}))
    return folder, marker


def test_select_never_imports_code_a_run_folder_names(tmp_path):
    folder, marker = _received_run(tmp_path)
    with pytest.raises(ConfigError, match=r"scores.json: rewards.x: use .*evil.py:f' names Python code.*--trust-run"):
        select(folder)
    assert not marker.exists()  # the file never ran
    result = run_cli("select", folder)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "--trust-run-code" in result.stderr
    assert not marker.exists()


def test_select_runs_run_folder_code_only_when_trusted_and_says_so(tmp_path):
    folder, marker = _received_run(tmp_path)
    result = run_cli("select", folder, "--trust-run-code", "--bootstrap", "0")
    assert result.returncode == 0, result.stderr
    assert marker.exists()
    assert "--trust-run-code: importing the code" in result.stderr and "evil.py" in result.stderr


def test_a_spec_the_user_passes_or_sets_is_theirs(tmp_path):
    folder, marker = _received_run(tmp_path)
    mine = tmp_path / "spec.json"
    mine.write_text(json.dumps({"rewards": {"x": {"use": "exact_match", "reference": "answer"}}}))
    assert select(folder, mine, bootstrap=0).best is not None
    assert select(folder, overrides=["x.use=exact_match", "x.reference=answer"], bootstrap=0).best is not None
    assert not marker.exists()


@pytest.mark.parametrize(
    "option, message",
    [
        (("--seed", "-1"), r"seed: -1 is not an integer from 0"),
        (("--bootstrap", "100000000"), r"bootstrap: 100000000 resamples is more than 100000"),
    ],
)
def test_select_bounds_are_one_line(tmp_path, option, message):
    folder = tmp_path / "inference"
    write_step_file(folder, "step_1.json", step=1)
    (folder / "scores.json").write_text(json.dumps({"spec": {"rewards": {"em": "exact_match"}}, "checkpoints": []}))
    result = run_cli("select", folder, *option, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert __import__("re").search(message, result.stderr), result.stderr


def test_select_sends_nothing_to_an_endpoint_a_run_folder_names(tmp_path, monkeypatch):
    """A received scores.json naming a judge at the sender's address with `api_key_env: OPENAI_API_KEY` made
    `select` send the user's key (and the eval rows) there: an endpoint named in a run folder is refused too."""
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("authorization"))
            self.send_response(500)
            self.end_headers()

        do_GET = do_POST  # the judge preflight's GET /models carries the key too

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        folder = tmp_path / "inference"
        write_step_file(folder, "step_1.json", step=1)
        judge = {"use": "judge", "base_url": f"http://127.0.0.1:{server.server_port}/v1", "model": "m"}
        judge |= {"api_key_env": "MY_KEY", "user_template": "{completion}", "score": {"min": 0, "max": 10}}
        (folder / "scores.json").write_text(json.dumps({"spec": {"rewards": {"j": judge}}, "checkpoints": []}))
        monkeypatch.setenv("MY_KEY", "sk-secret")
        with pytest.raises(ConfigError, match=r"scores.json: rewards.j: base_url 'http://127.0.0.1:\d+/v1' .*--spec"):
            select(folder, bootstrap=0)
    finally:
        server.shutdown()
    assert seen == []


def test_select_fetches_no_hub_model_a_run_folder_names(tmp_path, tiny_bert_dir):
    """A received scores.json naming a hub model made `select` contact the hub to fetch it (a DNS lookup was seen):
    a model id the run folder names must be in the local cache already (the user's own run scored with it)."""
    folder = tmp_path / "inference"
    write_step_file(folder, "step_1.json", step=1)
    spec = {"rewards": {"b": {"use": "bertscore", "model_type": "someorg/not-in-any-cache-5f3a"}}}
    (folder / "scores.json").write_text(json.dumps({"spec": spec, "checkpoints": []}))
    with pytest.raises(ConfigError, match=r"rewards.b.model_type 'someorg/not-in-any-cache-5f3a' is a hub model .*"):
        select(folder, bootstrap=0)
    result = run_cli("select", folder, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--trust-run-code" in result.stderr
    # a local model folder is the user's disk, and a model the user's own --set names is theirs
    local = {"rewards": {"b": {"use": "bertscore", "model_type": str(tiny_bert_dir), "num_layers": 1}}}
    (folder / "scores.json").write_text(json.dumps({"spec": local, "checkpoints": []}))
    assert select(folder, bootstrap=0).best is not None
