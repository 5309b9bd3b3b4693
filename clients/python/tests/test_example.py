"""The README's agent example, run as written: it waits until a manager
answers with the README's dashboard snippet, then completes."""

import os
import queue
import re
import subprocess
import sys
import threading

import pytest

from hydracore import ValidationError

from .conftest import REPO

README = (REPO / "clients/python/README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def run(code: str, server) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "clients/python/src"),
        "HYDRACORE_URL": server.url,
        "HYDRACORE_PROXY_KEY": server.demo["proxy_key"],
        "HYDRACORE_INSTANCE_ID": server.demo["instance_id"],
        "HYDRACORE_ADMIN_JWT": server.demo["admin_jwt"],
    }
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def first_line(process: subprocess.Popen, timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        pytest.fail(f"the example printed nothing: {process.stderr.read()}")


def test_the_readme_agent_waits_for_the_manager_and_completes_with_the_approved_plan(server, admin):
    agent_code, manager_code = BLOCKS[0], BLOCKS[1]
    agent = run(agent_code, server)
    waiting = first_line(agent, 30)
    workflow_id = re.search(r"workflow ([0-9a-f-]{36})", waiting).group(1)

    decision = next(d for d in admin.list_decisions(assigned_to="arrears-managers").decisions if d.id == workflow_id)
    assert decision.suspended_step == "approve_payment_plan"
    assert decision.resume_schema["required"] == ["approved"]
    with pytest.raises(ValidationError) as refused:
        admin.resume_workflow(workflow_id, {"approved": "yes"})
    assert refused.value.status == 422
    assert [item["loc"] for item in refused.value.detail] == [["body", "resume_data", "approved"]]
    assert agent.poll() is None, "the agent still waits after a refused answer"

    manager = run("import os\n" + manager_code, server)
    assert manager.wait(timeout=30) == 0, manager.stderr.read()
    out, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    assert f"workflow {workflow_id} is completed" in out

    record = admin.get_workflow(workflow_id)
    assert record.status == "completed"
    assert record.workflow_state == {
        "amount_due": 1200,
        "contacted_via": "sms",
        "approved": True,
        "plan": [400, 400, 400],
    }
    assert [entry.action for entry in record.history] == [
        "created",
        "contacted",
        "suspended",
        "resumed",
        "plan_agreed",
    ]
