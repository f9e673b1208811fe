"""Feature pipelines: pure functions from DataFrame to DataFrame, one registry of features.

Importing any of this project's packages sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is already set:
LightGBM's OpenMP threads then sleep at barriers instead of spinning. Two trainings sharing two
cores (a test suite, two analysts on one server, a Dask worker beside another) measured 113 s
each with spinning threads against 31 s passive, and one training alone 27 s against 26 s. It
only takes effect if set before LightGBM is first imported in the process.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
