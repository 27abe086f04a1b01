"""`python -m inception3` (what `torchrun -m inception3 train ...` runs)."""

import sys

from inception3.cli import main

sys.exit(main())
