"""Reply channels without I/O: skip, preset, target, ack, settings checks; splitting; mrkdwn.

Deliveries are the platforms' documented shapes (``devkit.deliver.payload`` builds the common
case; the tests vary it the way bots, edits and other events differ).
"""

from __future__ import annotations

import copy
import json

import pytest

from bridge import replies
from bridge.replies import Credentials, Preset, ReplyFailed, Target
from bridge.replies.base import FAILED_MESSAGE, OWN_MARKER, Outcome, message
from bridge.replies.text import TRUNCATED, mrkdwn, split, units
from devkit.deliver import payload


def doc(platform: str, text: str = "hello bridge", **headers: str):
    body, extra = payload(platform, text, now=1_750_000_000.0)
    merged = {k.lower(): v for k, v in extra.items()} | {
        k.replace("_", "-"): v for k, v in headers.items()
    }
    return {"body": body, "headers": merged, "query": {}, "method": "POST", "path": "/webhook"}


def with_body(document, change):
    changed = copy.deepcopy(document)
    change(changed["body"])
    return changed


CH = {name: replies.channel(name) for name in replies.CHANNELS}


# -- common ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in replies.CHANNELS if n != "callback"])
def test_a_plain_user_message_runs_with_a_preset_and_a_target(name):
    document = doc(name)
    channel = CH[name]
    assert channel.skip(document) is None
    preset = channel.preset(document)
    assert preset.query == "hello bridge"
    assert preset.conversation_key
    target = channel.target(document)
    assert target.channel == name
    assert Target.from_json(json.loads(json.dumps(target.to_json()))) == target


@pytest.mark.parametrize("name", replies.CHANNELS)
def test_odd_documents_never_raise(name):
    channel = CH[name]
    for body in (None, "text", [], {}, {"event": "x"}, {"events": "x"}, {"entry": [1]}):
        document = {"body": body, "headers": {}, "query": {}, "method": "POST", "path": "/"}
        channel.skip(document)
        channel.preset(document)
        channel.target(document)


def test_target_from_json_refuses_garbage():
    for data in (
        None,
        [],
        {"fields": {}},
        {"channel": "", "fields": {}},
        {"channel": "x", "fields": 1},
    ):
        with pytest.raises(ValueError):
            Target.from_json(data)


def test_acks_per_platform():
    assert (CH["slack"].ack("d").status, CH["slack"].ack("d").body) == (200, b"")
    assert json.loads(CH["discord"].ack("d").body) == {"type": 5}
    for name in ("telegram", "line", "whatsapp"):
        assert CH[name].ack("d").status == 200
    for name in ("github", "gitlab", "callback"):
        ack = CH[name].ack("slack:Ev1")
        assert (ack.status, ack.content_type) == (202, "application/json")
        assert json.loads(ack.body) == {"status": "accepted", "id": "slack:Ev1"}
    ignored = json.loads(CH["discord"].ignored("x").body)
    assert ignored["type"] == 4 and ignored["data"]["flags"] == 64


def test_registry_names_are_the_webhook_reply_values_but_response():
    assert set(replies.CHANNELS) == {
        "slack", "discord", "telegram", "line", "whatsapp", "github", "gitlab", "callback",
    }  # fmt: skip
    with pytest.raises(KeyError):
        replies.channel("response")


@pytest.mark.parametrize("name", ["slack", "telegram", "line", "whatsapp", "github", "gitlab"])
def test_settings_check_names_reply_token(name):
    with pytest.raises(ReplyFailed, match="reply_token"):
        CH[name].check(Credentials("  ", ""))
    CH["discord"].check(Credentials("", ""))  # the interaction token is enough


def test_telegram_token_must_be_a_bot_token_it_goes_into_the_path():
    with pytest.raises(ReplyFailed, match="reply_token"):
        CH["telegram"].check(Credentials("123:abc/../../x", ""))
    CH["telegram"].check(Credentials("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", ""))


def test_messages_for_outcomes():
    assert message(Outcome("d", "succeeded", "  ")) == "(The app returned an empty answer.)"
    assert message(Outcome("d", "failed", "", error=None)) == FAILED_MESSAGE
    shown = message(Outcome("d", "failed", "", error="x" * 1000))
    assert shown.startswith(FAILED_MESSAGE) and len(shown) < 260
    assert "waiting for input" in message(Outcome("d", "paused"))


# -- slack -----------------------------------------------------------------------------------


def slack(change=None, **event):
    document = doc("slack")
    document["body"]["event"].update(event)
    return with_body(document, change) if change else document


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (slack(bot_id="B1"), "bot"),
        (slack(bot_profile={"id": "B1"}), "bot"),
        (slack(subtype="bot_message"), "bot"),
        (slack(user="U0DEMOBOT"), "own"),
        (slack(app_id="A0DEMO"), "own"),
        (slack(subtype="message_changed"), "subtype message_changed"),
        (slack(subtype="message_deleted"), "subtype message_deleted"),
        (slack(subtype="channel_join"), "subtype channel_join"),
        (slack(type="reaction_added"), "reaction_added events"),
        (slack(text="   "), "without text"),
        (slack(lambda b: b.update(type="url_verification", challenge="c")), "url_verification"),
        (slack(lambda b: b.update(type="app_rate_limited")), "not an Events API"),
        (slack(channel_type="channel", text="<@U0DEMOBOT> hi"), "app_mention"),
    ],
)
def test_slack_never_runs_on(document, reason):
    assert reason in (CH["slack"].skip(document) or "")


def test_slack_user_subtypes_and_mentions_run():
    assert CH["slack"].skip(slack(subtype="thread_broadcast")) is None
    mention = slack(type="app_mention", channel_type="channel", text="<@U0DEMOBOT>  what &amp; why")
    assert CH["slack"].skip(mention) is None
    assert CH["slack"].preset(mention).query == "what & why"


def test_slack_thread_and_conversation_key():
    top = slack(ts="1700000000.000100")
    assert CH["slack"].target(top).fields == {"channel": "D0DEMO", "thread_ts": "1700000000.000100"}
    reply = slack(ts="1700000009.000200", thread_ts="1700000000.000100")
    assert CH["slack"].target(reply).fields["thread_ts"] == "1700000000.000100"
    assert CH["slack"].preset(reply).conversation_key == "D0DEMO:1700000000.000100"
    assert CH["slack"].preset(top) == Preset("hello bridge", "D0DEMO:1700000000.000100", {})


def test_slack_mention_without_authorizations_strips_the_leading_mention():
    document = slack(lambda b: b.pop("authorizations"), type="app_mention", text="<@UXYZ> hi <@U2>")
    assert CH["slack"].preset(document).query == "hi <@U2>"


# -- discord ---------------------------------------------------------------------------------


def discord(change):
    return with_body(doc("discord"), change)


def test_discord_options_are_inputs_and_the_query_option_is_the_query():
    def options(body):
        body["data"]["options"] = [
            {"name": "city", "type": 3, "value": "Paris"},
            {"name": "prompt", "type": 3, "value": "weather?"},
            {"name": "days", "type": 4, "value": 3},
        ]

    preset = CH["discord"].preset(discord(options))
    assert preset.query == "weather?"
    assert preset.inputs == {"city": "Paris", "prompt": "weather?", "days": 3}
    assert preset.conversation_key == "1300000000000000001:1500000000000000001"


def test_discord_without_a_query_option_joins_all_options_and_knows_subcommands():
    def sub(body):
        body["data"]["options"] = [
            {"name": "forecast", "type": 1,
             "options": [{"name": "city", "type": 3, "value": "Oslo"},
                         {"name": "days", "type": 4, "value": 2}]},
        ]  # fmt: skip

    preset = CH["discord"].preset(discord(sub))
    assert preset.query == "Oslo 2"
    assert preset.inputs == {"city": "Oslo", "days": 2, "subcommand": "forecast"}


def test_discord_dm_user_and_bare_command():
    def dm(body):
        body.pop("member")
        body["user"] = {"id": "42"}
        body["data"]["options"] = []

    preset = CH["discord"].preset(discord(dm))
    assert preset.query == "/ask"
    assert preset.conversation_key == "1300000000000000001:42"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b.update(type=1), "PING"),
        (lambda b: b.update(type=3), "not an application command"),
        (lambda b: b.update(type=4), "not an application command"),
        (lambda b: b.update(event={"type": "APPLICATION_AUTHORIZED"}), "webhook event"),
        (lambda b: b.update(token="bad token/with slash"), "token"),
        (lambda b: b.update(application_id="../x"), "token"),
    ],
)
def test_discord_never_runs_on(change, reason):
    assert reason in (CH["discord"].skip(discord(change)) or "")


def test_discord_target_is_application_and_token():
    target = CH["discord"].target(doc("discord"))
    assert target.fields["application_id"] == "1100000000000000001"
    assert target.fields["token"].startswith("demo-interaction-token.")


# -- telegram --------------------------------------------------------------------------------


def telegram(change):
    return with_body(doc("telegram"), change)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b["message"]["from"].update(is_bot=True), "bot"),
        (lambda b: b["message"].pop("text"), "without text"),
        (lambda b: b.update(edited_message=b.pop("message")), "edited_message"),
        (lambda b: b.update(callback_query={"id": "1"}) or b.pop("message"), "callback_query"),
        (lambda b: b["message"]["chat"].update(id="1; drop"), "chat"),
    ],
)
def test_telegram_never_runs_on(change, reason):
    assert reason in (CH["telegram"].skip(telegram(change)) or "")


def test_telegram_target_and_forum_topic():
    target = CH["telegram"].target(doc("telegram"))
    assert target.fields["chat_id"] == "4242"
    assert isinstance(target.fields["message_id"], int)
    topic = telegram(lambda b: b["message"].update(message_thread_id=7, is_topic_message=True))
    assert CH["telegram"].target(topic).fields["message_thread_id"] == 7
    assert CH["telegram"].preset(topic).conversation_key == "4242:7"
    assert CH["telegram"].preset(doc("telegram")).conversation_key == "4242"


# -- line ------------------------------------------------------------------------------------


def line(change):
    return with_body(doc("line"), change)


def test_line_joins_the_first_sources_texts_and_targets_it():
    def two(body):
        first = body["events"][0]
        second = copy.deepcopy(first)
        second["message"]["text"] = "and more"
        other = copy.deepcopy(first)
        other["source"] = {"type": "user", "userId": "U" + "e" * 32}
        other["message"]["text"] = "someone else"
        body["events"] += [other, second]

    document = line(two)
    preset = CH["line"].preset(document)
    assert preset.query == "hello bridge\nand more"
    assert preset.conversation_key == "user:U" + "d" * 32
    target = CH["line"].target(document)
    assert target.fields["to"] == "U" + "d" * 32
    assert target.fields["received_at"] == 1_750_000_000.0


def test_line_group_source_pushes_to_the_group():
    group = line(lambda b: b["events"][0].update(
        source={"type": "group", "groupId": "C" + "1" * 32, "userId": "U" + "d" * 32}))  # fmt: skip
    assert CH["line"].target(group).fields["to"] == "C" + "1" * 32
    assert CH["line"].preset(group).conversation_key == "group:C" + "1" * 32


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b["events"][0]["message"].update(type="sticker"), "no text message"),
        (lambda b: b["events"][0].update(type="follow"), "no text message"),
        (lambda b: b["events"][0].update(mode="standby"), "no text message"),
        (lambda b: b.pop("events"), "not a LINE webhook"),
    ],
)
def test_line_never_runs_on(change, reason):
    assert reason in (CH["line"].skip(line(change)) or "")


# -- whatsapp --------------------------------------------------------------------------------


def whatsapp(change):
    return with_body(doc("whatsapp"), change)


def test_whatsapp_status_updates_and_other_types_never_run():
    def status(body):
        value = body["entry"][0]["changes"][0]["value"]
        value.pop("messages")
        value["statuses"] = [{"id": "wamid.X", "status": "delivered", "recipient_id": "1555"}]

    assert CH["whatsapp"].skip(whatsapp(status)) == "status update"
    image = whatsapp(lambda b: b["entry"][0]["changes"][0]["value"]["messages"][0].update(
        type="image"))  # fmt: skip
    assert CH["whatsapp"].skip(image) == "no text message"


def test_whatsapp_target_and_preset():
    document = doc("whatsapp")
    assert CH["whatsapp"].target(document).fields == {
        "phone_number_id": "100000000000001",
        "to": "15551234567",
        "message_id": document["body"]["entry"][0]["changes"][0]["value"]["messages"][0]["id"],
    }
    assert CH["whatsapp"].preset(document).conversation_key == "100000000000001:15551234567"


# -- github / gitlab -------------------------------------------------------------------------


def test_github_issue_opened_uses_title_and_body():
    body = {
        "action": "opened",
        "issue": {"number": 5, "title": "Crash on start", "body": "Steps: run it"},
        "repository": {"full_name": "octo/hello"},
        "sender": {"login": "a", "type": "User"},
    }
    document = {"body": body, "headers": {"x-github-event": "issues"}}
    assert CH["github"].skip(document) is None
    assert CH["github"].preset(document) == Preset(
        "Crash on start\n\nSteps: run it", "octo/hello#5", {}
    )
    assert CH["github"].target(document).fields == {"repo": "octo/hello", "number": 5}


def test_github_pull_request_opened_targets_the_pr():
    body = {
        "action": "opened",
        "number": 8,
        "pull_request": {"number": 8, "title": "Fix", "body": None},
        "repository": {"full_name": "octo/hello"},
        "sender": {"login": "a", "type": "User"},
    }
    document = {"body": body, "headers": {"x-github-event": "pull_request"}}
    assert CH["github"].skip(document) is None
    assert CH["github"].preset(document).query == "Fix"
    assert CH["github"].target(document).fields["number"] == 8


@pytest.mark.parametrize(
    ("change", "event", "reason"),
    [
        (lambda b: b["sender"].update(type="Bot"), "issue_comment", "bot"),
        (lambda b: b["comment"]["user"].update(type="Bot"), "issue_comment", "bot"),
        (lambda b: b["comment"].update(body=f"answer\n\n{OWN_MARKER}"), "issue_comment", "own"),
        (lambda b: b.update(action="edited"), "issue_comment", "action edited"),
        (lambda b: b.update(action="deleted"), "issue_comment", "action deleted"),
        (lambda b: None, "push", "push events"),
        (lambda b: b["repository"].update(full_name="no slash"), "issue_comment", "repository"),
    ],
)
def test_github_never_runs_on(change, event, reason):
    document = with_body(doc("github"), change)
    document["headers"]["x-github-event"] = event
    assert reason in (CH["github"].skip(document) or "")


def gitlab_mr():
    body = {
        "object_kind": "merge_request",
        "user": {"username": "dev"},
        "project": {"id": 7},
        "object_attributes": {
            "iid": 3,
            "title": "Add cache",
            "description": "Faster",
            "action": "open",
        },
    }
    return {"body": body, "headers": {"x-gitlab-event": "Merge Request Hook"}}


def test_gitlab_merge_request_and_note_on_it():
    document = gitlab_mr()
    assert CH["gitlab"].skip(document) is None
    assert CH["gitlab"].preset(document) == Preset("Add cache\n\nFaster", "7:merge_requests:3", {})
    note = {
        "object_kind": "note",
        "user": {"username": "dev"},
        "project": {"id": 7},
        "object_attributes": {"note": "why?", "noteable_type": "MergeRequest", "system": False},
        "merge_request": {"iid": 3},
    }
    note_document = {"body": note, "headers": {}}
    assert CH["gitlab"].skip(note_document) is None
    assert CH["gitlab"].target(note_document).fields == {
        "project_id": 7,
        "kind": "merge_requests",
        "iid": 3,
    }
    assert CH["gitlab"].preset(note_document).conversation_key == "7:merge_requests:3"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b["user"].update(username="project_7_bot_3f2a"), "bot"),
        (lambda b: b["user"].update(username="group_9_bot"), "bot"),
        (lambda b: b["object_attributes"].update(system=True), "system note"),
        (lambda b: b["object_attributes"].update(note=f"x\n\n{OWN_MARKER}"), "own"),
        (lambda b: b["object_attributes"].update(action="update"), "note action update"),
        (lambda b: b["object_attributes"].update(noteable_type="Commit"), "other than"),
        (lambda b: b.update(object_kind="push"), "push events"),
    ],
)
def test_gitlab_never_runs_on(change, reason):
    assert reason in (CH["gitlab"].skip(with_body(doc("gitlab"), change)) or "")


def test_gitlab_issue_reopened_does_not_run():
    document = gitlab_mr()
    document["body"]["object_attributes"]["action"] = "update"
    assert "action update" in CH["gitlab"].skip(document)


# -- callback --------------------------------------------------------------------------------


def test_callback_runs_on_anything_with_the_usual_mapping():
    document = {"body": {"query": "hi"}, "headers": {}}
    assert CH["callback"].skip(document) is None
    assert CH["callback"].preset(document) is None
    assert CH["callback"].target(document) == Target("callback", {})


# -- splitting -------------------------------------------------------------------------------


def test_short_text_is_one_part_and_blank_is_none():
    assert split("hi", 10) == ["hi"]
    assert split(" \n ", 10) == []


def test_split_prefers_paragraphs_then_lines_then_words():
    text = "aaaa bbbb\n\ncccc dddd\neeee"
    assert split(text, 12) == ["aaaa bbbb", "cccc dddd", "eeee"]
    assert split("one two three four", 9) == ["one two", "three", "four"]
    assert split("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_keeps_code_blocks_whole_or_refences_them():
    code = "```python\n" + "\n".join(f"line {i}" for i in range(40)) + "\n```"
    text = f"Intro paragraph.\n\n{code}\n\nOutro."
    parts = split(text, 330)
    assert parts[0] == "Intro paragraph."  # the block did not fit after it: whole, next part
    assert parts[1] == code and parts[2] == "Outro."
    small = split(text, 120)
    assert all(len(p) <= 120 for p in small)
    fenced = [p for p in small if "line" in p]
    assert all(p.startswith("```python\n") and p.endswith("\n```") for p in fenced)
    body = "\n".join(line for p in fenced for line in p.split("\n")[1:-1])
    assert body == "\n".join(f"line {i}" for i in range(40))


def test_split_counts_utf16_units_and_bounds_the_parts():
    emoji = "😀" * 3000  # 6000 UTF-16 units
    parts = split(emoji, 2000)
    assert [units(p) for p in parts] == [2000, 2000, 2000]
    many = split("\n\n".join(["word " * 10] * 100), 60, max_parts=3)
    assert len(many) == 3 and many[-1].endswith(TRUNCATED) and units(many[-1]) <= 60


# -- mrkdwn ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold** and __also__", "*bold* and *also*"),
        ("*italic* and _it_", "_italic_ and _it_"),
        ("~~gone~~", "~gone~"),
        ("[Dify](https://dify.ai)", "<https://dify.ai|Dify>"),
        ("![chart](https://x.y/c.png)", "<https://x.y/c.png|chart>"),
        ("# Title", "*Title*"),
        ("### **Sub** title ###", "*Sub title*"),
        ("- one\n* two\n  + three", "• one\n• two\n  • three"),
        ("> quoted", "> quoted"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("<!channel> <@U123>", "&lt;!channel&gt; &lt;@U123&gt;"),
        ("`**not bold**` **bold**", "`**not bold**` *bold*"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("```js\nconst a = **b**;\n```", "```\nconst a = **b**;\n```"),
        ("```\nunclosed", "```\nunclosed\n```"),
    ],
)
def test_markdown_to_mrkdwn(markdown, expected):
    assert mrkdwn(markdown) == expected


def test_telegram_group_command_prefix_is_dropped_but_a_bare_command_stays():
    def command(body):
        body["message"]["text"] = "/ask@DemoBot what is new?"
        body["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": 12}]

    assert CH["telegram"].preset(telegram(command)).query == "what is new?"

    def start(body):
        body["message"]["text"] = "/start"
        body["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": 6}]

    assert CH["telegram"].preset(telegram(start)).query == "/start"


def test_line_drops_the_mention_of_this_bot():
    def mention(body):
        body["events"][0]["message"]["text"] = "😀 @Bridge what now @Ann"
        body["events"][0]["message"]["mention"] = {"mentionees": [
            {"index": 3, "length": 7, "type": "user", "isSelf": True},
            {"index": 20, "length": 4, "type": "user", "userId": "U2"},
        ]}  # fmt: skip

    assert CH["line"].preset(line(mention)).query == "😀 what now @Ann"
