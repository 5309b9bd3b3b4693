"""An agent's whole loop against HydraCore's /mcp, with the Python MCP SDK
over streamable HTTP: tools listed, a workflow created, a person asked
with a schema, a wrong answer refused by the dashboard route, the right
one answered, wait_for_human returning it, the workflow completed; and
another instance's key seeing none of it.

Environment: HC_URL (the server), HC_PROXY_KEY, HC_OTHER_PROXY_KEY (a key
of another instance), HC_ADMIN_JWT (an admin of the first key's tenant).
Exits non-zero at the first thing that is not as it should be.
"""

import asyncio
import json
import os
import uuid
from contextlib import asynccontextmanager

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

URL = os.environ["HC_URL"]
KEY = os.environ["HC_PROXY_KEY"]
OTHER_KEY = os.environ["HC_OTHER_PROXY_KEY"]
ADMIN = {"Authorization": f"Bearer {os.environ['HC_ADMIN_JWT']}"}

TOOLS = {
    "create_workflow", "get_workflow", "list_workflows", "advance_workflow",
    "ask_human", "wait_for_human", "complete_workflow",
}
ANSWER_SCHEMA = {
    "type": "object",
    "required": ["approved"],
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
}


@asynccontextmanager
async def connect(key):
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(90.0)
    )
    async with http, streamable_http_client(f"{URL}/mcp", http_client=http) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


async def call(session, tool, arguments):
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {result.structured_content}"
    return result.structured_content


async def refused(session, tool, arguments, status):
    result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool} should have been refused: {result.structured_content}"
    error = result.structured_content
    assert error["status"] == status, error
    return error


async def main():
    async with connect(KEY) as agent:
        listed = await agent.list_tools()
        names = {tool.name for tool in listed.tools}
        assert names == TOOLS, names
        ask = next(t for t in listed.tools if t.name == "ask_human")
        for field in ("step", "question", "resume_schema", "assigned_to", "due_at"):
            assert field in ask.input_schema["properties"], field
        print(f"tools listed: {sorted(names)}")

        created = await call(agent, "create_workflow", {
            "customer_id": "160c0c4b-9966-4dc1-a916-8407eb10d74e",
            "workflow_type": "approval",
            "title": "Refund for order 1042",
            "reference": f"order-1042-{uuid.uuid4().hex[:8]}",
        })
        workflow_id, version = created["id"], created["version"]
        assert created["status"] == "active"
        print(f"created {workflow_id} at version {version}")

        errors = await refused(agent, "create_workflow", {"workflow_type": "refund"}, 422)
        locs = [item["loc"] for item in errors["detail"]]
        assert ["arguments", "customer_id"] in locs and ["arguments", "workflow_type"] in locs, locs

        question = {
            "workflow_id": workflow_id,
            "expected_version": version,
            "step": "approve_refund",
            "question": "Refund 120 EUR for order 1042?",
            "payload": {"amount": 120, "currency": "EUR"},
            "resume_schema": ANSWER_SCHEMA,
            "assigned_to": "support-leads",
            "due_at": "2099-01-01T00:00:00Z",
        }
        asked = await call(agent, "ask_human", question)
        assert asked["decision_id"] == workflow_id and asked["status"] == "suspended", asked
        again = await call(agent, "ask_human", question)
        # The same decision; a retry may hand out another link to it.
        same = lambda answer: {k: v for k, v in answer.items() if k != "approval_url"}
        assert same(again) == same(asked), (again, asked)
        assert "/ui/approve/" in asked["approval_url"], asked
        print(f"asked: {asked['message']} (a retry answered the same decision)")

        waiting = await call(agent, "wait_for_human", {"workflow_id": workflow_id, "timeout_seconds": 1})
        assert waiting["status"] == "waiting", waiting

        async with httpx2.AsyncClient(base_url=URL, headers=ADMIN) as admin:
            inbox = (await admin.get("/v1/decisions", params={"assigned_to": "support-leads"})).json()
            decision = next(d for d in inbox["decisions"] if d["id"] == workflow_id)
            assert decision["resume_schema"] == ANSWER_SCHEMA, decision
            assert decision["suspend_payload"]["question"] == question["question"], decision

            wrong = await admin.post(f"/v1/workflows/{workflow_id}/resume",
                                     json={"resume_data": {"approved": "yes"}})
            assert wrong.status_code == 422, wrong.text
            assert wrong.json()["detail"][0]["loc"] == ["body", "resume_data", "approved"], wrong.text
            print("a wrong answer was refused by the dashboard route: 422")

            async def answer_soon():
                await asyncio.sleep(1)
                right = await admin.post(f"/v1/workflows/{workflow_id}/resume",
                                         json={"resume_data": {"approved": True, "note": "ok"}})
                assert right.status_code == 200, right.text

            waited, _ = await asyncio.gather(
                call(agent, "wait_for_human", {"workflow_id": workflow_id, "timeout_seconds": 20}),
                answer_soon(),
            )
        assert waited["status"] == "answered", waited
        assert waited["resume_data"] == {"approved": True, "note": "ok"}, waited
        print(f"wait_for_human: {json.dumps(waited['resume_data'])}")

        record = await call(agent, "get_workflow", {"workflow_id": workflow_id})
        stale = await refused(agent, "advance_workflow", {
            "workflow_id": workflow_id, "expected_version": version, "action": "noted",
        }, 412)
        print(f"a stale expected_version: {stale['detail']}")

        done = await call(agent, "complete_workflow", {
            "workflow_id": workflow_id,
            "expected_version": record["version"],
            "action_detail": {"refunded": True},
        })
        assert done["status"] == "completed", done
        print(f"completed at version {done['version']}")

        resource = await agent.read_resource(f"hydracore://workflows/{workflow_id}")
        assert json.loads(resource.contents[0].text)["status"] == "completed"
        history = await agent.read_resource(f"hydracore://workflows/{workflow_id}/history")
        actions = [e["action"] for e in json.loads(history.contents[0].text)["entries"]]
        assert actions == ["created", "suspended", "resumed", "completed"], actions
        print(f"history resource: {actions}")

    async with connect(OTHER_KEY) as other:
        await refused(other, "get_workflow", {"workflow_id": workflow_id}, 404)
        listed = await call(other, "list_workflows", {})
        assert listed["total"] == 0, listed
        try:
            await other.read_resource(f"hydracore://workflows/{workflow_id}")
        except Exception as e:  # the SDK raises the server's error
            assert "not found" in str(e).lower(), e
        else:
            raise AssertionError("another instance read the workflow")
        print("another instance's key sees none of it")

    async with httpx2.AsyncClient() as plain:
        unauthorized = await plain.post(f"{URL}/mcp", json={}, headers={"Authorization": "Bearer hcp_wrong"})
        assert unauthorized.status_code == 401, unauthorized.status_code
    print("python mcp SDK over streamable HTTP: the whole loop passed")


asyncio.run(main())
