"""nbflow's test suite; a package so tests can `from tests.services import require_service`."""
