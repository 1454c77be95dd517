"""Data shared by the rewardkit-korean tests (a uniquely named module: conftest names clash across suites)."""

from __future__ import annotations

import json
from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = PLUGIN_ROOT / "src" / "rewardkit_korean" / "data" / "sample.jsonl"


def load_sample() -> list[dict]:
    """The shipped sample items, in competition format."""
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


# Reasons and their Mecab morphemes after the official preprocessing, written out by hand.
G_DOEYO = "'돼요'는 '되어요'가 줄어든 말이므로 '돼요'로 적는다."
G_DOEYO_M = ["돼요", "는", "되", "어요", "가", "줄어든", "말", "이", "므로", "돼요", "로", "적", "는다"]
P_DOEYO = "'돼요'는 '되어요'의 준말이다."
P_DOEYO_M = ["돼요", "는", "되", "어요", "의", "준말", "이", "다"]
G_SU = "'수'는 의존 명사이므로 앞말과 띄어 쓴다."
G_SU_M = ["수", "는", "의존", "명사", "이", "므로", "앞말", "과", "띄", "어", "쓴다"]
P_SU = "의존 명사 '수'는 띄어 쓴다."
P_SU_M = ["의존", "명사", "수", "는", "띄", "어", "쓴다"]
G_CAKE = "외래어 표기법에 따라 영어 cake는 '케이크'로 적는다."
G_CAKE_M = ["외래어", "표기법", "에", "따라", "영어", "cake", "는", "케이크", "로", "적", "는다"]
P_CAKE = "CAKE는 케이크로 적는다!"
P_CAKE_M = ["cake", "는", "케이크", "로", "적", "는다"]
G_AUX = "보조 용언은 띄어 씀을 원칙으로 하되, 경우에 따라 붙여 씀도 허용한다."
G_AUX_M = [
    "보조",
    "용언",
    "은",
    "띄",
    "어",
    "씀",
    "을",
    "원칙",
    "으로",
    "하",
    "되",
    "경우",
    "에",
    "따라",
    "붙여",
    "씀",
    "도",
    "허용",
    "한다",
]
P_AUX = "보조 용언은 붙여 써도 된다."
P_AUX_M = ["보조", "용언", "은", "붙여", "써도", "된다"]

PREDICTIONS = SAMPLE.with_name("sample_predictions.jsonl")


def load_predictions() -> list[dict]:
    """The shipped sample submission (varied quality), in competition format."""
    return [json.loads(line) for line in PREDICTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
