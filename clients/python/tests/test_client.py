"""The sync clients against a real server: errors, retries, If-Match, the
waits, the event stream and webhooks."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid

import httpx
import pytest

from hydracore import (
    AgentClient,
    AuthenticationError,
    ConflictError,
    DashboardClient,
    NotFoundError,
    NotSuspendedError,
    PermissionDeniedError,
    RateLimitedError,
    TransportError,
    Retry,
    UnavailableError,
    ValidationError,
    WaitTimeout,
    WebhookVerificationError,
    WorkflowClosedError,
    verify_webhook,
)

CUSTOMER = "160c0c4b-9966-4dc1-a916-8407eb10d74e"


def new_workflow(agent: AgentClient, **fields):
    return agent.create_workflow(CUSTOMER, "rent_arrears", reference=f"ref-{uuid.uuid4()}", **fields)


def later(seconds: float, action) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class Faults(httpx.BaseTransport):
    """In front of the real server: answers the next requests as scripted
    (`busy`: 503 without passing it on; `lost`: passes it on, then answers
    503 as if the answer was lost; `limited`: 429), then passes them on."""

    def __init__(self, *script: str, retry_after: str = "0") -> None:
        self.script = list(script)
        self.retry_after = retry_after
        self.sent: list[tuple[float, httpx.Request]] = []
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((time.monotonic(), request))
        step = self.script.pop(0) if self.script else "pass"
        headers = {"Retry-After": self.retry_after}
        if step == "busy":
            return httpx.Response(503, headers=headers, json={"detail": "The server is busy; retry shortly"})
        if step == "limited":
            return httpx.Response(429, headers=headers, json={"detail": "Too many requests"})
        response = self.inner.handle_request(request)
        if step == "lost":
            response.read()
            response.close()
            return httpx.Response(503, headers=headers, json={"detail": "The request took too long; retry shortly"})
        return response


def faulty_agent(server, faults: Faults) -> AgentClient:
    return AgentClient(
        server.url,
        server.demo["proxy_key"],
        server.demo["instance_id"],
        http_client=httpx.Client(transport=faults),
        retry=Retry(backoff=0.01),
    )


# Errors.


def test_a_validation_error_carries_the_status_and_every_item_as_a_list(agent):
    with pytest.raises(ValidationError) as refused:
        agent.create_workflow("not-a-uuid", "no_such_type")
    error = refused.value
    assert error.status == 422
    assert isinstance(error.detail, list)
    assert {tuple(item["loc"]) for item in error.detail} == {("body", "customer_id"), ("body", "workflow_type")}
    assert {e.type for e in error.errors} == {"uuid_parsing", "enum"}


def test_an_unknown_workflow_is_not_found_with_the_servers_sentence(agent):
    with pytest.raises(NotFoundError) as missing:
        agent.get_workflow(str(uuid.uuid4()))
    assert (missing.value.status, missing.value.detail) == (404, "Workflow not found")


def test_a_wrong_key_is_refused_and_another_instances_path_is_forbidden(server):
    with AgentClient(server.url, "hcp_wrong", server.demo["instance_id"]) as stranger:
        with pytest.raises(AuthenticationError) as refused:
            stranger.list_workflows()
    assert refused.value.status == 401
    with AgentClient(server.url, server.demo["proxy_key"], str(uuid.uuid4())) as elsewhere:
        with pytest.raises(PermissionDeniedError):
            elsewhere.list_workflows()


# Retries and idempotency.


def test_a_create_whose_answer_was_lost_is_sent_again_with_the_same_key_and_makes_one_workflow(server, agent):
    faults = Faults("lost", "busy")
    reference = f"lost-{uuid.uuid4()}"
    with faulty_agent(server, faults) as flaky:
        created = flaky.create_workflow(CUSTOMER, "lead", reference=reference)
    keys = {request.headers["idempotency-key"] for _, request in faults.sent}
    assert len(faults.sent) == 3 and len(keys) == 1
    assert agent.list_workflows(reference=reference).total == 1
    assert agent.list_workflows(reference=reference).workflows[0].id == created.id


def test_each_logical_call_gets_its_own_key(server):
    faults = Faults()
    with faulty_agent(server, faults) as client:
        client.create_workflow(CUSTOMER, "lead")
        client.create_workflow(CUSTOMER, "lead")
    assert len({request.headers["idempotency-key"] for _, request in faults.sent}) == 2


def test_a_429_waits_for_retry_after_before_it_is_sent_again(server):
    faults = Faults("limited", retry_after="1")
    with faulty_agent(server, faults) as client:
        client.list_workflows()
    (first, _), (second, _) = faults.sent
    assert second - first >= 0.9


def test_a_4xx_is_never_retried(server):
    faults = Faults()
    with faulty_agent(server, faults) as client:
        with pytest.raises(ValidationError):
            client.create_workflow("nope", "lead")
    assert len(faults.sent) == 1


def test_an_advance_without_if_match_is_not_repeated_after_a_503_but_one_with_it_is(server, agent):
    workflow = new_workflow(agent)
    faults = Faults("busy", "busy")
    with faulty_agent(server, faults) as client:
        with pytest.raises(UnavailableError):
            client.advance_workflow(workflow.id, "noted")
        assert len(faults.sent) == 1
        advanced = client.advance_workflow(workflow, "noted")
    assert advanced.version == 2 and len(faults.sent) == 3


def test_retries_stop_after_the_attempts_and_raise_the_last_answer(server):
    faults = Faults("limited", "limited", "limited", "limited")
    with faulty_agent(server, faults) as client:
        with pytest.raises(RateLimitedError) as limited:
            client.list_workflows()
    assert limited.value.retry_after == 0 and len(faults.sent) == 4


# If-Match.


def test_a_change_from_a_stale_record_is_a_conflict_that_names_the_current_version(agent):
    workflow = new_workflow(agent)
    agent.advance_workflow(workflow, "contacted")
    with pytest.raises(ConflictError) as conflict:
        agent.advance_workflow(workflow, "contacted_again")
    assert (conflict.value.status, conflict.value.current_version) == (412, 2)
    fresh = agent.get_workflow(workflow)
    assert agent.advance_workflow(fresh, "contacted_again").version == 3
    with pytest.raises(ConflictError):
        agent.suspend_workflow(workflow, "approve")


def test_a_closed_workflow_is_a_conflict(agent, admin):
    workflow = new_workflow(agent)
    aborted = admin.abort_workflow(workflow)
    assert (aborted.status, aborted.version) == ("cancelled", 2)
    with pytest.raises(ConflictError) as closed:
        agent.advance_workflow(workflow.id, "noted")
    assert closed.value.status == 409 and closed.value.current_version is None


# Waiting for the human.


def test_wait_for_resume_returns_the_resume_data_once_an_admin_answers(agent, admin):
    workflow = new_workflow(agent)
    suspended = agent.suspend_workflow(workflow, "approve", assigned_to="py-tests")
    assert (suspended.status, suspended.version) == ("suspended", 2)
    manager = later(0.5, lambda: admin.resume_workflow(workflow.id, {"approved": True}))
    assert agent.wait_for_resume(suspended, timeout=20) == {"approved": True}
    manager.join()


def test_wait_for_resume_by_id_polls_again_until_the_answer(agent, admin):
    workflow = new_workflow(agent)
    agent.suspend_workflow(workflow, "approve", assigned_to="py-tests")

    def answer() -> None:
        record = admin.get_workflow(workflow.id)
        admin.resume_workflow(record, {"n": 1})

    manager = later(1.2, answer)
    assert agent.wait_for_resume(workflow.id, timeout=20, poll=1) == {"n": 1}
    manager.join()


def test_wait_for_resume_times_out(agent):
    suspended = agent.suspend_workflow(new_workflow(agent), "approve", assigned_to="py-tests")
    started = time.monotonic()
    with pytest.raises(WaitTimeout):
        agent.wait_for_resume(suspended, timeout=1)
    assert time.monotonic() - started >= 1


def test_wait_for_resume_says_when_the_workflow_ends_unanswered(agent, admin):
    workflow = new_workflow(agent)
    suspended = agent.suspend_workflow(workflow, "approve", assigned_to="py-tests")
    manager = later(0.5, lambda: admin.abort_workflow(workflow.id))
    with pytest.raises(WorkflowClosedError) as closed:
        agent.wait_for_resume(suspended, timeout=20)
    manager.join()
    assert closed.value.workflow.status == "cancelled"


def test_wait_for_resume_of_an_id_that_is_not_suspended_is_refused(agent):
    with pytest.raises(NotSuspendedError):
        agent.wait_for_resume(new_workflow(agent).id, timeout=1)


def test_wait_for_change_answers_none_when_nothing_changed(agent):
    workflow = new_workflow(agent)
    assert agent.wait_for_change(workflow, wait=1) is None
    agent.advance_workflow(workflow, "noted")
    assert agent.wait_for_change(workflow, wait=1).version == 2


# Events.


class Cutter:
    """A TCP relay to the server that can cut every connection it carries,
    and keeps what each connection sent first (the request head)."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.heads: list[bytes] = []
        self.open: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            first = [True]

            def pipe(src: socket.socket, dst: socket.socket, record: bool) -> None:
                try:
                    while data := src.recv(65536):
                        if record and first[0]:
                            self.heads.append(data)
                            first[0] = False
                        dst.sendall(data)
                except OSError:
                    pass
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

            threading.Thread(target=pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client, False), daemon=True).start()

    def cut(self) -> None:
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.open.clear()


def next_within(events, seconds: float):
    box: list = []
    thread = threading.Thread(target=lambda: box.append(next(events)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"no event within {seconds} s"
    return box[0]


def test_the_event_stream_resumes_after_a_dropped_connection_with_last_event_id(server, agent):
    start = DashboardClient(server.url, token=server.demo["admin_jwt"]).list_events(limit=500)
    after = start.next_after
    while start.events:
        start = DashboardClient(server.url, token=server.demo["admin_jwt"]).list_events(after=after, limit=500)
        after = start.next_after or after
    cutter = Cutter(server.url)
    with DashboardClient(cutter.url, token=server.demo["admin_jwt"], retry=Retry(backoff=0.05)) as admin:
        events = admin.events(after=after, types=["workflow.created"])
        first = new_workflow(agent)
        seen = next_within(events, 10)
        assert (seen.type, seen.workflow_id) == ("workflow.created", first.id)
        cutter.cut()
        second = new_workflow(agent)
        seen = next_within(events, 10)
        assert (seen.type, seen.workflow_id) == ("workflow.created", second.id)
        events.close()
    reconnect = cutter.heads[-1].decode().lower()
    assert f"last-event-id: {first_event_id(admin_of(server), first.id).lower()}" in reconnect


def admin_of(server) -> DashboardClient:
    return DashboardClient(server.url, token=server.demo["admin_jwt"])


def first_event_id(admin: DashboardClient, workflow_id: str) -> str:
    return admin.list_events(workflow_id=workflow_id, types=["workflow.created"]).events[0].id


def test_the_event_pages_of_both_apis(agent, admin):
    workflow = new_workflow(agent)
    agent.advance_workflow(workflow, "noted")
    mine = agent.list_events(workflow_id=workflow.id)
    assert [e.type for e in mine.events] == ["workflow.created", "workflow.advanced"]
    assert [e.version for e in admin.list_events(workflow_id=workflow.id).events] == [1, 2]


# Every other route.


def test_the_reads_of_both_apis(agent, admin):
    workflow = new_workflow(agent, workflow_state={"a": 1})
    assert agent.healthz() == {"status": "ok"} and admin.readyz() == {"status": "ready"}
    page = agent.list_workflows(reference=workflow.reference)
    assert page.total == 1 and page.workflows[0].workflow_state == {"a": 1}
    assert admin.list_workflows(instance_id=workflow.instance_id, reference=workflow.reference).total == 1
    assert admin.get_workflow(workflow.id).created_at.tzinfo is not None
    assert [e.action for e in agent.workflow_history(workflow).entries] == ["created"]
    assert [e.seq for e in admin.workflow_history(workflow.id, after=0, limit=10).entries] == [1]


def test_the_decisions_of_the_dashboard(agent, admin):
    workflow = new_workflow(agent)
    admin.suspend_workflow(workflow.id, "check", assigned_to="py-inbox", due_at="2000-01-01T00:00:00Z")
    assert any(s.id == workflow.id for s in admin.list_suspended())
    inbox = admin.list_decisions(assigned_to="py-inbox", overdue=True, limit=5)
    assert [d.id for d in inbox.decisions] == [workflow.id] and inbox.decisions[0].overdue
    summary = admin.decisions_summary()
    assert any(line.assigned_to == "py-inbox" and line.overdue == 1 for line in summary.by_assignee)
    link = admin.create_approval_link(workflow.id, expires_in=600, note="for the manager")
    assert link.workflow_id == workflow.id and "/ui/approve/" in link.url and link.note == "for the manager"
    resumed = admin.resume_workflow(workflow.id)
    assert resumed.status == "active"


class Receiver:
    """A webhook receiver on loopback that keeps what it got."""

    def __init__(self) -> None:
        got = self.got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                got.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, seconds: float = 15) -> list:
        deadline = time.monotonic() + seconds
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.got) >= count, f"{len(self.got)} deliveries, wanted {count}"
        return self.got


def test_a_delivery_verifies_with_its_secret_and_nothing_else_does(agent, admin):
    receiver = Receiver()
    hook = admin.create_webhook(receiver.url, ["workflow.advanced"], description="py tests")
    try:
        workflow = new_workflow(agent)
        agent.advance_workflow(workflow, "contacted")
        headers, body = receiver.wait(1)[0]
        verify_webhook(hook.secret, headers, body)
        assert json.loads(body)["data"]["workflow_id"] == workflow.id

        with pytest.raises(WebhookVerificationError):
            verify_webhook(hook.secret, headers, body + b" ")
        other = "whsec_" + "A" * 44
        with pytest.raises(WebhookVerificationError):
            verify_webhook(other, headers, body)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(hook.secret, headers, body, now=time.time() + 3600)

        deliveries = admin.list_webhook_deliveries(hook.id, limit=10)
        assert deliveries[0].webhook_id == hook.id
        retried = admin.retry_webhook_delivery(hook.id, deliveries[0].id)
        assert retried.id == deliveries[0].id
        again = receiver.wait(2)[1]
        assert again[0]["webhook-id"] == headers["webhook-id"]

        rotated = admin.rotate_webhook_secret(hook.id)
        assert rotated.secret != hook.secret
        assert admin.update_webhook(hook.id, enabled=False, description=None).enabled is False
        assert admin.get_webhook(hook.id).description is None
        assert hook.id in [w.id for w in admin.list_webhooks()]
    finally:
        admin.delete_webhook(hook.id)
    with pytest.raises(NotFoundError):
        admin.get_webhook(hook.id)


def test_an_api_key_works_as_the_dashboard_credential(server):
    with DashboardClient(server.url, api_key=server.demo["api_key"]) as keyed:
        assert keyed.list_workflows(per_page=1).per_page == 1


def test_a_stream_that_cannot_connect_gives_up_after_the_attempts(server):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with DashboardClient(nowhere, token="t", retry=Retry(attempts=3, backoff=0.01)) as client:
        with pytest.raises(TransportError):
            next(client.events())
