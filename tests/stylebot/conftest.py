from tests.engine.conftest import png_bytes, toy_methods, toy_request  # noqa: F401 - shared fixtures
