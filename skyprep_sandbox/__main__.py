"""`python -m skyprep_sandbox` = the `skyprep-sandbox` console command."""

import sys

from skyprep_sandbox.cli import main

sys.exit(main())
