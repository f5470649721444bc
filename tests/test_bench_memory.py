"""bench.memory's pure helpers: sizing what a charge point owns, and the table's arithmetic."""

import sys

import pytest

from bench.memory import (
    EMPTY_DICT,
    GREENLET,
    PROTOCOL,
    SCHEDULE,
    SESSION,
    STATION,
    TASK,
    TRACE,
    TREE,
    USER,
    owned,
    reach,
    rows,
)


class Thing:
    __slots__ = ("config", "name", "parts")

    def __init__(self, number: int, config: dict[str, str]) -> None:
        self.config = config
        self.name = f"thing-{number}"
        self.parts = [f"part-{number}" * 3]


class Plain:
    pass


def test_owned_counts_each_object_once_in_its_group_and_leaves_out_what_another_reaches():
    config = {"shared": "by every thing"}
    one, other = Thing(1, config), Thing(2, config)
    sizes = owned([("thing", [other]), ("parts", [other.parts])], reach([one]))
    # The list is another group's root: the thing's walk does not enter it.
    assert sizes["thing"] == sys.getsizeof(other) + sys.getsizeof(other.name)
    assert sizes["parts"] == sys.getsizeof(other.parts) + sys.getsizeof(other.parts[0])
    # Reached by an earlier group, an object is not counted again.
    names = [other.name]
    again = owned([("thing", [other]), ("names", [names])], reach([one]))
    assert again["names"] == sys.getsizeof(names)


def test_reach_does_not_enter_what_is_fenced_nor_classes():
    everyone = [Thing(n, {}) for n in range(3)]
    holder = {"everyone": everyone}
    found = reach([holder], fence={id(everyone)})
    assert id(holder) in found
    assert id(everyone) not in found and id(everyone[0]) not in found
    assert id(Thing) not in reach([everyone[0]])


def test_an_instance_with_inline_attributes_counts_them_as_its_dict_does():
    plain = Plain()
    plain.value = "x" * 100
    size = owned([("plain", [plain])], set())["plain"]
    expected = sys.getsizeof(plain) + sys.getsizeof(vars(plain)) - EMPTY_DICT
    assert size == expected + sys.getsizeof(plain.value)


FIGURES = {
    "lean": {"kib": 8.0},
    "sessions": {"kib": 12.0},
    "state": {
        "rss 1.6": 3.0,
        "traced 1.6": 2.5,
        "rss 2.0.1": 4.0,
        "traced 2.0.1": 3.5,
        "parts 1.6": {STATION: 0.5, SCHEDULE: 0.25},
    },
    "engine": {"kib": 18.5, "parts": {TASK: 1.0, TRACE: 1.5, SESSION: 1.0, PROTOCOL: 2.0}},
    "users": {
        "kib": 9.0,
        "stack": 2.5,
        "parts": {USER: 0.5, GREENLET: 0.5, TREE: 0.25},
        "bare greenlet": 6.0,
    },
    "locust": {"kib": 30.5},
}


def test_the_parts_and_the_rest_make_the_total_and_each_split_makes_its_part():
    table = rows(FIGURES, 5000, 200)
    parts = [row for row in table if row.depth == 0]
    assert [row.kib for row in parts] == pytest.approx([12.0, 3.0, 1.0, 9.0, 1.5, 4.0, 30.5])
    assert sum(row.kib for row in parts[:-1]) == pytest.approx(parts[-1].kib)
    under: dict[str, float] = {}
    part = ""
    for row in table:
        if row.depth == 0:
            part = row.label
        elif row.depth == 1:
            under[part] = under.get(part, 0.0) + row.kib
    assert under == pytest.approx({row.label: row.kib for row in parts if row.label in under})
    assert set(under) == {parts[i].label for i in (0, 1, 3, 5)}
    reference = [row for row in table if row.depth < 0]
    assert [row.kib for row in reference] == [8.0, 4.0, 6.0]
