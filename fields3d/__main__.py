"""``python -m fields3d``: the same as the ``fields3d`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
