"""Which OCPP version each charge point of a mixed fleet speaks: a fleet's versions by weight.

A fleet's versions are ``((version, weight), ...)``, e.g. ``(("1.6", 7), ("2.0.1", 3))``. Each
charge point takes one by a hash of its id (:func:`version_of`), so every process of a run, a
master's workers included, gives the same charge point the same version without being told.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

VERSIONS = ("1.6", "2.0.1")
"""The OCPP versions a fleet may run, in the order their shares are laid out."""

DEFAULT_VERSIONS: tuple[tuple[str, int], ...] = (("1.6", 1),)
"""A fleet's versions unless told otherwise: all OCPP 1.6."""

Versions = Sequence[tuple[str, int]]
"""``(version, weight)`` pairs: each version's share of a fleet is its weight over their sum."""


def check_versions(versions: Versions) -> None:
    """Raise ``ValueError`` unless ``versions`` names at least one of :data:`VERSIONS`, none
    twice, each with a whole weight above 0."""
    if not versions:
        raise ValueError("versions must name at least one OCPP version")
    seen: set[str] = set()
    for version, weight in versions:
        if version not in VERSIONS:
            raise ValueError(
                f"versions: unknown OCPP version {version!r} (known: {', '.join(VERSIONS)})"
            )
        if version in seen:
            raise ValueError(f"versions: {version} is named twice")
        seen.add(version)
        # bool is an int: True would read as a weight of 1.
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise ValueError(f"versions: the weight of {version} must be a whole number above 0")


def parse_versions(spec: str) -> tuple[tuple[str, int], ...]:
    """A fleet's versions from text: ``2.0.1``, ``1.6,2.0.1`` (even shares) or
    ``1.6=7,2.0.1=3`` (by weight; a version without one weighs 1).

    Returned in the order of :data:`VERSIONS`. Raises ``ValueError`` saying what is wrong.
    """
    items = [item.strip() for item in spec.split(",")]
    if items == [""]:
        raise ValueError(f"names no OCPP version (known: {', '.join(VERSIONS)})")
    versions: dict[str, int] = {}
    for item in items:
        version, equals, weight_text = (part.strip() for part in item.partition("="))
        if not version:
            raise ValueError(f"expected VERSION or VERSION=WEIGHT, got {item!r} in {spec!r}")
        if version not in VERSIONS:
            raise ValueError(f"unknown OCPP version {version!r} (known: {', '.join(VERSIONS)})")
        if version in versions:
            raise ValueError(f"{version} is named twice")
        weight = 1
        if equals:
            try:
                weight = int(weight_text)
            except ValueError:
                weight = 0
            if weight < 1:
                raise ValueError(
                    f"the weight of {version} must be a whole number above 0, got {weight_text!r}"
                )
        versions[version] = weight
    return tuple((version, versions[version]) for version in VERSIONS if version in versions)


def version_of(charge_point_id: str, versions: Versions) -> str:
    """The OCPP version of the charge point ``charge_point_id`` in a fleet of ``versions``.

    The same in every process (CRC-32 of the id, not Python's salted ``hash``); over many ids,
    each version's share follows its weight. The order of ``versions`` does not matter. Raises
    ``ValueError`` as :func:`check_versions` does.
    """
    check_versions(versions)
    ordered = sorted(versions, key=lambda pair: VERSIONS.index(pair[0]))
    point = zlib.crc32(charge_point_id.encode()) % sum(weight for _, weight in ordered)
    for version, weight in ordered:
        if point < weight:
            return version
        point -= weight
    raise AssertionError("unreachable: the point is below the sum of the weights")
