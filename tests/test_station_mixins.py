"""A version's charge point is a station and its version's mixins in one class: a method that one
of them defines and another defines again must mean the same thing there, or one silently
hides the other (an ``_installed()`` of charging profiles once hid the certificate store's
``_installed(kind)``, and every certificate command failed)."""

from __future__ import annotations

import inspect

import pytest

from swarm.engine import STATIONS


def _parameters(member: object) -> tuple[str, ...] | None:
    function = getattr(member, "__func__", member)
    if not inspect.isfunction(function):
        return None
    return tuple(inspect.signature(function).parameters)


@pytest.mark.parametrize("version", sorted(STATIONS))
def test_a_method_defined_again_takes_what_the_one_it_hides_takes(version: str) -> None:
    station = STATIONS[version]
    clashes = []
    for name in dir(station):
        if name.startswith("__"):
            continue
        definitions = [
            (owner.__qualname__, _parameters(vars(owner)[name]))
            for owner in station.__mro__
            if name in vars(owner)
        ]
        (_, first), *hidden = definitions
        for owner, parameters in hidden:
            if first is None and parameters is None:
                continue  # a class attribute given its value (handlers, timer_actions)
            # The one in force must accept every parameter of the one it hides, in order.
            if first is None or parameters is None or first[: len(parameters)] != parameters:
                clashes.append(f"{name}: {definitions[0]} hides {owner} {parameters}")
    assert clashes == []
