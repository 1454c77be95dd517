"""Before anything heavy: one cheap request to each judge's server, so a judge that cannot answer is one line now.

Without it, an unreachable `base_url` (nothing listening, a wrong path, a refused key, a model the server does
not serve) is found at the first reward call: in `rewardkit train`, after the model loaded and the first
generation ran. `GET {base_url}/models` is what every OpenAI-compatible server answers (vLLM, SGLang, llama.cpp,
hosted APIs); it is sent with the judge's own client and key, to the judge's own `base_url` only, and costs no
tokens. A judge that `--smoke` put offline (`offline_stand_in`) sends nothing and is not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rewardkit.core.errors import ConfigError
from rewardkit.rewards.base import Reward
from rewardkit.rewards.judge_requests import read_api_key
from rewardkit.rewards.judge_rewards import Judge

PREFLIGHT_TIMEOUT = 5.0  # seconds for the whole GET: a server that is up answers /models in milliseconds
_SHOWN = 8  # model names listed when the judge's model is not among them


def judges_in(rewards: Iterable[Any]) -> Iterator[tuple[str, Judge]]:
    """(alias, judge) of every `Judge` among the rewards, inside composed rewards and nested rewards too."""
    seen: set[int] = set()

    def walk(alias: str, obj: Any, depth: int) -> Iterator[tuple[str, Judge]]:
        if id(obj) in seen or depth > 8:
            return
        seen.add(id(obj))
        if isinstance(obj, Judge):
            yield alias, obj
            return
        components = getattr(obj, "components", None)  # a Composed (a layer above: read by its shape)
        if isinstance(components, dict):
            for name, part in components.items():
                yield from walk(str(name), part, depth + 1)
        elif isinstance(obj, Reward):  # a reward holding another one (cosine_length's correctness)
            for part in vars(obj).values():
                if isinstance(part, Reward) or isinstance(getattr(part, "components", None), dict):
                    yield from walk(getattr(part, "__name__", alias), part, depth + 1)

    for reward in rewards:
        yield from walk(str(getattr(reward, "__name__", "judge")), reward, 0)


def check_judges(rewards: Iterable[Any], where: str) -> None:
    """Raise one ConfigError for the first judge among `rewards` whose server does not answer as it must."""
    done: set[tuple[str, str | None, str]] = set()
    for alias, judge in judges_in(rewards):
        p = judge.params
        key = (p.base_url, p.api_key_env, p.model)
        if p.offline_stand_in or key in done:
            continue
        check_judge(alias, judge, where)
        done.add(key)


def check_judge(alias: str, judge: Judge, where: str, timeout: float = PREFLIGHT_TIMEOUT) -> None:
    """GET `{base_url}/models` with the judge's key: the server answers, accepts the key and serves the model."""
    import openai

    p = judge.params
    owner = f"{where}: reward {alias!r}"
    api_key = read_api_key(p.api_key_env, owner)
    url = f"{p.base_url.rstrip('/')}/models"
    start = f"start the judge server (an OpenAI-compatible one, e.g. `vllm serve MODEL`), or fix {alias}.base_url"
    root = f"{alias}.base_url must be the API root that /chat/completions and /models hang off (it usually ends in /v1)"
    if p.api_key_env is not None:
        key_fix = f"put a key the server accepts in ${p.api_key_env}"
    else:
        key_fix = f"set {alias}.api_key_env to the environment variable that holds the server's API key"
    client = openai.OpenAI(base_url=p.base_url, api_key=api_key, max_retries=0, timeout=timeout)
    try:
        served = [str(m.id) for m in client.models.list().data]
    except openai.APITimeoutError:
        raise ConfigError(
            f"{owner}: GET {url} got no answer within {timeout:g} s.",
            hint=f"check that the judge server has finished starting and is not overloaded, or fix {alias}.base_url.",
        ) from None
    except openai.APIConnectionError as exc:
        cause = " ".join(str(exc.__cause__ or exc).split())[:200]
        raise ConfigError(f"{owner}: cannot reach the judge server at {url} ({cause}).", hint=f"{start}.") from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise ConfigError(
            f"{owner}: {p.base_url} refused the API key (HTTP {exc.status_code} on GET {url}).", hint=f"{key_fix}."
        ) from None
    except openai.NotFoundError:
        raise ConfigError(f"{owner}: GET {url} answered HTTP 404: no API at this path.", hint=f"{root}.") from None
    except openai.RateLimitError:
        return  # up, and the key is known: the judge's own retries handle the rate
    except openai.APIStatusError as exc:
        raise ConfigError(
            f"{owner}: GET {url} answered HTTP {exc.status_code}.", hint=f"check the judge server's log, or {root}."
        ) from None
    except Exception as exc:  # an answer that is not an OpenAI model list: some other server at that address
        raise ConfigError(
            f"{owner}: GET {url} did not answer like an OpenAI-compatible server ({type(exc).__name__}).",
            hint=f"{root}.",
        ) from None
    finally:
        client.close()
    if served and p.model not in served:  # a server that lists no models (some proxies) is not second-guessed
        listed = ", ".join(repr(m) for m in served[:_SHOWN]) + (", ..." if len(served) > _SHOWN else "")
        raise ConfigError(
            f"{owner}: model {p.model!r} is not served at {p.base_url} (it serves {listed}).",
            hint=f"set {alias}.model to one of them (--set {alias}.model=NAME).",
        )


__all__ = ["PREFLIGHT_TIMEOUT", "check_judge", "check_judges", "judges_in"]
