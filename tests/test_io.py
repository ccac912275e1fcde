"""Output files and checkpoints: atomic writes, named errors where a target cannot be a file, and
checkpoint headers or contents that are not what their kind needs."""

import json
from types import SimpleNamespace

import pytest
import torch

from fields3d._io import check_output, prepare_output, write_atomic
from fields3d.checkpoint import load_checkpoint, read_meta, save_checkpoint
from fields3d.cli import main
from fields3d.errors import CheckpointError, InputError
from fields3d.fields.sdf_grid import BandSDFGrid
from fields3d.geometry.pointcloud import Normalization
from fields3d.pipelines.recon.checkpoint import load_field, save_field


def test_write_atomic_creates_folders_and_replaces(tmp_path):
    path = write_atomic(tmp_path / "a" / "b" / "x.txt", b"one")
    assert path.read_bytes() == b"one"
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and sorted(p.name for p in path.parent.iterdir()) == [
        "x.txt"
    ]


def test_checkpoints_are_written_atomically_with_ordinary_permissions(tmp_path):
    import os
    import stat

    path = save_checkpoint(
        tmp_path / "c" / "x.safetensors", {"a": torch.arange(3.0)}, {"kind": "test"}
    )
    tensors, meta = load_checkpoint(path)
    assert torch.equal(tensors["a"], torch.arange(3.0)) and meta["kind"] == "test"
    save_checkpoint(path, {"a": torch.ones(2)}, {"kind": "test", "step": 2})
    assert read_meta(path)["step"] == 2 and [p.name for p in path.parent.iterdir()] == [
        "x.safetensors"
    ]
    mask = os.umask(0o022)
    os.umask(mask)
    assert (
        stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    )  # as every other output, not mkstemp's 0600
    with pytest.raises(InputError) as err:
        save_checkpoint(tmp_path / "c", {"a": torch.ones(1)}, {"kind": "test"})
    assert str(err.value) == f"cannot write {tmp_path / 'c'}: it is a folder; pass a file path"


def test_outputs_that_cannot_be_files(tmp_path):
    (tmp_path / "folder.ply").mkdir()
    with pytest.raises(InputError) as err:
        prepare_output(tmp_path / "folder.ply")
    assert (
        str(err.value)
        == f"cannot write {tmp_path / 'folder.ply'}: it is a folder; pass a file path"
    )
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError) as err:
        write_atomic(tmp_path / "file" / "out.png", b"")
    assert str(err.value) == (
        f"cannot create the folder {tmp_path / 'file'} for out.png ({tmp_path / 'file'} is a "
        "file); pass an output path in a folder you can write"
    )
    with pytest.raises(InputError) as err:
        save_checkpoint(tmp_path / "folder.ply", {"x": torch.zeros(1)}, {"kind": "nerf"})
    assert str(err.value).startswith(f"cannot write {tmp_path / 'folder.ply'}: it is a folder")


def test_check_output_creates_nothing(tmp_path):
    assert (
        check_output(tmp_path / "new" / "deeper" / "m.ply") == tmp_path / "new" / "deeper" / "m.ply"
    )
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError) as err:
        check_output(tmp_path / "file" / "sub" / "m.ply")
    assert str(err.value) == (
        f"cannot create the folder {tmp_path / 'file' / 'sub'} for m.ply ({tmp_path / 'file'} "
        "is a file); pass an output path in a folder you can write"
    )
    with pytest.raises(InputError, match="it is a folder; pass a file path$"):
        check_output(tmp_path)


def test_long_jobs_check_their_output_before_the_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert (
        main(["recon", "assets/scans/bunny.ply", "-o", str(tmp_path / "file" / "m.ply"), "--quiet"])
        == 2
    )
    assert capsys.readouterr().err == (
        f"error: cannot create the folder {tmp_path / 'file'} for m.ply "
        f"({tmp_path / 'file'} is a file); pass an output path in a folder you can write\n"
    )
    assert (
        main(
            [
                "nerf",
                "--data",
                "assets/scenes/spot",
                "--steps",
                "1",
                "--quiet",
                "-o",
                str(tmp_path / "file"),
            ]
        )
        == 2
    )
    assert "(" + str(tmp_path / "file") + " is a file)" in capsys.readouterr().err


def test_cli_reports_a_refusing_file_system(monkeypatch, capsys):
    def full(_args):
        raise OSError(28, "No space left on device", "/data/out.ply")

    monkeypatch.setattr("fields3d.cli.info.run", full)
    assert main(["info"]) == 2
    assert (
        capsys.readouterr().err
        == "error: No space left on device: /data/out.ply; check the paths and the disk\n"
    )


def test_a_header_that_is_not_an_object(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "list.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"fields3d": json.dumps(["nerf"])})
    with pytest.raises(CheckpointError) as err:
        read_meta(path)
    assert (
        str(err.value)
        == f"checkpoint {path} has a corrupt fields3d header (a JSON list, not an object)"
    )
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    for text, reason in (
        (
            "[" * 100000 + "]" * 100000,
            "maximum recursion depth exceeded while decoding a JSON array",
        ),
        ('{"step": ' + "9" * 5001 + "}", "Exceeds the limit (4300 digits) for integer string"),
    ):
        save_file({"x": torch.zeros(1)}, str(path), metadata={"fields3d": text})
        with pytest.raises(CheckpointError) as err:
            read_meta(path)
        assert str(err.value).startswith(
            f"checkpoint {path} has a corrupt fields3d header ({reason}"
        )


@pytest.fixture
def sphere_field(tmp_path):
    axis = torch.linspace(-1, 1, 17)
    x = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    values = x.norm(dim=-1) - 0.5
    grid = BandSDFGrid.from_coarse(values, values.abs() < 0.2)
    path = save_field(
        tmp_path / "s.field.safetensors",
        grid,
        Normalization((0.0, 0.0, 0.0), 1.0),
        SimpleNamespace(method="gridpull", input="s.ply"),
    )
    return path, grid


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            lambda t, m: t.update(band_index=t["band_index"] + 10**6),
            "band_index must hold at least one lattice index",
        ),
        (
            lambda t, m: t.update(band_index=t["band_index"][:0], values=t["values"][:0]),
            "band_index must hold at least one lattice index",
        ),
        (lambda t, m: m.update(resolution=1), "resolution must be an integer >= 2, got 1"),
        (
            lambda t, m: m.update(resolution=float("inf")),
            "cannot convert float infinity to integer",
        ),
    ],
)
def test_field_checkpoints_with_broken_contents(sphere_field, tmp_path, change, reason):
    path, _ = sphere_field
    tensors, meta = load_checkpoint(path)
    change(tensors, meta)
    broken = save_checkpoint(tmp_path / "broken.safetensors", tensors, meta)
    with pytest.raises(CheckpointError) as err:
        load_field(broken, torch.device("cpu"))
    assert str(err.value).startswith(
        f"checkpoint {broken} does not hold a complete band_sdf_grid ("
    )
    assert reason in str(err.value)


def test_neural_field_checkpoint_with_wrong_tensors_is_one_line(tmp_path):
    from fields3d.fields.neural_sdf import NeuralSDF

    field = NeuralSDF(n_levels=2, log2_hashmap_size=8, n_hidden=8, n_hidden_layers=1)
    path = save_field(
        tmp_path / "n.field.safetensors",
        field,
        Normalization((0.0, 0.0, 0.0), 1.0),
        SimpleNamespace(method="neural", input="s.ply"),
    )
    tensors, meta = load_checkpoint(path)
    name = next(iter(tensors))
    tensors[name] = torch.zeros(3, 1)
    tensors["stray"] = torch.zeros(1)
    broken = save_checkpoint(tmp_path / "broken.safetensors", tensors, meta)
    with pytest.raises(CheckpointError) as err:
        load_field(broken, torch.device("cpu"))
    message = str(err.value)
    assert "\n" not in message and "\t" not in message
    assert message.startswith(
        f"checkpoint {broken} does not hold a complete neural_sdf (Error(s) in loading "
    )
    assert 'Unexpected key(s) in state_dict: "stray". size mismatch for ' in message


@pytest.mark.parametrize(
    "exc, shown",
    [
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
                "tried to allocate 124554051584 bytes. Error code 12 (Cannot allocate memory)\nmore"
            ),
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate "
            "124554051584 bytes. Error code 12 (Cannot allocate memory)",
        ),
        (
            MemoryError(
                "Unable to allocate 116. GiB for an array with shape (5000, 5000, 5000) and data type float8"
            ),
            "Unable to allocate 116. GiB for an array with shape (5000, 5000, 5000) and data type float8",
        ),
    ],
)
def test_cli_reports_running_out_of_memory_in_one_line(monkeypatch, capsys, exc, shown):
    def hungry(_args):
        raise exc

    monkeypatch.setattr("fields3d.cli.info.run", hungry)
    assert main(["info"]) == 2
    assert capsys.readouterr().err == (
        f"error: out of memory ({shown}); use smaller settings (resolution, table "
        "size, batch, samples), or a machine with more memory\n"
    )


def test_cli_lets_other_runtime_errors_through(monkeypatch):
    def broken(_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr("fields3d.cli.info.run", broken)
    with pytest.raises(RuntimeError, match="^a bug$"):
        main(["info"])


def test_checkpoints_with_nan_weights_are_refused(sphere_field, tmp_path):
    path, _ = sphere_field
    tensors, meta = load_checkpoint(path)
    tensors["values"] = tensors["values"].clone()
    tensors["values"][0] = float("nan")
    broken = save_checkpoint(tmp_path / "nan.safetensors", tensors, meta)
    with pytest.raises(CheckpointError) as err:
        load_field(broken, torch.device("cpu"))
    assert str(err.value) == (
        f"checkpoint {broken} holds NaN or infinite values in values; it was saved from a "
        "diverged run: train it again"
    )
    assert main(["mesh", str(broken), "-o", str(tmp_path / "m.ply")]) == 2
    assert not (tmp_path / "m.ply").exists()


def test_a_field_without_surface_writes_no_mesh(sphere_field, tmp_path):
    from fields3d.pipelines.remesh import remesh

    path, _ = sphere_field
    tensors, meta = load_checkpoint(path)
    tensors = {
        k: (v.abs() + 1.0 if k in ("coarse", "values") else v) for k, v in tensors.items()
    }  # outside all over
    empty = save_checkpoint(tmp_path / "empty.safetensors", tensors, meta)
    with pytest.raises(InputError) as err:
        remesh(empty, tmp_path / "m.ply", 24, "cpu")
    assert str(err.value) == (
        f"the field in {empty} has no surface at 24^3 points (its values keep one sign); "
        "nothing was written: try a higher --resolution, or fit the field again"
    )
    assert not (tmp_path / "m.ply").exists()
