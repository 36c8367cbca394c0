from tests.engine.conftest import toy_methods  # noqa: F401 - the fixture, shared
