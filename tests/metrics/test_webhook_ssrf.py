"""Webhook addresses cannot reach internal networks (finding 6 of issue #10): refused when saved
and again at delivery, with a listener on 127.0.0.1 that must receive nothing unless its host is
allow-listed; the delivery log shows error categories, never raw exception text."""

from __future__ import annotations

import http.server
import importlib
import socket
import threading
from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.events import event_publish
from accounts.models import EventType, WebhookDelivery, WebhookSubscription
from metrics import subscriptions, webhooks
from metrics.webhooks import webhook_deliver

pytestmark = pytest.mark.django_db

INTERNAL = [
    "https://127.0.0.1:5432/",
    "https://localhost/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/latest",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.8/hook",
    "https://172.16.4.4/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one number
]


class Listener:
    """An HTTP server on 127.0.0.1 that counts the requests it gets."""

    def __init__(self, status: int = 200) -> None:
        self.hits: list[str] = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                listener.hits.append(self.path)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def configure(team, user, url):  # type: ignore[no-untyped-def]
    return subscriptions.subscription_create(
        team=team, user=user, name="Ops", kind="standard", url=url, events=["trigger.fired"]
    )


def deliver_to(team, url: str) -> WebhookDelivery:  # type: ignore[no-untyped-def]
    # Written straight to the table: as if the address was saved when its name resolved elsewhere.
    subscription = WebhookSubscription.objects.create(
        team=team, name="Hook", url=url, secret="whsec_eA==", events=[EventType.TRIGGER_FIRED]
    )
    [delivery] = event_publish(
        team_id=team.pk, event=EventType.PING, data={}, summary="", subscriptions=[subscription]
    )
    webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


# --- when saved ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_when_saved(team, po, url):
    with pytest.raises(ValidationError) as caught:
        configure(team, po, url)

    assert "internal network" in caught.value.message_dict["url"][0]
    assert not WebhookSubscription.objects.exists()


def test_the_form_names_the_url_field(client_for, team, po):
    response = client_for(po).post(
        reverse("metrics:webhooks", args=[team.pk]),
        {
            "name": "Ops",
            "kind": "standard",
            "url": "https://169.254.169.254/latest/meta-data/",
            "events": ["trigger.fired"],
        },
    )

    assert response.status_code == 422
    form = response.context["form"]
    assert "internal network" in form.errors["url"][0]
    assert not WebhookSubscription.objects.exists()


def test_http_is_refused_in_production(team, po, settings):
    settings.WEBHOOK_ALLOW_HTTP = False

    with pytest.raises(ValidationError) as caught:
        configure(team, po, "http://93.184.216.34/hook")
    assert caught.value.message_dict["url"] == ["Use an https:// address."]

    endpoint, _ = configure(team, po, "https://93.184.216.34/hook")
    assert endpoint.url == "https://93.184.216.34/hook"


def test_an_allow_listed_host_may_be_saved(team, po, settings, listener):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]

    endpoint, _ = configure(team, po, f"http://127.0.0.1:{listener.port}/hook")

    assert endpoint.pk


# --- when delivered ------------------------------------------------------------------------------


def test_the_worker_posts_nothing_to_an_internal_address(team, listener):
    delivery = deliver_to(team, f"http://127.0.0.1:{listener.port}/hook")

    assert listener.hits == []
    assert delivery.delivered_at is None and delivery.attempts == 1
    assert delivery.last_status is None
    assert delivery.last_error == "address not allowed"


def test_the_worker_posts_nothing_to_a_name_for_loopback(team, listener):
    delivery = deliver_to(team, f"http://localhost:{listener.port}/hook")

    assert listener.hits == []
    assert delivery.last_error == "address not allowed"


def test_an_allow_listed_host_receives(team, listener, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost"]

    delivery = deliver_to(team, f"http://localhost:{listener.port}/hook")

    assert listener.hits == ["/hook"]
    assert delivery.delivered_at is not None and delivery.last_error == ""


def test_https_is_required_at_delivery_too(team, listener, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_ALLOW_HTTP = False

    delivery = deliver_to(team, f"http://127.0.0.1:{listener.port}/hook")

    assert listener.hits == []
    assert delivery.last_error == "address not allowed"


# --- error categories ----------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_errors_are_categories_not_exception_text(team, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    failing = Listener(status=500)
    try:
        refused = _closed_port()
        assert deliver_to(team, f"http://127.0.0.1:{refused}/").last_error == "connection refused"
        WebhookSubscription.objects.all().delete()
        assert deliver_to(team, f"http://127.0.0.1:{failing.port}/").last_error == "HTTP 500"
        WebhookSubscription.objects.all().delete()
        # TLS spoken to a plain-HTTP server.
        assert deliver_to(team, f"https://127.0.0.1:{failing.port}/").last_error == "TLS error"
        WebhookSubscription.objects.all().delete()
        assert deliver_to(team, "https://unknown-host.invalid/").last_error == "host not found"
    finally:
        failing.close()


def test_a_silent_receiver_is_a_timeout(team, settings, monkeypatch):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        delivery = deliver_to(team, f"http://127.0.0.1:{silent.getsockname()[1]}/")

    assert delivery.last_error == "timeout"


def test_the_delivery_log_shows_the_category(client_for, team, po, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    delivery = deliver_to(team, f"http://127.0.0.1:{_closed_port()}/")

    url = reverse("metrics:webhook_detail", args=[team.pk, delivery.subscription_id])
    body = client_for(po).get(url).content.decode()

    assert "connection refused" in body
    assert "Errno" not in body and "URLError" not in body


def test_the_request_goes_to_the_vetted_address_not_a_new_lookup(listener):
    # The name does not resolve at all: the connection uses the address checked beforehand, so a
    # DNS answer that changes between the check and the request cannot redirect it.
    connection = webhooks._PinnedHTTPConnection(
        "rebound.invalid", listener.port, addresses=["192.0.2.1", "127.0.0.1"], timeout=2
    )
    connection.request("POST", "/hook", body=b"{}")

    assert connection.getresponse().status == 200
    connection.close()
    assert listener.hits == ["/hook"]


def test_errors_recorded_before_are_rewritten_as_categories():
    migration = importlib.import_module("metrics.migrations.0010_webhook_error_categories")
    category = migration._category

    assert category("URLError: [Errno 111] Connection refused", None) == "connection refused"
    assert category("TimeoutError: timed out", None) == "timeout"
    assert category("URLError: [SSL: CERTIFICATE_VERIFY_FAILED] …", None) == "TLS error"
    assert category("URLError: [Errno -2] Name or service not known", None) == "host not found"
    assert category("HTTP 500 Internal Server Error", 500) == "HTTP 500"
    assert category("OSError: [Errno 113] No route to host", None) == "connection failed"
