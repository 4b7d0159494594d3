"""The `s3` attachment store against a real S3-protocol server on 127.0.0.1 (moto's server mode): objects
named by their content, stored once, a missing one answered as missing, files uploaded through the portal
and read back, files stored before the switch still readable, and the start refused without a bucket."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from portal import create_app
from portal.db import get_session
from portal.domain.attachment_store import ObjectStore
from portal.domain.models import Attachment, AttachmentBlob, Role
from tests.conftest import ROOT, AuthActions
from tests.sample_files import pdf, png
from tests.test_attachments import EN, ask_for_help, newest_ticket, ticket_files

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """The address of an S3 server (moto) on 127.0.0.1, one for the whole session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_credentials(monkeypatch, tmp_path):
    """Dummy credentials for boto3's chain, and nothing else it could read or reach (no profile files, no
    instance metadata, no proxy for 127.0.0.1)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture
def bucket(s3_endpoint, s3_credentials) -> str:
    """A new, empty bucket for one test."""
    name = f"mesa-test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_settings(s3_endpoint, bucket) -> dict:
    """The settings that write new files to the test's bucket."""
    return {"MESA_ATTACHMENT_STORE": "s3", "MESA_S3_ENDPOINT_URL": s3_endpoint, "MESA_S3_BUCKET": bucket,
            "MESA_S3_REGION": REGION}


def s3_client(endpoint: str):
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION)


def keys_in(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def attachment_of(data: bytes) -> Attachment:
    """An attachment record as the store sees it (only its digest matters there)."""
    return Attachment(sha256=hashlib.sha256(data).hexdigest())


# ----- the store on its own ---------------------------------------------------------------------------------


def test_a_file_goes_in_under_its_digest_and_comes_back(s3_endpoint, bucket):
    store = ObjectStore(bucket, endpoint_url=s3_endpoint, region=REGION)
    attachment = attachment_of(pdf())
    store.put(None, attachment, pdf())
    assert keys_in(s3_endpoint, bucket) == [f"mesa/attachments/{attachment.sha256}"]
    assert store.get(None, attachment) == pdf()


def test_the_same_content_is_stored_once(s3_endpoint, bucket):
    store = ObjectStore(bucket, prefix="files/", endpoint_url=s3_endpoint, region=REGION)
    first, second = attachment_of(png()), attachment_of(png())
    store.put(None, first, png())
    store.put(None, second, png())
    store.put(None, attachment_of(pdf()), pdf())
    assert sorted(keys_in(s3_endpoint, bucket)) == sorted(
        [f"files/{first.sha256}", f"files/{hashlib.sha256(pdf()).hexdigest()}"])
    assert store.get(None, second) == png()


def test_a_missing_object_is_none(s3_endpoint, bucket):
    store = ObjectStore(bucket, endpoint_url=s3_endpoint, region=REGION)
    assert store.get(None, attachment_of(b"never stored")) is None


# ----- through the portal -----------------------------------------------------------------------------------


def test_a_file_uploaded_with_the_form_is_kept_in_the_bucket_and_downloaded_unchanged(seeded_app_with,
                                                                                      s3_settings, s3_endpoint):
    app = seeded_app_with(**s3_settings)
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    assert ask_for_help(client, [(pdf(), "invoice.pdf")]).status_code == 302
    (invoice,) = ticket_files(app, newest_ticket(app).id)
    assert invoice.storage == "s3"
    assert keys_in(s3_endpoint, s3_settings["MESA_S3_BUCKET"]) == [f"mesa/attachments/{invoice.sha256}"]
    with app.app_context():
        assert get_session().get(AttachmentBlob, invoice.id) is None
    downloaded = client.get(f"/attachments/{invoice.id}/invoice.pdf")
    assert downloaded.status_code == 200 and downloaded.data == pdf()


def test_files_stored_in_the_database_before_the_switch_stay_readable(seeded_app_with, s3_settings):
    database_app = seeded_app_with()
    client = database_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    ask_for_help(client, [(png(), "before.png")])
    before = ticket_files(database_app, newest_ticket(database_app).id)[0]
    assert before.storage == "database"

    s3_app = seeded_app_with(**s3_settings)
    client = s3_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    ask_for_help(client, [(pdf(), "after.pdf")])
    after = ticket_files(s3_app, newest_ticket(s3_app).id)[0]
    assert after.storage == "s3"
    assert client.get(f"/attachments/{before.id}").data == png()
    assert client.get(f"/attachments/{after.id}").data == pdf()


def test_a_file_missing_from_the_bucket_is_a_404_with_a_message(seeded_app_with, s3_settings, s3_endpoint):
    app = seeded_app_with(**s3_settings)
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    ask_for_help(client, [(pdf(), "gone.pdf")])
    gone = ticket_files(app, newest_ticket(app).id)[0]
    s3_client(s3_endpoint).delete_object(Bucket=s3_settings["MESA_S3_BUCKET"], Key=f"mesa/attachments/{gone.sha256}")
    response = client.get(f"/attachments/{gone.id}", headers=EN)
    assert response.status_code == 404 and "no longer in the store" in response.text


def test_a_store_that_cannot_be_reached_is_a_503_with_a_message_never_a_500(seeded_app_with, s3_settings):
    app = seeded_app_with(**s3_settings)
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    ask_for_help(client, [(pdf(), "kept.pdf")])
    kept = ticket_files(app, newest_ticket(app).id)[0]
    down = seeded_app_with(**{**s3_settings, "MESA_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    client = down.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    response = client.get(f"/attachments/{kept.id}", headers=EN)
    assert response.status_code == 503 and "cannot be reached" in response.text
    tickets_before = newest_ticket(down).id
    refused = ask_for_help(client, [(png(), "shot.png")])
    assert refused.status_code == 503 and "nothing was changed" in refused.text
    assert newest_ticket(down).id == tickets_before  # the whole request rolled back: no ticket without its file


# ----- settings ---------------------------------------------------------------------------------------------


def test_the_s3_store_without_a_bucket_refuses_to_start(tmp_path):
    with pytest.raises(RuntimeError, match=r"MESA_ATTACHMENT_STORE=s3 needs MESA_S3_BUCKET"):
        create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_ATTACHMENT_STORE": "s3"})


LOAD_APP_AND_LIST_MODULES = """
import sys, tempfile
from pathlib import Path
from portal import create_app
directory = Path(tempfile.mkdtemp())
create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(directory / "instance"), "MESA_RANKING": "fake",
            "MESA_DATABASE_URL": f"sqlite:///{directory / 'mesa.db'}", "MESA_INDEX_PATH": str(directory / "index.npz"),
            "MESA_EMBEDDER_MODEL": "", "MESA_ATTACHMENT_STORE": "s3", "MESA_S3_BUCKET": "unused"})
print("boto3" in sys.modules, "botocore" in sys.modules)
"""


def test_boto3_is_not_imported_until_the_s3_store_is_used():
    result = subprocess.run([sys.executable, "-c", LOAD_APP_AND_LIST_MODULES], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["False", "False"]
