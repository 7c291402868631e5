"""``python -m kipoi_seq2exp.train``: the training subcommands without the top-level CLI."""
import sys

from .cli import main

sys.exit(main())
