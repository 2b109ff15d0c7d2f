"""Templates pack exactly what packing the filled-in commands afresh would."""

from __future__ import annotations

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_client._resp import HOLE, Arg, Command, Hole, Packed, Shape, Template, pack

_ARGS = st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers(-(2**63), 2**63 - 1))
# Values for holes: short, empty, and longer than the cached bulk-string headers.
_VALUES = st.one_of(st.binary(max_size=40), st.binary(min_size=1020, max_size=1100))
_SHAPES = st.lists(
    st.tuples(st.sampled_from(["XADD", "HSET", "SADD"]), st.lists(st.one_of(_ARGS, st.just(HOLE)), max_size=8)).map(
        lambda t: (t[0], *t[1])
    ),
    min_size=1,
    max_size=6,
)


def _filled(shapes: list[Shape], values: list[bytes]) -> list[Command]:
    given_values = iter(values)
    out: list[Command] = []
    for shape in shapes:
        out.append(tuple([next(given_values) if isinstance(arg, Hole) else arg for arg in shape]))
    return out


@given(_SHAPES, st.data())
def test_a_filled_template_is_the_filled_commands_packed(shapes: list[Shape], data: st.DataObject) -> None:
    template = Template(shapes)
    values = data.draw(st.lists(_VALUES, min_size=template.holes, max_size=template.holes))
    commands = _filled(shapes, values)
    assert template.fill(*values) == pack(commands)
    assert template.names == tuple(str(shape[0]) for shape in shapes)
    assert Packed.of(commands) == Packed(pack(commands), template.names)


def test_the_packed_form_reads_back_as_the_commands() -> None:
    template = Template([("XADD", "s", "*", "m", HOLE), ("HINCRBY", "h", "f", HOLE)])
    reader = hiredis.Reader()
    reader.feed(template.fill(b"x\r\ny", b"7"))
    assert [reader.gets(), reader.gets(), reader.gets()] == [
        [b"XADD", b"s", b"*", b"m", b"x\r\ny"],
        [b"HINCRBY", b"h", b"f", b"7"],
        False,
    ]


@pytest.mark.parametrize("values", [(), (b"1", b"2")])
def test_filling_with_the_wrong_number_of_values_is_refused(values: tuple[bytes, ...]) -> None:
    with pytest.raises(TypeError, match=r"has 1 hole\(s\) to fill, "):
        Template([("SET", "k", HOLE)]).fill(*values)


def test_args_are_packed_as_hiredis_packs_them() -> None:
    args: tuple[Arg, ...] = ("SET", "ключ", b"\x00\xff", -12)
    assert Template([args]).fill() == pack([args])
