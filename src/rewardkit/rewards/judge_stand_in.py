"""The judge's offline stand-in for `rewardkit train --smoke`: a reply made from the request itself, no server.

A smoke run checks a config end to end offline; a judge server is neither there nor wanted. The stand-in gives
each request a reply of the shape the judge's parser reads (a score on its scale, one of its choices, its JSON
field, or a first-token log-probability), chosen by a hash of the request: the same rows always score the
same, different rows differ, and the reply goes through the same parser a real one does. It is not a
judgement; nothing is sent and nothing is cached.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rewardkit.rewards.judge_parse import ReplyParser

_STEPS = 10  # a score range is cut into this many steps: the stand-in's scores are min, min + 1/10 span, ..., max


def stand_in_reply(parser: ReplyParser, request: dict[str, Any]) -> dict[str, Any]:
    """The reply to `request` (chat-completions keywords), from a hash of the request (not of the endpoint).

    >>> parser = ReplyParser(score_range=(0, 10))
    >>> reply = stand_in_reply(parser, {"model": "m", "messages": [{"role": "user", "content": "2+2? 4"}]})
    >>> reply["text"], parser.parse(reply["text"])
    ('Score: 1', 0.1)
    >>> stand_in_reply(ReplyParser(choices={"A": 1.0, "B": 0.0}), {"messages": []})["text"]
    'A'
    """
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    pick = int(digest[:8], 16)
    label: str | float
    if parser.logprobs or parser.choices is not None:
        labels = list(parser.labels())
        label = labels[pick % len(labels)]
    else:
        assert parser.score_range is not None
        low, high = parser.score_range
        label = round(low + (high - low) * (pick % (_STEPS + 1)) / _STEPS, 6)
        label = int(label) if label == int(label) else label
    if parser.json_field is not None:
        text = json.dumps({parser.json_field: label})
    elif parser.choices is not None or parser.logprobs:
        text = str(label)
    else:
        text = f"Score: {label}"
    positions = [[[str(label), 0.0]]] if parser.logprobs else None
    return {"text": text, "positions": positions, "usage": {"prompt_tokens": 0, "completion_tokens": 0}}
