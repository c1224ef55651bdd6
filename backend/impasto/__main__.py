"""``python -m impasto`` (and ``torchrun -m impasto train ...``) runs the command line."""
import sys

from .cli import main

sys.exit(main())
