"""`fields3d info`."""

from __future__ import annotations

import json

from fields3d.cli import main


def test_info_json_lists_cpu(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "cpu" in data["backends"] and data["torch"] and "fields3d" in data


def test_info_lines(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("backends") and "cpu" in line for line in out.splitlines())
