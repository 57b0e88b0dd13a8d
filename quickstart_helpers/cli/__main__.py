"""``python -m quickstart_helpers.cli``: the ``quickstart`` command."""

import sys

from . import main

sys.exit(main())
