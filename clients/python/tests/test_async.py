"""The async clients: the same calls, awaited."""

import asyncio
import uuid

import httpx
import pytest

from hydracore import AsyncAgentClient, AsyncDashboardClient, ConflictError, Retry

from .test_client import CUSTOMER, Cutter

pytestmark = pytest.mark.anyio


async def test_an_async_agent_waits_for_an_async_admin(server):
    async with AsyncAgentClient(
        server.url, server.demo["proxy_key"], server.demo["instance_id"]
    ) as agent, AsyncDashboardClient(server.url, token=server.demo["admin_jwt"]) as admin:
        workflow = await agent.create_workflow(CUSTOMER, "rent_arrears", workflow_state={"due": 1200})
        workflow = await agent.advance_workflow(workflow, "contacted", stage="chasing")
        suspended = await agent.suspend_workflow(
            workflow,
            "approve_payment_plan",
            assigned_to="py-async",
            resume_schema={"type": "object", "required": ["approved"]},
        )

        async def manager() -> None:
            await asyncio.sleep(0.5)
            inbox = await admin.list_decisions(assigned_to="py-async")
            await admin.resume_workflow(inbox.decisions[0].id, {"approved": True})

        answer, _ = await asyncio.gather(agent.wait_for_resume(suspended, timeout=20), manager())
        assert answer == {"approved": True}
        with pytest.raises(ConflictError) as stale:
            await agent.advance_workflow(workflow, "late")
        assert stale.value.current_version == 4
        done = await agent.advance_workflow(await agent.get_workflow(workflow), "done", status="completed")
        assert done.status == "completed"

        seen = []
        async for event in admin.events(workflow_id=workflow.id):
            seen.append(event.type)
            if len(seen) == 5:
                break
        assert seen == [
            "workflow.created",
            "workflow.advanced",
            "workflow.suspended",
            "workflow.resumed",
            "workflow.completed",
        ]


class AsyncFaults(httpx.AsyncBaseTransport):
    """The first request passes on to the server, and its answer is lost (503)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("idempotency-key", ""))
        response = await self.inner.handle_async_request(request)
        if len(self.keys) == 1:
            await response.aread()
            await response.aclose()
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "lost"})
        return response


async def test_an_async_create_whose_answer_was_lost_makes_one_workflow(server):
    faults = AsyncFaults()
    reference = f"async-lost-{uuid.uuid4()}"
    async with AsyncAgentClient(
        server.url,
        server.demo["proxy_key"],
        server.demo["instance_id"],
        http_client=httpx.AsyncClient(transport=faults),
    ) as agent:
        created = await agent.create_workflow(CUSTOMER, "lead", reference=reference)
        listed = await agent.list_workflows(reference=reference)
    create, retry, list_call = faults.keys
    assert create == retry != "" and list_call == ""
    assert [w.id for w in listed.workflows] == [created.id]


async def test_the_async_event_stream_resumes_after_a_dropped_connection(server):
    cutter = Cutter(server.url)
    async with AsyncAgentClient(
        server.url, server.demo["proxy_key"], server.demo["instance_id"]
    ) as agent, AsyncAgentClient(
        cutter.url, server.demo["proxy_key"], server.demo["instance_id"], retry=Retry(backoff=0.05)
    ) as via_cutter:
        first = await agent.create_workflow(CUSTOMER, "lead")
        events = via_cutter.events(workflow_id=first.id)
        seen = await asyncio.wait_for(events.__anext__(), 10)
        assert seen.type == "workflow.created"
        cutter.cut()
        await agent.advance_workflow(first, "noted")
        again = await asyncio.wait_for(events.__anext__(), 10)
        assert (again.type, again.version) == ("workflow.advanced", 2)
        await events.aclose()
    assert f"last-event-id: {seen.id}".lower() in cutter.heads[-1].decode().lower()
