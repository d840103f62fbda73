"""`python -m shared` runs the `k8s-monitor` command line."""

import sys

from shared.cli import main

sys.exit(main())
