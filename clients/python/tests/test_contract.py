"""The client keeps up with the server: every operation of the OpenAPI
document has a method, in the sync and the async client, and the generated
files are current."""

import inspect
import json
import subprocess
import sys

import pytest

import hydracore
from hydracore._operations import NOT_COVERED, OPERATIONS

from .conftest import REPO

DOCUMENT = json.loads((REPO / "clients/openapi.json").read_text())


def operation_ids() -> set[str]:
    return {
        operation["operationId"]
        for item in DOCUMENT["paths"].values()
        for operation in item.values()
    }


def test_every_operation_of_the_openapi_document_has_a_method_or_a_reason():
    missing = operation_ids() - set(OPERATIONS) - set(NOT_COVERED)
    assert not missing, f"operations without a client method: {sorted(missing)}"
    stale = set(OPERATIONS) - operation_ids()
    assert not stale, f"methods for operations the server no longer has: {sorted(stale)}"


def test_every_mapped_method_exists_in_the_sync_and_the_async_client():
    for operation, (cls, method) in OPERATIONS.items():
        sync = getattr(getattr(hydracore, cls), method, None)
        assert callable(sync), f"{operation}: {cls}.{method} is missing"
        twin = getattr(getattr(hydracore, f"Async{cls}"), method, None)
        assert inspect.iscoroutinefunction(twin), f"{operation}: Async{cls}.{method} is not async"
        assert inspect.signature(sync) == inspect.signature(twin)


def test_the_generated_models_and_async_client_are_current():
    result = subprocess.run(
        [sys.executable, str(REPO / "clients/generate.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_version_is_the_workspace_version():
    cargo = (REPO / "Cargo.toml").read_text()
    assert f'version = "{hydracore.__version__}"' in cargo
    assert f'version = "{hydracore.__version__}"' in (REPO / "clients/python/pyproject.toml").read_text()


def test_the_package_type_checks_strictly():
    mypy = pytest.importorskip("mypy.api")
    out, err, status = mypy.run(
        ["--strict", "--python-version", "3.10", "--no-incremental", str(REPO / "clients/python/src/hydracore")]
    )
    assert status == 0, out + err
