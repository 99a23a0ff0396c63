"""``python -m marketsim``: the command line, finding exactly what the ``marketsim`` command finds.

``python -m`` puts the working directory first on ``sys.path``; the ``marketsim`` script does
not. Left there, any ``*.dist-info`` with a ``marketsim`` entry point, or any module, that
merely sits in the working directory would be imported by ``python -m marketsim`` and not by
``marketsim``. The entry is dropped before anything looks for plugins, so both commands load
plugins from installed distributions and from what the experiment names (see
`marketsim.plugins`), and never from the working directory. (With ``python -P`` or
``PYTHONSAFEPATH`` Python does not add it in the first place.)
"""

import os
import sys


def _drop_working_directory() -> None:
    """Remove the working-directory entry that ``python -m`` put first on ``sys.path``."""
    if sys.flags.safe_path or not sys.path:
        return
    first = sys.path[0]
    if os.path.abspath(first or os.curdir) == os.path.abspath(os.getcwd()):
        del sys.path[0]


_drop_working_directory()

from marketsim.cli import main  # noqa: E402  (after the sys.path fix, on purpose)

main()
