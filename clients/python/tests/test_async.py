"""The async clients: the same calls, awaited."""

import asyncio

import pytest

from hydracore import AsyncAgentClient, AsyncDashboardClient, ConflictError

from .test_client import CUSTOMER

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
