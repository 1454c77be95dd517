"""Plain Python reward functions (registered by plugins, or given inline) with the full reward contract."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable

from rewardkit.core.aio import run_sync
from rewardkit.core.errors import ConfigError
from rewardkit.rewards.base import Reward, RewardParams
from rewardkit.rewards.inputs import Reference

HINT = "def my_reward(completions, **kwargs): return [float(...) for c in completions]"


def _signature_problem(func: Callable) -> str | None:
    """Why TRL's keyword call `func(prompts=..., completions=..., <columns>=...)` cannot work, or None."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: the call itself will tell
        return None
    params = sig.parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return "does not accept **kwargs (TRL passes prompts, completion_ids and every dataset column)"
    required = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,)]
    if required:
        return f"has positional-only parameters {required}; TRL calls rewards by keyword"
    return None


def _name(func: Callable) -> str:
    """The name TRL would log for `func` (partials unwrapped, an instance's class name)."""
    target = func.func if isinstance(func, functools.partial) else func
    return getattr(target, "__name__", type(target).__name__)


def _is_async(func: Callable) -> bool:
    target = func.func if isinstance(func, functools.partial) else func
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))  # noqa: B004 (an instance's async __call__)


class FunctionReward(Reward):
    """A plain `func(completions, **kwargs) -> list[float | None]` given the full reward contract.

    Registering a function (not a Reward class) with `register_rewards`, or giving a callable (function,
    callable instance, functools.partial, async function) in a compose spec, wraps it in this class, so it gains
    chat-completion handling, views, None and `on_error` policies, `timeout` (when it pickles) and length checks.
    Its TRL-logged name is the spec's alias, else the function's name.

    Example:
    >>> from rewardkit.rewards.function_rewards import FunctionReward
    >>> def has_digit(completions, **kwargs):
    ...     return [float(any(ch.isdigit() for ch in c)) for c in completions]
    >>> FunctionReward(has_digit)(completions=[[{"role": "assistant", "content": "4"}], "four"])
    [1.0, 0.0]
    """

    name = "function"

    def __init__(self, func: Callable[..., list], params: RewardParams | None = None, /, **kwargs: object) -> None:
        if not callable(func) or isinstance(func, type):
            raise ConfigError(
                f"reward {func!r:.60}: expected a function or a callable instance, got "
                f"{'a class' if isinstance(func, type) else type(func).__name__}.",
                hint=HINT,
            )
        why = _signature_problem(func)
        if why is not None:
            raise ConfigError(f"reward {_name(func)!r}: {why}.", hint=HINT)
        self.func = func
        self._func_is_async = _is_async(func)
        default_name = _name(func)
        if params is None:
            kwargs.setdefault("name", default_name)
        elif params.name is None:
            params = params.model_copy(update={"name": default_name})
        super().__init__(params, **kwargs)

    @property
    def is_async(self) -> bool:
        """Whether the function is async: then `acall` awaits it and TRL gathers it with the other async rewards."""
        return self._func_is_async

    def score_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        result = self.func(completions=completions, **context)
        return run_sync(result) if inspect.isawaitable(result) else result

    async def ascore_batch(
        self, completions: list[str], references: list[Reference] | None, **context: Any
    ) -> list[float | None]:
        result = self.func(completions=completions, **context)
        return await result if inspect.isawaitable(result) else result


# --- `use: my_pkg.rewards:length_bonus` / `use: rewards.py:length_bonus` -------------------------------------------
def is_import_path(text: str) -> bool:
    """Whether `text` reads as `module.path:name` or `path/file.py:name` (compose asks the registry first: a
    plugin's qualified `dist:name` stays a registry name)."""
    left, sep, right = text.rpartition(":")
    if not (sep and left and right.isidentifier()):
        return False
    return left.endswith(".py") or "/" in left or "\\" in left or all(p.isidentifier() for p in left.split("."))


def _not_users(origin: str | None) -> bool:
    """Modules of the standard library and of installed packages are not the user's own modules."""
    if origin in (None, "built-in", "frozen"):
        return True
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    resolved = str(Path(origin).resolve())
    return any(resolved.startswith(str(Path(r).resolve()) + "/") for r in roots)


def import_callable(text: str, where: str) -> Callable:
    """The callable named by `module.path:name` or `path/to/file.py:name`, from the user's own modules only.

    Never evaluates text: a module is imported (the current directory first on the path), a file is loaded as a
    module, and the attribute must be a function or callable instance defined there. The standard library and
    installed packages are refused (a config naming `os:system` must not run it).
    """
    left, _, attr = text.rpartition(":")
    hint = (
        f"`use: my_module:my_function` (a .py module of yours importable from {Path.cwd()}) or "
        "`use: path/to/rewards.py:my_function`."
    )
    if left.endswith(".py") or "/" in left or "\\" in left:
        path = Path(left).expanduser()
        if not path.is_file():
            raise ConfigError(f"{where}: use {text!r}: no file {left!r}.", hint=hint)
        resolved = path.resolve()
        name = path.stem  # importable by name in a worker process too (its folder goes on sys.path)
        taken = sys.modules.get(name)
        if not name.isidentifier() or (taken is not None and getattr(taken, "__file__", None) != str(resolved)):
            name = f"rewardkit_user_{abs(hash(str(resolved)))}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, resolved)
            if spec is None or spec.loader is None:  # no loader for the suffix (e.g. rewards.txt)
                raise ConfigError(f"{where}: use {text!r}: {left!r} is not a Python module file.", hint=hint)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # pickling a function finds its module here
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[name]
                raise ConfigError(
                    f"{where}: use {text!r}: importing {left} failed: {type(exc).__name__}: {exc}.", hint=hint
                ) from None
            if str(resolved.parent) not in sys.path:
                sys.path.append(str(resolved.parent))
    else:
        cwd = str(Path.cwd())
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        try:
            found = importlib.util.find_spec(left)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ConfigError(f"{where}: use {text!r}: no module {left!r} (not a registered reward either).", hint=hint)
        if _not_users(found.origin):
            raise ConfigError(
                f"{where}: use {text!r}: {left!r} is part of Python or of an installed package, not "
                f"one of your modules; rewards are imported only from your own code.",
                hint=hint,
            )
        try:
            module = importlib.import_module(left)
        except Exception as exc:
            raise ConfigError(
                f"{where}: use {text!r}: importing {left!r} failed: {type(exc).__name__}: {exc}.", hint=hint
            ) from None
    func = getattr(module, attr, None)
    if func is None:
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ConfigError(f"{where}: use {text!r}: {left} has no {attr!r}.", hint=f"it defines {names[:10]}.")
    defined_in = (
        getattr(func.func if isinstance(func, functools.partial) else func, "__module__", None) or type(func).__module__
    )
    if defined_in != module.__name__ and not isinstance(func, functools.partial):
        raise ConfigError(
            f"{where}: use {text!r}: {attr!r} is imported into {left} from {defined_in}, not defined there.", hint=hint
        )
    return func
