"""Shared pytest set-up: the local cluster fixtures (`cluster`, `namespace`, `crds`)."""
pytest_plugins = ["localkube.testing"]
