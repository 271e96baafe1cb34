import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, _ROOT)

pytest_plugins = ["adjudicator.testing"]

# Hypothesis's per-example deadline (200 ms) and its "too slow" health check are timed assertions:
# on a loaded 2-core machine they fail tests whose properties hold (seen: test_book_round_trip).
# Speed is shown by benchmarks/, never by tests, so neither applies anywhere in the suite.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("channels", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("channels")
