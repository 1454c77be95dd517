"""The plugin registry: built-ins, plugins registered in-process, and entry-point plugins in subprocesses."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import model_validator

import rewardkit
from rewardkit import (
    AmbiguousNameError,
    ConfigError,
    UnknownNameError,
    compose,
    get_preset,
    get_reward,
    hookimpl,
)
from rewardkit.core import hookspecs, plugins
from rewardkit.core.plugins import get_registry, register_plugin, unregister_plugin
from rewardkit.core.registry import KIND_TABLE, KINDS, Entry, PresetEntry, Registry
from rewardkit.rewards.base import Reward


class Shout(Reward):
    """1.0 when the completion is upper case."""

    name = "exact_match"  # deliberately clashes with the built-in

    def score(self, completion, reference):
        return float(completion.isupper())


class FakePlugin:
    @hookimpl
    def register_rewards(self, register):
        register("exact_match", Shout)
        register("shout", Shout)

    @hookimpl
    def register_views(self, register):
        register("upper", lambda: str.upper)


@pytest.fixture
def fake_plugin():
    register_plugin(FakePlugin(), name="fake-plugin", source="fake-plugin")
    yield
    unregister_plugin("fake-plugin")


def test_builtins_register_through_hooks():
    registry = get_registry()
    for name in ("math_exact_match", "exact_match", "brevity", "format_regex"):
        assert registry.get("rewards", name).source == "rewardkit"
    assert {"full", "boxed", "last_number", "regex", "after", "before", "after_think"} <= set(registry.names("views"))


def test_in_process_plugin_and_conflicts(fake_plugin, capsys):
    assert get_reward("shout")(completions=["HI", "hi"]) == [1.0, 0.0]
    # a plugin reusing a built-in's name: the bare name stays the built-in's (configs using it keep working),
    # the plugin's is reachable qualified, and it is said once
    assert get_reward("exact_match")(completions=["a", "A"], answer=["a", "a"]) == [1.0, 0.0]
    assert compose({"em": {"use": "exact_match", "reference": "answer"}})(completions=["x"], answer=["x"]) == [1.0]
    get_registry()
    lines = [line for line in capsys.readouterr().err.splitlines() if "built-in name" in line]
    assert lines == [
        "rewardkit: plugin fake-plugin registers reward 'exact_match', a built-in name: 'exact_match' stays "
        "rewardkit's; use 'fake-plugin:exact_match' for the plugin's."
    ]
    assert get_reward("rewardkit:exact_match")(completions=["a"], answer=["a"]) == [1.0]
    assert get_reward("fake-plugin:exact_match")(completions=["A"]) == [1.0]
    assert get_registry().conflicts()["rewards"] == {
        "exact_match": ["rewardkit:exact_match", "fake-plugin:exact_match"]
    }


def test_plugin_view_is_usable(fake_plugin):
    reward = get_reward("rewardkit:exact_match", completion_view="upper")
    assert reward(completions=["abc"], answer=["ABC"]) == [1.0]


def test_unknown_names_list_available_and_hint():
    with pytest.raises(UnknownNameError, match=r"Unknown reward 'rouge'.*Available: .*brevity.*Hint: Install"):
        get_reward("rouge")
    with pytest.raises(UnknownNameError, match="Unknown reward 'nobody:exact_match'"):
        get_reward("nobody:exact_match")


def test_list_functions_describe_source_and_schema():
    rewards = {r["name"]: r for r in rewardkit.list_rewards()}
    entry = rewards["brevity"]
    assert entry["source"] == "rewardkit" and entry["version"] == rewardkit.__version__
    assert entry["summary"].startswith("Rewards short completions")
    assert "max_length" in entry["params"]["properties"]
    assert "max_length" in entry["params"]["required"]
    assert {v["name"] for v in rewardkit.list_views()} >= {"boxed", "after_think"}


def test_misspelled_hook_is_refused():
    class Misspelled:
        @hookimpl
        def register_reward(self, register):  # missing 's'
            pass

    with pytest.raises(Exception, match="register_reward"):
        register_plugin(Misspelled(), name="misspelled")
    assert "misspelled" not in [name for name, _ in rewardkit.core.plugins.active().pm.list_name_plugin()]


def test_raising_hook_is_isolated(capsys):
    class Raises:
        @hookimpl
        def register_rewards(self, register):
            raise RuntimeError("bad plugin")

    register_plugin(Raises(), name="raises", source="raises")
    try:
        registry = get_registry()
        assert any(f.name == "raises" and "bad plugin" in f.error for f in registry.failed)
        assert "rewardkit: plugin raises" in capsys.readouterr().err
        assert get_reward("brevity", max_length=3)(completions=["a"]) == [pytest.approx(2 / 3)]
    finally:
        unregister_plugin("raises")


# --- entry-point plugins, each run in a fresh interpreter ---------------------------------------------------

GOOD = '''
from rewardkit import hookimpl
from rewardkit.rewards.base import Reward

class Polite(Reward):
    """1.0 when the completion says please."""
    name = "polite"
    def score(self, completion, reference):
        return float("please" in completion)

@hookimpl
def register_rewards(register):
    register("polite", Polite)
    register("brevity", Polite)
'''


def make_dist(site: Path, dist: str, module: str, source: str, version: str = "1.0") -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[rewardkit]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "rk-good", "rk_good", GOOD)
    make_dist(site, "rk-broken", "rk_broken", "import does_not_exist_anywhere\n", version="0.3")
    return site


def _with(site: Path) -> str:
    """PYTHONPATH with `site` first, keeping the caller's (the rewardkit under test, e.g. a worktree's src)."""
    return os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)


def run_list(site: Path, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": _with(site), **env}
    return subprocess.run(
        [sys.executable, "-m", "rewardkit", "list", "--json"], capture_output=True, text=True, env=environ, timeout=120
    )


def test_entry_points_good_broken_and_duplicate(site):
    proc = run_list(site)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    names = {(r["name"], r["source"]) for r in data["rewards"]}
    assert ("polite", "rk-good") in names and ("math_exact_match", "rewardkit") in names
    assert data["failed_plugins"] == [
        {
            "name": "rk-broken",
            "version": "0.3",
            "error": "ModuleNotFoundError: No module named 'does_not_exist_anywhere'",
        }
    ]
    assert data["conflicts"]["rewards"] == {"brevity": ["rewardkit:brevity", "rk-good:brevity"]}
    stderr_lines = [line for line in proc.stderr.splitlines() if line.startswith("rewardkit: plugin")]
    assert stderr_lines == [
        "rewardkit: plugin rk-broken 0.3 failed to load: ModuleNotFoundError: No module named 'does_not_exist_anywhere'",
        "rewardkit: plugin rk-good registers reward 'brevity', a built-in name: 'brevity' stays rewardkit's; use "
        "'rk-good:brevity' for the plugin's.",
    ]


def test_load_plugins_env_filter(site):
    none = json.loads(run_list(site, REWARDKIT_LOAD_PLUGINS="").stdout)
    assert {r["source"] for r in none["rewards"]} == {"rewardkit"} and none["failed_plugins"] == []
    only = json.loads(run_list(site, REWARDKIT_LOAD_PLUGINS="rk-good").stdout)
    assert "polite" in {r["name"] for r in only["rewards"]} and only["failed_plugins"] == []


def test_strict_plugins_reraise(site):
    proc = run_list(site, REWARDKIT_STRICT_PLUGINS="1")
    assert proc.returncode != 0
    assert "does_not_exist_anywhere" in proc.stderr


def test_bare_name_of_a_conflict_between_plugins_fails_with_qualified_names():
    registry = Registry()
    for source in ("rk-a", "rk-b"):
        registry.add(Entry("rewards", "twice", Shout, source, "1"))
    with pytest.raises(AmbiguousNameError, match="rk-a:twice, rk-b:twice.*qualified"):
        registry.get("rewards", "twice")


def test_bare_name_a_plugin_reuses_stays_the_builtin(site):
    code = "import rewardkit\nprint(rewardkit.get_reward('brevity', max_length=3).__module__)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": _with(site), "REWARDKIT_LOAD_PLUGINS": "rk-good"},
    )
    assert proc.stdout.strip() == "rewardkit.rewards.length_rewards", proc.stderr
    assert proc.stderr.count("a built-in name: 'brevity' stays rewardkit's; use 'rk-good:brevity'") == 1


# --- plugin state as objects, the table of kinds, typed registrars, validation once ---------------------------


class TypedPlugin:
    """Registers through the typed registrars, several kinds from one hook."""

    @hookimpl
    def register_rewards(self, register):
        register.reward("shout", Shout)
        register.view("upper", Upper)
        register.preset("shouting", {"rewards": {"s": "shout"}}, summary="All caps.")


class Upper(rewardkit.View):
    """The text in capitals."""

    name = "upper"

    def __call__(self, text):
        return text.upper()


def own_plugins() -> "plugins.Plugins":
    """A plugin manager with the built-ins only (no entry points): a test's own registry."""
    return plugins.Plugins(entry_points=lambda: [])


def test_own_plugin_manager_is_isolated_from_the_default():
    with plugins.using(own_plugins()) as own:
        own.register(TypedPlugin(), name="typed", source="typed")
        assert plugins.get_registry() is own.registry()
        assert get_reward("shout", completion_view="upper")(completions=["hi"]) == [1.0]
        assert rewardkit.get_preset("shouting") == {"rewards": {"s": "shout"}}
    assert plugins.active() is plugins.DEFAULT
    with pytest.raises(UnknownNameError, match="Unknown reward 'shout'"):
        get_reward("shout")  # the default registry never saw the test's plugin


def test_presets_are_their_own_entry_type():
    with plugins.using(own_plugins()) as own:
        own.register(TypedPlugin(), name="typed", source="typed")
        entry = own.registry().get("presets", "shouting")
        assert isinstance(entry, PresetEntry) and entry.spec == entry.factory == {"rewards": {"s": "shout"}}
        assert [p["summary"] for p in rewardkit.list_presets() if p["name"] == "shouting"] == ["All caps."]


def test_every_hook_has_a_kind_and_every_kind_a_hook():
    hooks = {name.removeprefix("register_") for name in dir(hookspecs) if name.startswith("register_")}
    assert hooks == set(KIND_TABLE) == set(KINDS)
    assert [KIND_TABLE[k].name_key is None for k in KINDS].count(True) == 1  # presets are specs, never built


def test_a_built_object_failing_its_kinds_check_names_the_plugin():
    class NoTokenize:
        @hookimpl
        def register_tokenizers(self, register):
            register.tokenizer("broken", lambda: object())

    with plugins.using(own_plugins()) as own:
        own.register(NoTokenize(), name="no-tokenize", source="no-tokenize")
        with pytest.raises(
            rewardkit.ConfigError,
            match="tokenizer 'no-tokenize:broken' built .* which is not an "
            "object with tokenize.* Hint: fix the plugin no-tokenize",
        ):
            rewardkit.get_tokenizer("broken")


class Counted(Reward):
    """Counts how often its parameters are validated."""

    name = "counted"
    validations = 0

    class Params(rewardkit.RewardParams):
        @model_validator(mode="after")
        def _count(self):
            Counted.validations += 1
            return self

    def score(self, completion, reference):
        return 1.0


class OldStyle(Counted):
    """A plugin reward written before the builder handed over validated Params: keyword __init__."""

    name = "old_style"

    def __init__(self, **params):
        super().__init__(**params)
        self.extra = "set up"


class CountedPlugin:
    @hookimpl
    def register_rewards(self, register):
        register.reward("counted", Counted)
        register("old_style", OldStyle)  # the compatibility form: the hook's own kind


def test_parameters_are_validated_once():
    with plugins.using(own_plugins()) as own:
        own.register(CountedPlugin(), name="counted", source="counted")
        Counted.validations = 0
        reward = get_reward("counted", completion_view="boxed", name="c")
        assert Counted.validations == 1 and reward(completions=[r"\boxed{1}"]) == [1.0]
        assert reward.params.completion_view("\\boxed{7}") == "7"  # the validated Params holds the built view
        Counted.validations = 0
        Counted(name="direct")  # a Python caller: validated here, once
        assert Counted.validations == 1
        old = get_reward("old_style", name="o")  # validated by the builder and by its own constructor: it works
        assert old.extra == "set up" and old.__name__ == "o"


def test_a_direct_construction_with_a_view_spec_says_how_to_build_it():
    with pytest.raises(
        rewardkit.ConfigError,
        match=r"reward 'exact_match': completion_view: 'boxed' is a spec, "
        r"not a view\. Hint: .*rewardkit.get_view",
    ):
        rewardkit.ExactMatch(completion_view="boxed")
    with pytest.raises(
        rewardkit.ConfigError, match="expected one Params instance or keyword parameters, got Params and keywords"
    ):
        rewardkit.ExactMatch(Counted.Params(), name="x")


def test_view_and_tokenizer_bases_are_public_and_picklable():
    import pickle

    view = rewardkit.get_view("after", marker="A:")
    assert isinstance(view, rewardkit.View) and pickle.loads(pickle.dumps(view))("x A: y") == "y"
    tokenizer = rewardkit.get_tokenizer("unicode_words")
    assert isinstance(tokenizer, rewardkit.Tokenizer) and repr(tokenizer) == "UnicodeWords()"
    assert pickle.loads(pickle.dumps(tokenizer)).tokenize("A b") == ["a", "b"]


def test_type_checkers_see_every_export():
    """rewardkit's names load lazily (PEP 562); the TYPE_CHECKING imports must name exactly the same ones."""
    import ast

    tree = ast.parse(Path(rewardkit.__file__).read_text(encoding="utf-8"))
    static = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rewardkit.")
        for alias in node.names
    }
    assert static == set(rewardkit.__all__)
    assert {"View", "Tokenizer", "Reward"} <= static


@pytest.mark.parametrize(
    "kind, spec",
    [
        ("callbacks", {"name": "lora_save"}),
        ("rewards", {"use": "rouge1"}),
        ("views", {"view": "after", "marker": "A:"}),
        ("tokenizers", "chars"),
        ("generators", {"generator": "arithmetic", "ops": ["*"]}),
    ],
)
def test_the_builder_validates_each_object_once(kind, spec, monkeypatch):
    from rewardkit.core import builder, validation

    seen = []
    real = validation.validate

    def counting(model, data, owner, **kw):
        seen.append(model)
        return real(model, data, owner, **kw)

    monkeypatch.setattr(validation, "validate", counting)  # what Configured / callbacks use when given keywords
    monkeypatch.setattr(builder, "validate", counting)  # the builder's own
    rewardkit.build(kind, spec)
    # rouge1 builds its tokenizer spec ("auto") too: one validation per object, never two for the same one
    assert len(seen) == len(set(seen)) == (2 if kind == "rewards" else 1), seen


def test_names_registered_from_python_without_a_plugin():
    def loud(completions, **kwargs):
        """1.0 for a completion in capitals."""
        return [float(c.isupper()) for c in completions]

    with plugins.using(own_plugins()) as own:
        own.register_reward("loud", loud)
        own.register_view("upper", Upper)
        own.register_preset("loud_only", {"rewards": {"l": "loud"}}, summary="Capitals.")
        assert get_reward("loud", completion_view="upper")(completions=["a"]) == [1.0]
        assert rewardkit.compose("loud_only")(completions=["A", "b"]) == [1.0, 0.0]
        listed = {r["name"]: r for r in rewardkit.list_rewards()}
        assert (
            listed["loud"]["source"] == "__main__" and listed["loud"]["summary"] == "1.0 for a completion in capitals."
        )
        own.unregister("__main__:rewards:loud")
        with pytest.raises(UnknownNameError):
            get_reward("loud")


class LazyPlugin:
    @hookimpl
    def register_rewards(self, register):
        register("edge_lazy_brevity", "rewardkit.rewards.length_rewards:Brevity")  # no params=: the class has them

    @hookimpl
    def register_presets(self, register):
        register("edge_preset", {"rewards": {"em": {"use": "exact_match"}}})


@pytest.fixture
def lazy_plugin():
    register_plugin(LazyPlugin(), name="edge-lazy")
    yield
    unregister_plugin("edge-lazy")


def test_lazy_reward_without_params_is_validated_by_its_own_params(lazy_plugin):
    reward = get_reward("edge_lazy_brevity", max_length=10)
    assert reward(completions=["x" * 5]) == [0.5]
    with pytest.raises(ConfigError, match="max_lenght: unknown key. Did you mean 'max_length'"):
        get_reward("edge_lazy_brevity", max_lenght=10)


def test_preset_copies_are_deep(lazy_plugin):
    get_preset("edge_preset")["rewards"]["em"]["use"] = "changed"
    assert get_preset("edge_preset")["rewards"]["em"]["use"] == "exact_match"
