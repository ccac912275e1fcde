"""The options the verbs share: `--encoding`."""

from __future__ import annotations

import pytest

from fields3d.cli import parse_encoding
from fields3d.encodings import available
from fields3d.errors import InputError


def test_parse_encoding():
    assert parse_encoding(None) is None
    assert parse_encoding("hash_grid") == {"type": "hash_grid"}
    assert parse_encoding(' {"type": "hash_grid", "n_levels": 4} ') == {
        "type": "hash_grid",
        "n_levels": 4,
    }
    known = ", ".join(available())
    with pytest.raises(InputError) as info:
        parse_encoding('{"type": hash_grid}')
    assert str(info.value) == (
        f"--encoding must be an encoding type name ({known}) or a JSON object; "
        "'{\"type\": hash_grid}' is neither (JSON: Expecting value: line 1 column 10 (char 9))"
    )
    deep = "[" * 100000 + "]" * 100000
    with pytest.raises(InputError) as info:
        parse_encoding(deep)
    assert str(info.value) == (
        f"--encoding must be an encoding type name ({known}) or a JSON object; "
        f"{deep[:200]!r} is neither (JSON: maximum recursion depth exceeded while decoding "
        "a JSON array from a unicode string)"
    )
    with pytest.raises(InputError) as info:
        parse_encoding('["hash_grid"]')
    assert (
        str(info.value)
        == f"--encoding must be an encoding type name ({known}) or a JSON object, got a JSON "
        "list: '[\"hash_grid\"]'"
    )
