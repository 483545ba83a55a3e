"""`python -m local`: see local/server.py."""

import sys

# The guard matters: the API workers are started with `spawn`, which imports this module again
# in each of them (as `__mp_main__`); only the runner itself may serve.
if __name__ == "__main__":
    from local.server import serve

    sys.exit(serve())
