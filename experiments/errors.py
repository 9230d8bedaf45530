"""The suite's refusals (issue 23): a run it will not start or continue, for a reason the user can fix.

Invalid values, missing or wrong data, a record locked by another process or holding another run's checkpoint,
too little disk space, a checkpoint the disk would not take: each is one sentence naming what is wrong and what to
do. The command line prints it alone on stderr and exits :data:`EXIT_REFUSED`, without a traceback
(``HYDRA_FULL_ERROR=1`` still shows one); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from hydra.errors import CompactHydraException

EXIT_REFUSED = 2  # as scripts.plan's pre-flight refusal


class Refusal(ValueError, CompactHydraException):
    """Base of the suite's refusals. A ``ValueError``, so ``except ValueError`` still catches the config errors; a
    ``CompactHydraException``, so Hydra reports a refused job of a multirun as its message alone."""


def exit_refused(refusal: Refusal) -> NoReturn:
    """Print ``refusal`` alone on stderr and exit :data:`EXIT_REFUSED`; re-raise it under ``HYDRA_FULL_ERROR=1``
    (Hydra then prints the whole traceback)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise refusal
    print(refusal, file=sys.stderr)
    sys.exit(EXIT_REFUSED)
