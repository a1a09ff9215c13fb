"""Dify's key order, event by event (bridge.app.dify_order).

Each expected frame is written by hand from Dify 1.15.0's converters and models
(docs/dify-order.md lists the sources): the event reaches the plugin with its keys sorted,
as the daemon's Go map re-encodes it, and must come out as Dify's own Service API writes it.
"""

import json

import pytest

from bridge.app.aggregate import Aggregator
from bridge.app.dify_order import KNOWN_EVENTS, framer, in_dify_order, orderer
from bridge.app.gateway import AppKind
from bridge.protocols.service_api import _frames
from bridge.transport.responses import dumps
from bridge.transport.sse import PING
from devkit.workspace import go_reencode

CHAT, COMPLETION, WORKFLOW = AppKind.CHAT, AppKind.COMPLETION, AppKind.WORKFLOW
C = '"conversation_id":"c1","message_id":"m1","created_at":1705398420'  # chat envelope
M = '"message_id":"m1","created_at":1705398420'  # completion envelope
USAGE = (
    '{"prompt_tokens":12,"prompt_unit_price":"0.001","prompt_price_unit":"0.001",'
    '"prompt_price":"0.0000120","completion_tokens":8,"completion_unit_price":"0.002",'
    '"completion_price_unit":"0.001","completion_price":"0.0000160","total_tokens":20,'
    '"total_price":"0.0000280","currency":"USD","latency":0.42,"time_to_first_token":0.1,'
    '"time_to_generate":0.3}'
)
RESOURCE = (
    '{"position":1,"dataset_id":"d1","dataset_name":"Docs","document_id":"doc1",'
    '"document_name":"a.md","data_source_type":"upload_file","segment_id":"s1",'
    '"retriever_from":"api","score":0.9,"hit_count":1,"word_count":50,"segment_position":1,'
    '"index_node_hash":"h","content":"text","page":null,"doc_metadata":null,"title":null,'
    '"files":null,"summary":null}'
)
FILE_INFO = (
    '{"related_id":"f1","extension":".png","filename":"a.png","size":10,'
    '"mime_type":"image/png","transfer_method":"local_file","type":"image","url":"/f",'
    '"upload_file_id":"u1","remote_url":null}'
)
FILE = (  # graphon File.to_dict()
    '{"dify_model_identity":"__dify__file__","id":null,"type":"image",'
    '"transfer_method":"tool_file","remote_url":null,"reference":"r1","filename":"a.png",'
    '"extension":".png","mime_type":"image/png","size":10,"related_id":"r1","url":"/f"}'
)
NODE_HEAD = (
    '"id":"e1","node_id":"1711","node_type":"llm","title":"LLM","index":2,'
    '"predecessor_node_id":"1710","inputs":{"q":"x"},"inputs_truncated":false'
)
NODE_RESULT = (
    '"process_data":null,"process_data_truncated":false,"outputs":{"text":"hi"},'
    '"outputs_truncated":false,"status":"succeeded","error":null,"elapsed_time":0.5,'
    '"execution_metadata":null,"created_at":1705398420,"finished_at":1705398421,"files":[],'
    '"iteration_id":null,"loop_id":null'
)
STEP_COMPLETED = (
    '"id":"e5","node_id":"1750","node_type":"iteration","title":"Each",'
    '"outputs":{"output":[1]},"outputs_truncated":false,"created_at":1705398420,"extras":{},'
    '"inputs":{"items":[1]},"inputs_truncated":false,"status":"succeeded","error":null,'
    '"elapsed_time":0.5,"total_tokens":0,"execution_metadata":{},"finished_at":1705398421,'
    '"steps":1'
)
REASON = (
    '{"TYPE":"human_input_required","form_id":"f1","form_content":"Approve?",'
    '"inputs":[{"output_variable_name":"comment","type":"paragraph",'
    '"default":{"type":"constant","selector":[],"value":""}}],'
    '"actions":[{"id":"ok","title":"OK","button_style":"primary"}],"node_id":"1760",'
    '"node_title":"Approval","resolved_default_values":{},"form_token":"tok",'
    '"approval_channels":[],"expiration_time":1705484820}'
)

# (kind, the frame Dify's Service API writes)
FRAMES = [
    # protocol.md §1.5's chat pair, and every chat-type event (task_entities.py)
    (CHAT, f'{{"event":"message",{C},"task_id":"t1","id":"m1","answer":"Hi",'
           '"from_variable_selector":null}'),
    (CHAT, f'{{"event":"message_end",{C},"task_id":"t1","id":"m1","metadata":'
           f'{{"annotation_reply":{{"id":"a1","account":{{"id":"u1","name":"Ada"}}}},'
           f'"retriever_resources":[{RESOURCE}],"usage":{USAGE},"reasoning":{{}}}},'
           f'"files":[{FILE_INFO}]}}'),
    # a chatflow's message_end files are File.to_dict()s
    (CHAT, f'{{"event":"message_end",{C},"task_id":"t1","id":"m1","metadata":'
           f'{{"annotation_reply":null,"retriever_resources":[],"usage":{USAGE},'
           f'"reasoning":{{"1711":"First, think."}}}},"files":[{FILE}]}}'),
    (CHAT, f'{{"event":"agent_message",{C},"task_id":"t1","id":"m1","answer":"Hi"}}'),
    (CHAT, f'{{"event":"agent_thought",{C},"task_id":"t1","id":"th1","position":1,'
           '"thought":"look","observation":"","tool":"search","tool_labels":{},'
           '"tool_input":"{}","message_files":[]}'),
    (CHAT, f'{{"event":"message_file",{C},"task_id":"t1","id":"f1","type":"image",'
           '"belongs_to":"assistant","url":"/files/f1"}'),
    (CHAT, f'{{"event":"message_replace",{C},"task_id":"t1","answer":"Sorry.",'
           '"reason":"output_moderation"}'),
    (CHAT, f'{{"event":"tts_message",{C},"task_id":"t1","audio":"AAAA"}}'),
    (CHAT, f'{{"event":"tts_message_end",{C},"task_id":"t1","audio":""}}'),
    # a chatflow: the chat envelope, then task_id, then the model's workflow_run_id
    (CHAT, f'{{"event":"workflow_started",{C},"task_id":"t1","workflow_run_id":"r1",'
           '"data":{"id":"r1","workflow_id":"w1","inputs":{"city":"Lyon"},'
           '"created_at":1705398420,"reason":"initial"}}'),
    (CHAT, f'{{"event":"reasoning_chunk",{C},"task_id":"t1","data":{{"message_id":"m1",'
           '"reasoning":"First, ","node_id":"1711","is_final":false}}'),
    # completion
    (COMPLETION, f'{{"event":"message",{M},"task_id":"t1","id":"m1","answer":"Hi",'
                 '"from_variable_selector":null}'),
    (COMPLETION, f'{{"event":"message_end",{M},"task_id":"t1","id":"m1","metadata":'
                 f'{{"retriever_resources":[],"usage":{USAGE}}},"files":null}}'),
    # workflow: envelope event, workflow_run_id; then task_id
    (WORKFLOW, '{"event":"text_chunk","workflow_run_id":"r1","task_id":"t1",'
               '"data":{"text":"partial","from_variable_selector":["1712","text"]}}'),
    (WORKFLOW, '{"event":"workflow_started","workflow_run_id":"r1","task_id":"t1",'
               '"data":{"id":"r1","workflow_id":"w1","inputs":{},"created_at":1705398420,'
               '"reason":"initial"}}'),
    (WORKFLOW, '{"event":"node_started","workflow_run_id":"r1","task_id":"t1","data":{'
               f'{NODE_HEAD},"created_at":1705398420,"extras":{{}},"iteration_id":null,'
               '"loop_id":null,"agent_strategy":{"name":"react","icon":null}}}'),
    (WORKFLOW, '{"event":"node_finished","workflow_run_id":"r1","task_id":"t1","data":{'
               f'{NODE_HEAD},{NODE_RESULT}}}}}'),
    (WORKFLOW, '{"event":"node_finished","workflow_run_id":"r1","task_id":"t1","data":{'
               f'{NODE_HEAD},{NODE_RESULT.replace('"files":[]', f'"files":[{FILE}]')}}}}}'),
    (WORKFLOW, '{"event":"node_retry","workflow_run_id":"r1","task_id":"t1","data":{'
               f'{NODE_HEAD},{NODE_RESULT},"retry_index":1}}}}'),
    (WORKFLOW, '{"event":"iteration_started","workflow_run_id":"r1","task_id":"t1","data":'
               '{"id":"e5","node_id":"1750","node_type":"iteration","title":"Each",'
               '"created_at":1705398420,"extras":{},"metadata":{},"inputs":{"items":[1]},'
               '"inputs_truncated":false}}'),
    (WORKFLOW, '{"event":"iteration_next","workflow_run_id":"r1","task_id":"t1","data":'
               '{"id":"e5","node_id":"1750","node_type":"iteration","title":"Each","index":1,'
               '"created_at":1705398420,"extras":{}}}'),
    (WORKFLOW, '{"event":"iteration_completed","workflow_run_id":"r1","task_id":"t1",'
               f'"data":{{{STEP_COMPLETED}}}}}'),
    (WORKFLOW, '{"event":"loop_started","workflow_run_id":"r1","task_id":"t1","data":'
               '{"id":"e6","node_id":"1751","node_type":"loop","title":"Again",'
               '"created_at":1705398420,"extras":{},"metadata":{},"inputs":{},'
               '"inputs_truncated":false}}'),
    (WORKFLOW, '{"event":"loop_next","workflow_run_id":"r1","task_id":"t1","data":'
               '{"id":"e6","node_id":"1751","node_type":"loop","title":"Again","index":1,'
               '"created_at":1705398420,"pre_loop_output":null,"extras":{}}}'),
    (WORKFLOW, '{"event":"loop_completed","workflow_run_id":"r1","task_id":"t1",'
               f'"data":{{{STEP_COMPLETED}}}}}'),
    (WORKFLOW, '{"event":"reasoning_chunk","workflow_run_id":"r1","task_id":"t1",'
               '"data":{"message_id":null,"reasoning":"","node_id":"1711","is_final":true}}'),
    (WORKFLOW, '{"event":"agent_log","workflow_run_id":"r1","task_id":"t1","data":'
               '{"node_execution_id":"e1","id":"l1","label":"step","parent_id":null,'
               '"error":null,"status":"success","data":{},"metadata":{},"node_id":"1711"}}'),
    (WORKFLOW, '{"event":"workflow_finished","workflow_run_id":"r1","task_id":"t1","data":'
               '{"id":"r1","workflow_id":"w1","status":"succeeded","outputs":{"text":"hi"},'
               '"error":null,"elapsed_time":1.25,"total_tokens":20,"total_steps":3,'
               '"created_by":{"id":"u1","user":"DEFAULT-USER"},"created_at":1705398420,'
               f'"finished_at":1705398421,"exceptions_count":0,"files":[{FILE}]}}}}'),
    (WORKFLOW, '{"event":"workflow_finished","workflow_run_id":"r1","task_id":"t1","data":'
               '{"id":"r1","workflow_id":"w1","status":"failed","outputs":null,'
               '"error":"boom","elapsed_time":1.25,"total_tokens":0,"total_steps":1,'
               '"created_by":{"id":"a1","name":"Ada","email":"ada@example.com"},'
               '"created_at":1705398420,"finished_at":1705398421,"exceptions_count":0,'
               '"files":[]}}'),
    (WORKFLOW, '{"event":"human_input_required","workflow_run_id":"r1","task_id":"t1",'
               '"data":{"form_id":"f1","node_id":"1760","node_title":"Approval",'
               '"form_content":"Approve?","inputs":[{"output_variable_name":"pick",'
               '"type":"select","option_source":{"type":"constant","selector":[],'
               '"value":["a","b"]}}],"actions":[{"id":"ok","title":"OK",'
               '"button_style":"primary"}],"display_in_ui":true,"form_token":"tok",'
               '"approval_channels":[],"resolved_default_values":{},'
               '"expiration_time":1705484820}}'),
    (WORKFLOW, '{"event":"workflow_paused","workflow_run_id":"r1","task_id":"t1","data":'
               '{"workflow_run_id":"r1","paused_nodes":["1760"],"outputs":{},'
               f'"reasons":[{REASON}],"status":"paused","created_at":1705398420,'
               '"elapsed_time":0.5,"total_tokens":20,"total_steps":3}}'),
    (WORKFLOW, '{"event":"human_input_form_filled","workflow_run_id":"r1","task_id":"t1",'
               '"data":{"node_id":"1760","node_title":"Approval","rendered_content":"Yes.",'
               '"action_id":"ok","action_text":"OK","submitted_data":{"comment":"fine"}}}'),
    (WORKFLOW, '{"event":"human_input_form_timeout","workflow_run_id":"r1","task_id":"t1",'
               '"data":{"node_id":"1760","node_title":"Approval",'
               '"expiration_time":1705484820}}'),
    # error: the envelope, then the code's dict of _error_to_stream_response; no task_id
    (CHAT, f'{{"event":"error",{C},"code":"invalid_param","status":400,'
           '"message":"name is required"}'),
    (CHAT, f'{{"event":"error",{C},"code":"provider_quota_exceeded","message":"Your quota",'
           '"status":400}'),
    (COMPLETION, f'{{"event":"error",{M},"code":"completion_request_error","status":400,'
                 '"message":"rate limited"}'),
    (WORKFLOW, '{"event":"error","workflow_run_id":"r1","code":"internal_server_error",'
               '"message":"Internal Server Error, please contact support.","status":500}'),
]  # fmt: skip


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def as_received(frame: str):
    """What the plugin gets for ``frame``: the daemon's Go map hop (keys sorted)."""
    return go_reencode(json.loads(frame))


@pytest.mark.parametrize(
    ("kind", "frame"), FRAMES, ids=[f"{k.value}-{json.loads(f)['event']}" for k, f in FRAMES]
)
def test_each_event_comes_out_as_dify_writes_it(kind, frame):
    received = as_received(frame)
    assert list(received) == sorted(received)  # the test really starts from sorted keys
    assert compact(in_dify_order(received, kind)) == frame
    assert compact(orderer(kind)(received)) == frame


def test_every_event_of_dify_115_has_an_order():
    tested = {json.loads(frame)["event"] for _, frame in FRAMES}
    # text_replace is declared but never sent (daemon-notes §D); ping never reaches a plugin
    assert tested | {"text_replace"} == KNOWN_EVENTS


def test_future_fields_follow_in_arrival_order_and_unknown_events_keep_theirs():
    received = as_received(
        f'{{"event":"message",{C},"task_id":"t1","id":"m1","answer":"Hi",'
        '"from_variable_selector":null,"zeta":1,"alpha":2}'
    )
    assert compact(in_dify_order(received, CHAT)) == (
        f'{{"event":"message",{C},"task_id":"t1","id":"m1","answer":"Hi",'
        '"from_variable_selector":null,"alpha":2,"zeta":1}'
    )
    future = {"b": 1, "event": "quantum_started", "a": {"z": 1, "y": 2}}
    assert in_dify_order(future, CHAT) is future  # as it came, not even copied
    assert list(in_dify_order({"event": "text_chunk"}, WORKFLOW)) == ["event"]  # keys missing


def test_values_are_untouched_whole_floats_stay_as_the_daemon_left_them():
    frame = (
        '{"event":"workflow_finished","workflow_run_id":"r1","task_id":"t1","data":'
        '{"id":"r1","workflow_id":"w1","status":"succeeded","outputs":{"b":2.0,"a":"é<&>"},'
        '"error":null,"elapsed_time":2.0,"total_tokens":0,"total_steps":1,"created_by":{},'
        '"created_at":1,"finished_at":2,"exceptions_count":0,"files":[]}}'
    )
    received = as_received(frame)
    ordered = in_dify_order(received, WORKFLOW)
    assert ordered == received  # the same object, only the key order differs
    # Dify wrote 2.0, the daemon's float64 hop made it 2: not restorable; an app's own
    # objects (outputs) keep the daemon's sorted order — Dify's was the app's
    assert compact(ordered) == frame.replace("2.0", "2").replace(
        '{"b":2,"a":"é<&>"}', '{"a":"é<&>","b":2}'
    )


def test_stream_frames_are_dify_ordered_and_pings_untouched():
    events = [as_received(frame) for kind, frame in FRAMES if kind is WORKFLOW][:3]
    frames = list(_frames(iter([events[0], PING, *events[1:]]), WORKFLOW))
    expected = [f"data: {frame}\n\n".encode() for kind, frame in FRAMES if kind is WORKFLOW][:3]
    assert frames == [expected[0], b"event: ping\n\n", *expected[1:]]


@pytest.mark.parametrize(
    ("kind", "frame"), FRAMES, ids=[f"{k.value}-{json.loads(f)['event']}" for k, f in FRAMES]
)
def test_framer_writes_each_event_as_dify_writes_it(kind, frame):
    assert framer(kind)(as_received(frame)) == f"data: {frame}\n\n".encode()


def test_floats_are_written_as_orjson_writes_them_wherever_they_are():
    frame = (
        '{"event":"node_finished","workflow_run_id":"r1","task_id":"t1","data":{'
        f"{NODE_HEAD},{NODE_RESULT}}}}}"
    ).replace('"elapsed_time":0.5', '"elapsed_time":0.000015')  # orjson; json: 1.5e-05
    assert framer(WORKFLOW)(as_received(frame)) == f"data: {frame}\n\n".encode()
    # a message holds no float in Dify 1.15, but a field a newer Dify adds may
    future = as_received(
        f'{{"event":"message",{C},"task_id":"t1","id":"m1","answer":"Hi",'
        '"from_variable_selector":null,"score":1e-7}'
    )
    assert framer(CHAT)(future).endswith(b'"score":1e-7}\n\n')  # json would write 1e-07
    chunk = as_received(
        '{"event":"text_chunk","workflow_run_id":"r1","task_id":"t1",'
        '"data":{"text":"x","from_variable_selector":null,"weight":1.5e21}}'
    )
    assert framer(WORKFLOW)(chunk).endswith(b'"weight":1.5e21}}\n\n')  # json: 1.5e+21
    unknown = {"event": "quantum_started", "spin": 2.5e-06}
    assert framer(WORKFLOW)(unknown) == b'data: {"event":"quantum_started","spin":2.5e-6}\n\n'


def test_blocking_chat_body_in_difys_order_and_spacing():
    aggregator = Aggregator()
    for frame in (FRAMES[0][1], FRAMES[1][1]):
        aggregator.feed(as_received(frame))
    body = dumps(aggregator.result())
    metadata = json.loads(FRAMES[1][1])["metadata"]
    # chat/generate_response_converter.py convert_blocking_full_response, json.dumps defaults
    assert body == (
        '{"event": "message", "task_id": "t1", "id": "m1", "message_id": "m1", '
        '"conversation_id": "c1", "mode": "chat", "answer": "Hi", '
        f'"metadata": {json.dumps(metadata)}, "created_at": 1705398420}}'
    )
    assert body.index('"annotation_reply"') < body.index('"retriever_resources"')
    assert body.index('"retriever_resources"') < body.index('"usage"')


def test_blocking_paused_workflow_reasons_in_difys_order():
    aggregator = Aggregator()
    for kind, frame in FRAMES:
        if kind is WORKFLOW and '"event":"workflow_paused"' in frame:
            aggregator.feed(as_received(frame))
    data = aggregator.result()["data"]
    assert list(data)[-2:] == ["paused_nodes", "reasons"]
    assert compact(data["reasons"]) == f"[{REASON}]"
