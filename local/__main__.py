"""`python -m local`: see local/server.py."""

import atexit
import os
import sys

# The guard matters: the API workers are started with `spawn`, which imports this module again
# in each of them (as `__mp_main__`); only the runner itself may serve.
if __name__ == "__main__":
    from local.server import serve

    code = serve()
    # Everything the runner started is stopped by now. Run the exit hooks (an OpenTelemetry
    # exporter flushes there), then leave without tearing down every imported module one by
    # one: that took most of a second here, a second the 2 s stop budget does not have.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
