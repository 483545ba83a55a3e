"""`python -m local [--ddblocal]`: see local/server.py."""

import sys

from local.server import serve

sys.exit(serve())
