"""``python -m modelexport``: the command line."""

import sys

from modelexport.cli import main

sys.exit(main())
