"""rewardkit's own rewards, views and callbacks, registered through the same hooks as any plugin."""

from __future__ import annotations

from . import views
from .hookspecs import hookimpl
from .rewards.format_rewards import FormatRegex
from .rewards.length_rewards import Brevity
from .rewards.math_rewards import MathExactMatch
from .rewards.text_rewards import ExactMatch


@hookimpl
def register_rewards(register):
    for reward in (MathExactMatch, ExactMatch, Brevity, FormatRegex):
        register(reward.name, reward)


@hookimpl
def register_views(register):
    register("full", views.Full)
    register("boxed", views.Boxed)
    register("last_number", views.LastNumber)
    register("regex", views.Regex)
    register("after", views.After)
    register("before", views.Before)
    register("after_think", views.AfterThink)
