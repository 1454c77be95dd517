"""The built-in views: which part of a text a reward scores (`rewardkit.text.views`)."""

from __future__ import annotations

from rewardkit.core.hookspecs import Register, hookimpl
from rewardkit.text.views import After, AfterThink, Before, Boxed, Full, LastNumber, Regex


@hookimpl
def register_views(register: Register) -> None:
    for view in (Full, Boxed, LastNumber, Regex, After, Before, AfterThink):
        register.view(view.name, view)
