"""``python -m cnndsl`` (also what ``torchrun -m cnndsl`` runs)."""

import sys

from .cli import main

sys.exit(main())
