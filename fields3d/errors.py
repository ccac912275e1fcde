"""The fields3d exception family.

Every error fields3d raises on purpose derives from :class:`FieldsError`. Messages name the
argument, what was expected, what was given, and what to do about it; tests assert them exactly.
"""

import math


class FieldsError(Exception):
    """Base class of every error fields3d raises on purpose."""


class InputError(FieldsError, ValueError):
    """An argument has the wrong dtype, device, shape, value or content."""


class BackendUnavailable(FieldsError, RuntimeError):
    """The compiled core, or the CUDA part of it, is not available in this installation."""


class ModelNotFound(FieldsError, FileNotFoundError):
    """A model, checkpoint or data path does not exist."""


class CheckpointError(FieldsError):
    """A checkpoint is corrupt or does not match the model it is loaded into."""


def one_line(exc: BaseException | str) -> str:
    """``exc``'s text on one line (torch's ``load_state_dict`` lists each problem on its own line;
    the CLI prints errors as a single ``error:`` line)."""
    return " ".join(str(exc).split())


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s text (a library's multi-line dump), or its type's name if it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class TrainingDiverged(FieldsError, RuntimeError):
    """Training produced a non-finite loss (NaN or inf): the parameters are lost."""


def check_loss(loss: float, step: int, lr: float) -> None:
    """Raise :class:`TrainingDiverged` unless ``loss`` (after ``step`` steps) is finite."""
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"training diverged: the loss is {loss} at step {step}; lower the learning rate "
            f"(lr {lr:g}) and start again"
        )
