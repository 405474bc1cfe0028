"""A gunicorn config file that sets the garbage collector's thresholds as it is read."""

import gc

gc.set_threshold(1500, 10, 10)
