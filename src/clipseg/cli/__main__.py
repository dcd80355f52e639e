"""``python -m clipseg.cli ...``: the ``clipseg`` command without its console script."""

import sys

from clipseg.cli import main

sys.exit(main())
