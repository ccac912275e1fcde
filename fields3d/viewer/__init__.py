"""The live browser viewer (``fields3d view PATH``, ``--view`` on training), built on viser.

Only the command line imports this package; it uses the pipelines and fields, nothing below
imports it. viser is an optional dependency (``pip install 'fields3d[view]'``): importing this
package needs none, asking for a server without it raises
:class:`~fields3d.errors.BackendUnavailable` saying how to install it.

- :mod:`.sources`: what PATH holds (``open_source``), read before any server starts;
- :mod:`.camera`: a browser camera as our :class:`~fields3d.render.cameras.Cameras`;
- :mod:`.frames`: one picture of a field in a render mode (``render_frame``);
- :mod:`.session`: one client's render state (latest-request slot, progressive refinement);
- :mod:`.live`: the :class:`~fields3d.pipelines.hooks.TrainingHook` that serves a running fit;
- :mod:`.app`: the viser server, its scene and GUI (``Viewer``, ``free_port``).
"""

from __future__ import annotations

from ..errors import BackendUnavailable

INSTALL = "pip install 'fields3d[view]'"


def require_viser():
    """The ``viser`` module, or BackendUnavailable naming the install command."""
    try:
        import viser
    except ImportError as exc:
        raise BackendUnavailable(
            f"the viewer needs viser, which is not installed ({exc}); install it with `{INSTALL}`"
        ) from exc
    return viser
