"""The scheduled SkyPrep load, runnable without installing the console script.

    python pipelines/skyprep_pipeline.py              # same as `skyprep run`
    python pipelines/skyprep_pipeline.py --no-models  # flags of `skyprep run`
    python pipelines/skyprep_pipeline.py check        # same as `skyprep check`

All logic lives in `skyprep_source.job` / `skyprep_source.cli`; see docs/job.md.
"""

from __future__ import annotations

import sys

from skyprep_source.cli import COMMANDS, main

if __name__ == "__main__":
    argv = sys.argv[1:]
    # a bare script (or flags only) is the nightly load: `run` is the default command
    if not argv or (argv[0] not in COMMANDS and argv[0] not in {"-h", "--help"}):
        argv = ["run", *argv]
    sys.exit(main(argv))
