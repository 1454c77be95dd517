"""`use: my_pkg.rewards:f` / `use: path/to/rewards.py:f`: a reward function from the user's own code.

Rules (each one a defect found by an attack on the import):
- Only the user's own code is imported: a file or module of the standard library or of an installed package is
  refused, and refused before any of its code runs (`use: .../this.py:x` must not print the Zen of Python).
- A file is imported under a private module name (`_rewardkit_use_<hash>`), never under its stem: a user's
  `code.py` must not become `sys.modules['code']` and hide the standard library's module.
- `sys.path` is left exactly as it was: the module form looks in the current folder only while it imports (a
  project's unrelated `peft.py` must not be imported by TRL later in the process).
- A reward built from a `use:` travels to a worker process (`timeout:`) as its `use:` text and is imported
  again there, under the same rules (the private name cannot be imported by name).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import site
import sys
import sysconfig
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from rewardkit.core.errors import ConfigError
from rewardkit.rewards.base import RewardParams
from rewardkit.rewards.function_rewards import FunctionReward

PRIVATE_PREFIX = "_rewardkit_use_"
# sys.path and sys.modules are process-wide: one import at a time, so 8 threads composing at once neither run a
# file twice nor restore each other's sys.path.
_IMPORT_LOCK = threading.RLock()


def is_import_path(text: str) -> bool:
    """Whether `text` reads as `module.path:name` or `path/file.py:name` (compose asks the registry first: a
    plugin's qualified `dist:name` stays a registry name)."""
    left, sep, right = text.rpartition(":")
    if not (sep and left and right.isidentifier()):
        return False
    return is_file_form(left) or all(p.isidentifier() for p in left.split("."))


def is_file_form(left: str) -> bool:
    """Whether the part before ':' names a file rather than a module."""
    return left.endswith(".py") or "/" in left or "\\" in left


def _system_roots() -> list[Path]:
    """Folders holding Python's own and installed code (rewardkit's own package included, editable or not)."""
    paths = sysconfig.get_paths()
    roots = [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths]
    try:
        roots += site.getsitepackages()
    except AttributeError:  # some virtualenv versions' site module lacks it
        pass
    roots.append(site.getusersitepackages())
    roots.append(str(Path(__file__).resolve().parents[1]))  # rewardkit itself, also when installed editable
    return [Path(r).resolve() for r in roots]


def not_users(origin: str | None) -> bool:
    """Whether a module file belongs to the standard library or an installed package (not the user's code)."""
    if origin in (None, "built-in", "frozen", "namespace"):
        return True
    resolved = Path(origin).resolve()
    return any(resolved == root or root in resolved.parents for root in _system_roots())


def _hint() -> str:
    return (
        f"`use: my_module:my_function` (a .py module of yours importable from {Path.cwd()}) or "
        "`use: path/to/rewards.py:my_function`."
    )


@contextmanager
def _path_kept(extra: str, first: bool) -> Iterator[None]:
    """`extra` on sys.path while the block runs; afterwards sys.path is exactly what it was."""
    saved = list(sys.path)
    if first:
        sys.path.insert(0, extra)
    else:
        sys.path.append(extra)
    try:
        yield
    finally:
        sys.path[:] = saved


@dataclass(frozen=True)
class UserCallable:
    """Where a `use:` callable lives: a file (absolute path) or a module looked up from `folder`."""

    text: str  # the `use:` text as written
    target: str  # the resolved file, or the module name
    attr: str
    folder: str  # the module form's search folder (the current folder when it was resolved)
    is_file: bool

    @classmethod
    def resolve(cls, text: str, where: str) -> UserCallable:
        """Check `text` names the user's own code (nothing is imported yet); ConfigError otherwise."""
        left, _, attr = text.rpartition(":")
        if is_file_form(left):
            path = Path(left).expanduser()
            if not path.is_file():
                raise ConfigError(f"{where}: use {text!r}: no file {left!r}.", hint=_hint())
            resolved = path.resolve()
            if importlib.util.spec_from_file_location("_rewardkit_probe", resolved) is None:
                raise ConfigError(f"{where}: use {text!r}: {left!r} is not a Python module file.", hint=_hint())
            if not_users(str(resolved)):
                raise ConfigError(
                    f"{where}: use {text!r}: {resolved} is part of Python or of an installed package, not one of "
                    "your files; rewards are imported only from your own code (the file was not run).",
                    hint=_hint(),
                )
            return cls(text, str(resolved), attr, str(resolved.parent), True)
        folder = str(Path.cwd())
        top = left.split(".")[0]
        shadowed = top in sys.stdlib_module_names or top in sys.builtin_module_names
        if not shadowed:
            with _IMPORT_LOCK, _path_kept(folder, first=True):
                found = _find(top)
            if found is None:
                raise ConfigError(
                    f"{where}: use {text!r}: no module {left!r} (not a registered reward either).", hint=_hint()
                )
            locations = list(found.submodule_search_locations or [])
            shadowed = not_users(found.origin if found.has_location else (locations[0] if locations else None))
        if shadowed:
            raise ConfigError(
                f"{where}: use {text!r}: {top!r} is part of Python or of an installed package, not one of your "
                "modules; rewards are imported only from your own code.",
                hint=f"{_hint()[:-1]} (a file of yours named like a standard module: give its path).",
            )
        return cls(text, left, attr, folder, False)

    def load(self, where: str) -> Callable:
        """Import the module (the file under its private name) and return the callable defined there."""
        with _IMPORT_LOCK:
            module = self._load_file(where) if self.is_file else self._load_module(where)
        return _defined_in(module, self, where)

    def _load_file(self, where: str) -> Any:
        name = PRIVATE_PREFIX + hashlib.sha256(self.target.encode()).hexdigest()[:16]
        module = sys.modules.get(name)
        if module is not None:
            return module
        spec = importlib.util.spec_from_file_location(name, self.target)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{where}: use {self.text!r}: {self.target!r} is not a Python module file.", hint=_hint())
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its classes and functions pickle by reference while it lives here
        try:
            with _path_kept(self.folder, first=False):  # sibling imports work; nothing of Python's is shadowed
                spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ConfigError(
                f"{where}: use {self.text!r}: importing {self.target} failed: {type(exc).__name__}: {exc}.",
                hint=_hint(),
            ) from None
        return module

    def _load_module(self, where: str) -> Any:
        left = self.target
        try:
            with _path_kept(self.folder, first=True):
                if _find(left) is None:
                    raise ConfigError(
                        f"{where}: use {self.text!r}: no module {left!r} (not a registered reward either).",
                        hint=_hint(),
                    )
                module = importlib.import_module(left)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"{where}: use {self.text!r}: importing {left!r} failed: {type(exc).__name__}: {exc}.", hint=_hint()
            ) from None
        origin = getattr(module, "__file__", None)
        if origin is not None and not_users(origin):
            raise ConfigError(
                f"{where}: use {self.text!r}: {left!r} is part of Python or of an installed package, not one of "
                "your modules; rewards are imported only from your own code.",
                hint=_hint(),
            )
        return module


def _find(name: str) -> Any:
    """importlib's spec for `name`, or None (a parent package that fails to import reads as 'no module')."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _defined_in(module: Any, source: UserCallable, where: str) -> Callable:
    """The attribute, which must be defined in the module (not imported into it from elsewhere)."""
    text, attr, left = source.text, source.attr, source.text.rpartition(":")[0]
    func = getattr(module, attr, None)
    if func is None:
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ConfigError(f"{where}: use {text!r}: {left} has no {attr!r}.", hint=f"it defines {names[:10]}.")
    target = func.func if isinstance(func, functools.partial) else func
    defined_in = getattr(target, "__module__", None) or type(func).__module__
    if defined_in != module.__name__ and not isinstance(func, functools.partial):
        raise ConfigError(
            f"{where}: use {text!r}: {attr!r} is imported into {left} from {defined_in}, not defined there.",
            hint=_hint(),
        )
    return func


def import_callable(text: str, where: str) -> Callable:
    """The callable named by `module.path:name` or `path/to/file.py:name`, from the user's own code only."""
    return UserCallable.resolve(text, where).load(where)


class ImportedFunctionReward(FunctionReward):
    """A FunctionReward built from a `use:` text; it pickles as that text and is imported again on unpickling.

    Args:
        source: where the callable lives (`UserCallable.resolve`).
        params: the validated RewardParams (or keywords, as for any reward).

    Example:
    >>> import pickle, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "rw.py").write_text("def one(completions, **kw):\\n    return [1.0] * len(completions)\\n")
    >>> r = ImportedFunctionReward(UserCallable.resolve(f"{folder}/rw.py:one", "doc"))
    >>> pickle.loads(pickle.dumps(r))(completions=["a", "b"])
    [1.0, 1.0]
    """

    def __init__(self, source: UserCallable, params: RewardParams | None = None, /, **kwargs: object) -> None:
        self.source = source
        super().__init__(source.load(source.text), params, **kwargs)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["func"] = None  # a private module cannot be imported by name elsewhere: the text travels
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.func = self.source.load(f"reward {self.__name__!r}")
