"""``python -m quickstart_cli``: the ``quickstart`` command."""

import sys

from . import main

sys.exit(main())
