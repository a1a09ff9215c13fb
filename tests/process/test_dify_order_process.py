"""The Service API face writes Dify's bytes: key order restored after the daemon's Go map.

Over loopback against the local runner (the plugin as a subprocess behind the daemon
emulator, demo workspace): every streamed frame equals the frame Dify's own Service API
writes for the event the emulated Dify sent (``Workspace.sent``), and one frame per app
type — with ids and times masked — equals a frame written by hand from Dify 1.15.0's
converters and models. Blocking bodies are Dify's ``json.dumps`` objects, keys in order.
"""

import json
import re

import httpx
import pytest

from devkit.workspace import dify_frame

HEADERS = {"Authorization": "Bearer demo-key"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r'"(?:created_at|finished_at)": ?\d+')

# (hook, route, body, the event name of the hand-written frame, the frame)
CASES = [
    (
        "demochat00000001",
        "chat-messages",
        {"query": "hi", "inputs": {"name": "Ada"}},
        "message",
        '{"event":"message","conversation_id":"ID","message_id":"ID","created_at":T,'
        '"task_id":"ID","id":"ID","answer":"Hello ","from_variable_selector":null}',
    ),
    (
        "democompletion01",
        "completion-messages",
        {"inputs": {"query": "text"}},
        "message_end",
        '{"event":"message_end","message_id":"ID","created_at":T,"task_id":"ID","id":"ID",'
        '"metadata":{"annotation_reply":null,"retriever_resources":[],"usage":{"prompt_tokens":12,'
        '"prompt_unit_price":"0.001","prompt_price_unit":"0.001","prompt_price":"0.0000120",'
        '"completion_tokens":8,"completion_unit_price":"0.002","completion_price_unit":"0.001",'
        '"completion_price":"0.0000160","total_tokens":20,"total_price":"0.0000280",'
        '"currency":"USD","latency":0.42},"reasoning":{}},"files":null}',
    ),
    (
        "demoworkflow0001",
        "workflows/run",
        {"inputs": {"city": "Lyon"}},
        "workflow_finished",
        '{"event":"workflow_finished","workflow_run_id":"ID","task_id":"ID","data":{"id":"ID",'
        '"workflow_id":"ID","status":"succeeded","outputs":{"result":"Sunny in Lyon, 21 °C"},'
        '"error":null,"elapsed_time":0.42,"total_tokens":20,"total_steps":3,'
        '"created_by":{"id":"end-user","user":"DEFAULT-USER"},"created_at":T,"finished_at":T,'
        '"exceptions_count":0,"files":[]}}',
    ),
    (
        "demoflow00000001",
        "chat-messages",
        {"query": "hi", "inputs": {}},
        "node_finished",
        '{"event":"node_finished","conversation_id":"ID","message_id":"ID","created_at":T,'
        '"task_id":"ID","workflow_run_id":"ID","data":{"id":"ID-1","node_id":"1700000000001",'
        '"node_type":"start","title":"Start","index":1,"predecessor_node_id":null,'
        '"inputs":null,"inputs_truncated":false,"process_data":null,'
        '"process_data_truncated":false,"outputs":{},"outputs_truncated":false,'
        '"status":"succeeded","error":null,"elapsed_time":0.01,"execution_metadata":null,'
        '"created_at":T,"finished_at":T,"files":[],"iteration_id":null,"loop_id":null}}',
    ),
]


def mask(frame: str) -> str:
    return TIME.sub(lambda m: m.group(0).rstrip("0123456789") + "T", UUID.sub("ID", frame))


def frames(text: str) -> list[str]:
    return [f[len("data: ") :] for f in text.split("\n\n") if f.startswith("data: ")]


@pytest.mark.parametrize(("hook", "route", "body", "name", "expected"), CASES)
def test_streams_are_the_bytes_dify_writes(runner, hook, route, body, name, expected):
    base, bridge = runner
    r = httpx.post(
        f"{base}/e/{hook}/v1/{route}",
        json={**body, "user": "u", "response_mode": "streaming"},
        headers=HEADERS,
        timeout=20,
    )
    assert r.status_code == 200, r.text
    sent = bridge.workspace.sent[-1]
    assert r.text == "".join(dify_frame(e) for e in sent)  # every frame, byte for byte
    (frame,) = [f for f in frames(r.text) if json.loads(f)["event"] == name][:1]
    assert mask(frame) == expected


def test_blocking_bodies_are_difys_objects_in_difys_order(runner):
    base, _ = runner
    chat = httpx.post(
        f"{base}/e/demochat00000001/v1/chat-messages",
        json={"query": "hi", "inputs": {"name": "Ada"}, "user": "u"},
        headers=HEADERS,
        timeout=20,
    )
    # chat/generate_response_converter.py, then helper.compact_generate_response: json.dumps
    assert chat.headers["content-type"] == "application/json; charset=utf-8"
    assert mask(chat.text) == (
        '{"event": "message", "task_id": "ID", "id": "ID", "message_id": "ID", '
        '"conversation_id": "ID", "mode": "chat", "answer": "Hello Ada! You said: hi", '
        '"metadata": {"annotation_reply": null, "retriever_resources": [], "usage": {"prompt_tokens": 12, '
        '"prompt_unit_price": "0.001", "prompt_price_unit": "0.001", '
        '"prompt_price": "0.0000120", "completion_tokens": 8, "completion_unit_price": '
        '"0.002", "completion_price_unit": "0.001", "completion_price": "0.0000160", '
        '"total_tokens": 20, "total_price": "0.0000280", "currency": "USD", "latency": 0.42}, '
        '"reasoning": {}}, '
        '"created_at": T}'
    )
    workflow = httpx.post(
        f"{base}/e/demoworkflow0001/v1/workflows/run",
        json={"inputs": {"city": "Lyon"}, "user": "u"},
        headers=HEADERS,
        timeout=20,
    )
    assert workflow.headers["content-type"] == "application/json; charset=utf-8"
    assert mask(workflow.text) == (
        '{"task_id": "ID", "workflow_run_id": "ID", "data": {"id": "ID", "workflow_id": "ID", '
        '"status": "succeeded", "outputs": {"result": "Sunny in Lyon, 21 \\u00b0C"}, '
        '"error": null, "elapsed_time": 0.42, "total_tokens": 20, "total_steps": 3, '
        '"created_at": T, "finished_at": T}}'
    )
