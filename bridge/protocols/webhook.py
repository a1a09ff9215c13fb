"""Webhook receiver: ``POST /webhook`` and ``GET /webhook`` (SPEC §6).

For each delivery: verify the signature on the raw body (``bridge.verifiers``, 401 on any
failure, before anything is parsed), answer provider handshakes (Slack
``url_verification``, Discord PING, Meta's ``hub.challenge``), replay an already-answered
delivery (``bridge.storage.idempotency``), map the payload to the app's inputs
(``bridge.protocols.mapping``), continue the external user's conversation for chat-type apps, run
the app and answer per ``webhook_response``.

Two-way (SPEC §6.1, ``webhook_reply`` ≠ ``response``): the reply channel
(:mod:`bridge.replies`) may skip the delivery (bot messages, edits…), extracts a preset
mapping and the reply target; with a deferred ``run_mode`` the delivery is recorded as
accepted and handed to a continuation (:mod:`bridge.protocols.continuation`, the hidden
``POST /_continue`` route served by :func:`resume`), and the platform gets the channel's ack.
The continuation runs the app and posts the outcome with ``channel.send``. When the
continuation cannot start, the run happens inline and the diagnostics page says why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from werkzeug import Response

from bridge import replies, verifiers
from bridge.app.aggregate import PAUSED_TEXT, Aggregator, answer_text, is_paused
from bridge.app.gateway import AppFailure, AppKind, Reason, RunRequest, input_variables
from bridge.call import Call
from bridge.config.auth import keys_match
from bridge.errors import (
    BridgeError,
    describe_exception,
    invalid_param,
    payload_too_large,
    unauthorized,
    unsupported_media_type,
)
from bridge.protocols import continuation
from bridge.protocols.mapping import Mapped, as_text, check_mapped_size, coerce, map_request, search
from bridge.replies.base import FAILED, PAUSED, SUCCEEDED, message
from bridge.storage.conversations import storage_full
from bridge.storage.idempotency import FLIGHTS, REPLAY_HEADER, Deliveries, StoredResponse
from bridge.storage.idempotency import fingerprint as idempotency_fingerprint
from bridge.storage.records import Records
from bridge.storage.slots import BucketStore, SlotStore, StorageFull
from bridge.transport.body import BODY_LIMIT, NotJson, check_text, decode_text, parse_json, raw_body
from bridge.transport.public_url import endpoint_base_url
from bridge.transport.responses import body_response, dumps, json_response
from bridge.verifiers.base import Secrets, SignedRequest, VerificationFailed

logger = logging.getLogger(__name__)

USER_CONVERSATIONS = "whconv"
USER_CONVERSATION_BUCKETS = 128
USER_CONVERSATION_CAPACITY = 16  # records of ~75 B: ≤ 160 KB per endpoint
USER_CONVERSATION_SLOTS = USER_CONVERSATION_BUCKETS * USER_CONVERSATION_CAPACITY
USER_CONVERSATION_TTL = 30 * 24 * 3600.0


# -- request → signed request / document ------------------------------------------------------


def signed_request(call: Call, body: bytes) -> SignedRequest:
    return SignedRequest(
        method=call.method,
        headers={k.lower(): v for k, v in call.headers.items()},
        body=body,
        query=dict(call.args.items()),
        now=time.time(),
    )


def parse_body(body: bytes, mimetype: str) -> Any:
    """JSON, form fields (Slack's ``payload`` field decoded) or text; None when empty."""
    if not body:
        return None
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return parse_json(body)
    if mimetype == "application/x-www-form-urlencoded":
        return _form_fields(body)
    if mimetype.startswith("multipart/"):
        raise unsupported_media_type("multipart bodies are not supported; send JSON, form or text.")
    return decode_text(body)


def _form_fields(body: bytes) -> dict[str, Any]:
    """Form fields (repeated names become lists); Slack's ``payload`` JSON field is decoded.

    Text bounds as for JSON bodies (:mod:`bridge.transport.body`): UTF-8, no NUL; a ``payload``
    field that is JSON must also be within the JSON bounds.
    """
    fields: dict[str, Any] = {}
    try:
        pairs = parse_qsl(decode_text(body), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise invalid_param("Request body has a form field that is not valid UTF-8.") from None
    for key, value in pairs:
        check_text(key, "Form field name")
        check_text(value, f"Form field '{key[:40]}'")
        if key not in fields:
            fields[key] = value
        elif isinstance(fields[key], list):
            fields[key].append(value)
        else:
            fields[key] = [fields[key], value]
    payload = fields.get("payload")
    if isinstance(payload, str) and payload.lstrip().startswith("{"):
        with contextlib.suppress(NotJson):
            fields["payload"] = parse_json(payload, "Form field 'payload'")
    return fields


SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "x-api-key", "x-gitlab-token",
    "x-telegram-bot-api-secret-token", "x-hub-signature", "x-hub-signature-256",
    "x-slack-signature", "stripe-signature", "webhook-signature", "svix-signature",
    "x-signature-ed25519", "x-shopify-hmac-sha256", "x-line-signature",
})  # fmt: skip
SECRET_QUERY = frozenset({"api_key", "token", "hub.verify_token"})


def document(
    signed: SignedRequest, body: Any, path: str, signature_header: str = ""
) -> dict[str, Any]:
    """The mapping document; credentials and signatures are left out (never sent to the app)."""
    hidden = SECRET_HEADERS | {signature_header.lower()}
    return {
        "body": body,
        "headers": {k: v for k, v in signed.headers.items() if k not in hidden},
        "query": {k: v for k, v in signed.query.items() if k not in SECRET_QUERY},
        "method": signed.method,
        "path": path,
    }


# -- entry points ----------------------------------------------------------------------------


def _verify(call: Call, signed: SignedRequest) -> None:
    call.settings.require("webhook_verification")  # never verify with a guessed scheme
    settings = call.settings
    scheme = settings.webhook_verification
    secret = settings.api_key if scheme == "api_key" else settings.webhook_secret
    secrets = Secrets(secret, settings.webhook_signature_header, settings.webhook_token)
    try:
        verifiers.verify(scheme, signed, secrets)
    except VerificationFailed as failure:
        raise unauthorized(f"Webhook verification ({scheme}) failed: {failure}") from None


def receive(call: Call) -> Response:
    """``POST /webhook``."""
    if len(call.body) >= BODY_LIMIT:
        raise payload_too_large("Request body exceeds Dify's 10 MiB limit for plugin endpoints.")
    body_bytes = raw_body(call.body)
    signed = signed_request(call, body_bytes)
    _verify(call, signed)
    check_mapped_size(call.settings, len(body_bytes))  # before the parse a mapping would need
    body = parse_body(body_bytes, call.mimetype)
    scheme = call.settings.webhook_verification
    handshake = _handshake(scheme, body, signed)
    if handshake is not None:
        return handshake
    call.settings.require("app", "webhook_inputs", "webhook_query", "webhook_user")
    call.settings.require_selects()
    if call.settings.webhook_reply != "response":
        return _two_way(call, signed, body, body_bytes)
    delivery = _delivery_key(scheme, signed, body)
    if not delivery:
        return _respond(_for_sender(scheme, body, _run(call, signed, body)))
    # a provider's id names the delivery whatever its retries look like; the caller's
    # Idempotency-Key is bound to the request: its body and what the mappings read from it
    bound = delivery.startswith(KEY_SOURCE)
    deliveries = Deliveries(call.records)
    replayed = _safe(lambda: deliveries.replay(delivery))
    if replayed is not None and not bound:
        return _respond(replayed, replay=True)
    prepared = _prepare_quietly(call, signed, body)
    fingerprint = ""
    if bound:
        seen = None if prepared is None else _seen(prepared[1])
        fingerprint = idempotency_fingerprint(body_bytes, seen)
    fresh = []

    def first_run() -> StoredResponse:
        # a copy answered by this process while this one waited to start replays from memory
        known = deliveries.known(delivery)
        if known is not None:
            return known
        fresh.append(True)
        response = _for_sender(scheme, body, _run(call, signed, body, prepared))
        response = StoredResponse(
            response.status, response.content_type, response.body, fingerprint
        )
        _safe(lambda: deliveries.remember(delivery, response))
        return response

    response = replayed or FLIGHTS.run(f"{call.records.namespace}\x00{delivery}", first_run)
    _check_fingerprint(response, fingerprint, bound=bound)
    return _respond(response, replay=not fresh)


KEY_SOURCE = "key:"


# Meta signs the body and sends no delivery id and no timestamp: the signed body identifies
# the delivery, so its retries (and a captured copy, for the record's lifetime) replay.
BODY_IDENTIFIED = frozenset({"meta"})


def _delivery_key(scheme: str, signed: SignedRequest, body: Any) -> str:
    """The delivery id, namespaced by its source so ids of different origins never meet."""
    if scheme in BODY_IDENTIFIED and signed.body:
        return f"{scheme}:body:{hashlib.sha256(signed.body).hexdigest()}"
    provider = verifiers.delivery_id(scheme, signed, body)
    header = signed.header("idempotency-key")
    if provider and provider != header:
        return f"{scheme}:{provider}"
    return f"{KEY_SOURCE}{header}" if header else ""


def _for_sender(scheme: str, body: Any, response: StoredResponse) -> StoredResponse:
    """Providers that want a fixed acknowledgement get it (after the app ran)."""
    if scheme == "discord" and isinstance(body, dict) and "event" in body:
        return StoredResponse(204, "text/plain", b"")  # Discord webhook events: 204
    return response


def handshake_get(call: Call) -> Response:
    """``GET /webhook``: Meta's subscription check; nothing else is served on GET."""
    mode = call.args.get("hub.mode")
    if mode == "subscribe" and "hub.challenge" in call.args:
        # the verify token sits in Meta's URL (and so in access logs): the webhook token
        # when one is set, the api_key otherwise
        expected = call.settings.webhook_token or call.settings.api_key
        if not keys_match(expected, call.args.get("hub.verify_token")):
            raise unauthorized(
                "hub.verify_token does not match this endpoint's webhook_token (or api_key)."
            )
        return body_response(
            str(call.args.get("hub.challenge")).encode(), content_type="text/plain; charset=utf-8"
        )
    raise BridgeError(
        405,
        "method_not_allowed",
        "Deliveries are POSTed to /webhook; GET only answers Meta's hub.challenge handshake.",
    )


_Check = Callable[[dict[str, Any], SignedRequest], bool]
_Answer = Callable[[dict[str, Any]], Response]

# Provider checks and pings that must not run the app (answered after verification).
_HANDSHAKES: dict[str, tuple[tuple[_Check, _Answer], ...]] = {
    "github": (
        (lambda b, s: s.header("x-github-event") == "ping", lambda b: json_response({"ok": True})),
    ),
    "slack": (
        (
            lambda b, s: b.get("type") == "url_verification",
            lambda b: json_response({"challenge": b.get("challenge")}),
        ),
    ),
    "discord": (
        # interactions PING → PONG; webhook-events PING → 204 (events carry an "event" key)
        (
            lambda b, s: b.get("type") == 1 and "event" not in b,
            lambda b: json_response({"type": 1}),
        ),
        (lambda b, s: b.get("type") == 0 and "event" not in b, lambda b: Response(status=204)),
    ),
    "line": (
        (lambda b, s: b.get("events") == [], lambda b: json_response({})),  # console "Verify"
    ),
}


def _handshake(scheme: str, body: Any, signed: SignedRequest) -> Response | None:
    fields = body if isinstance(body, dict) else {}
    for applies, answer in _HANDSHAKES.get(scheme, ()):
        if applies(fields, signed):
            return answer(fields)
    return None


def _safe[T](action: Any) -> T | None:
    """Storage trouble must not break deliveries: idempotency degrades to at-least-once."""
    try:
        return action()
    except Exception as exc:  # noqa: BLE001
        logger.warning("idempotency storage unavailable: %s", describe_exception(exc))
        return None


def _check_fingerprint(response: StoredResponse, fingerprint: str, *, bound: bool) -> None:
    """An ``Idempotency-Key`` names one request: reused for another one, it is a 422. (A
    provider's delivery id names the delivery, whatever its retries look like.)"""
    if bound and response.fingerprint != fingerprint:
        raise BridgeError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request.",
        )


def _respond(stored: StoredResponse, *, replay: bool = False) -> Response:
    response = body_response(stored.body, status=stored.status, content_type=stored.content_type)
    if replay:
        response.headers[REPLAY_HEADER] = "true"
    return response


# -- running the app ---------------------------------------------------------------------------


_Prepared = tuple[list[dict[str, Any]], Mapped]


def _prepare(call: Call, signed: SignedRequest, body: Any) -> _Prepared:
    """The app's input controls and the mapped delivery."""
    controls = input_variables(call.gateway.parameters(call.settings.app_id))
    doc = document(signed, body, call.path, call.settings.webhook_signature_header)
    return controls, map_request(call.settings, doc, controls)


def _prepare_quietly(call: Call, signed: SignedRequest, body: Any) -> _Prepared | None:
    """:func:`_prepare`, or None when it fails (:func:`_run` then renders the failure)."""
    try:
        return _prepare(call, signed, body)
    except BridgeError:
        return None


def _seen(mapped: Mapped) -> list[Any]:
    return [mapped.inputs, mapped.query, mapped.user, mapped.conversation_id]


def _run(
    call: Call, signed: SignedRequest, body: Any, prepared: _Prepared | None = None
) -> StoredResponse:
    """Map, run and render; app failures are rendered too (and remembered if not 5xx)."""
    try:
        controls, mapped = prepared or _prepare(call, signed, body)
        result, kind = _run_app(call, mapped, controls, body)
        return _render(call.settings.webhook_response, result, kind)
    except BridgeError as error:
        return _error_response(error)


def _error_response(error: BridgeError) -> StoredResponse:
    payload = {"code": error.code, "message": error.message, "status": error.status}
    return StoredResponse(error.status, "application/json", dumps(payload).encode())


def _run_app(
    call: Call, mapped: Mapped, controls: list[dict[str, Any]], body: Any
) -> tuple[dict, AppKind]:
    declared = {c["variable"] for c in controls}
    inputs = dict(mapped.inputs)
    query = mapped.query or _fallback_query(body)
    query_variable = call.settings.query_variable or "query"
    if query_variable in declared and query_variable not in inputs:
        inputs[query_variable] = query
    conversations = user_conversations(call.records)
    owners = call.conversations
    conversation_id = mapped.conversation_id
    users = None  # the bucket read to find the user's conversation, reused to record a new one
    if conversation_id:  # named by the caller: only its owner may continue it
        owners.check(conversation_id, mapped.user)
    elif mapped.user:
        found = _safe(lambda: conversations.lookup(mapped.user))
        if found is not None:
            conversation_id, users = found[0] or "", found[1]
    run = RunRequest(call.settings.app_id, inputs, query, conversation_id, mapped.user)
    try:
        result, kind = _blocking(call, run)
    except AppFailure as failure:
        if failure.reason is not Reason.CONVERSATION_NOT_EXISTS or not conversation_id:
            raise
        if mapped.user:  # stale: start afresh, once
            _safe(lambda: conversations.delete(mapped.user))
        result, kind = _blocking(call, RunRequest(run.app_id, inputs, query, "", mapped.user))
    new_conversation = result.get("conversation_id")
    if kind is AppKind.CHAT and new_conversation and new_conversation != conversation_id:
        try:  # a conversation nobody owns is never handed out: the delivery fails instead
            owners.remember(new_conversation, mapped.user)
            if mapped.user:
                conversations.put(mapped.user, new_conversation, known=users)
        except StorageFull as exc:
            logger.warning("could not record webhook conversation: %s", describe_exception(exc))
            raise storage_full() from None
    return result, kind


def user_conversations(records: Records) -> BucketStore:
    """External user (``webhook_user``) → their current conversation, per endpoint."""
    return BucketStore(
        records,
        USER_CONVERSATIONS,
        buckets=USER_CONVERSATION_BUCKETS,
        capacity=USER_CONVERSATION_CAPACITY,
        ttl=USER_CONVERSATION_TTL,
    )


def _blocking(call: Call, run: RunRequest) -> tuple[dict, AppKind]:
    aggregator = Aggregator()
    for event in call.gateway.events(run):
        aggregator.feed(event)
    return aggregator.result(), aggregator.kind or AppKind.COMPLETION


def _fallback_query(body: Any) -> str:
    """Chat-type apps need a query: without a mapping, the payload itself is the message."""
    if body is None:
        return "(empty webhook delivery)"
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


def _render(mode: str, result: Mapping[str, Any], kind: AppKind) -> StoredResponse:
    """The answer per ``webhook_response``; a run paused for human input says so.

    ``dify`` gives Dify's paused blocking shape; ``text`` the partial answer and a short note
    that the run waits for input; ``outputs`` ``{"status": "paused", "message": …}``.
    """
    if is_paused(result) and mode != "dify":
        if mode == "text":
            return StoredResponse(200, "text/plain; charset=utf-8", answer_text(result).encode())
        paused = {"status": "paused", "message": PAUSED_TEXT}
        return StoredResponse(200, "application/json", dumps(paused).encode())
    if mode != "dify" and kind is AppKind.WORKFLOW:
        answer_text(result)  # raises for a workflow that did not succeed
    if mode == "text":
        text = answer_text(result)
        return StoredResponse(200, "text/plain; charset=utf-8", text.encode())
    if mode == "outputs":
        if kind is AppKind.WORKFLOW:
            outputs = (result.get("data") or {}).get("outputs") or {}
        else:
            outputs = {"answer": result.get("answer", "")}
        return StoredResponse(200, "application/json", dumps(outputs).encode())
    return StoredResponse(200, "application/json", dumps(result).encode())


# -- two-way: acknowledge now, run in a continuation, reply on the platform (SPEC §6.1) -------


class _Busy(BridgeError):
    """Deferred runs beyond :data:`bridge.protocols.continuation.GATE`: 503 + Retry-After."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "too_many_deferred_runs",
            "Too many deliveries are running in the background; retry shortly.",
        )


def _credentials(call: Call) -> replies.Credentials:
    return replies.Credentials(call.settings.reply_token, call.settings.reply_url)


def _channel(call: Call) -> replies.Channel:
    call.settings.require("reply_token", "reply_url", "self_url")
    channel = replies.channel(call.settings.webhook_reply)
    try:
        channel.check(_credentials(call))
    except replies.ReplyFailed as failure:
        raise BridgeError(503, "invalid_setting", str(failure)) from None
    return channel


def _ack_response(ack: replies.Ack, fingerprint: str = "") -> StoredResponse:
    return StoredResponse(ack.status, ack.content_type or "text/plain", ack.body, fingerprint)


@dataclass(frozen=True, slots=True)
class _TwoWay:
    """One delivery bound for a reply channel."""

    call: Call
    channel: replies.Channel
    target: replies.Target
    doc: dict[str, Any]
    delivery: str  # namespaced delivery key
    fingerprint: str

    @property
    def shown_id(self) -> str:
        return self.delivery.split(":", 1)[-1]


def _two_way(call: Call, signed: SignedRequest, body: Any, body_bytes: bytes) -> Response:
    """A delivery whose answer goes to a reply channel."""
    channel = _channel(call)
    doc = document(signed, body, call.path, call.settings.webhook_signature_header)
    reason = channel.skip(doc)
    target = channel.target(doc) if reason is None else None
    if target is None:  # nothing to run for, or nowhere to reply to
        return _respond(_ack_response(channel.ignored(reason or "nowhere to reply")))
    scheme = call.settings.webhook_verification
    # a sender without a delivery id (a plain callback) is deduplicated by its body
    delivery = _delivery_key(scheme, signed, body)
    if not delivery:
        delivery = f"body:{hashlib.sha256(body_bytes).hexdigest()}"
    bound = delivery.startswith(KEY_SOURCE)
    fingerprint = idempotency_fingerprint(body_bytes, None) if bound else ""
    job = _TwoWay(call, channel, target, doc, delivery, fingerprint)
    deliveries = Deliveries(call.records)
    fresh = []

    def first_run() -> StoredResponse:
        known = deliveries.known(delivery)  # a copy this process accepted meanwhile
        if known is not None:
            return known
        fresh.append(True)
        response = _accept(job)
        _safe(lambda: deliveries.remember(delivery, response))  # accepted: before the ack
        return response

    try:
        replayed = _safe(lambda: deliveries.replay(delivery))
        flight = f"{call.records.namespace}\x00{delivery}"
        response = replayed or FLIGHTS.run(flight, first_run)
    except _Busy as busy:
        answer = _respond(_error_response(busy))
        answer.headers["Retry-After"] = continuation.RETRY_AFTER
        return answer
    _check_fingerprint(response, fingerprint, bound=bound)
    return _respond(response, replay=not fresh)


def _accept(job: _TwoWay) -> StoredResponse:
    """Hand the delivery to a continuation and return the ack; else run it inline."""
    if not job.call.settings.deferred:
        return _inline(job)
    if not continuation.GATE.enter():
        raise _Busy
    reason = _start_continuation(job)
    if not reason:
        return _ack_response(job.channel.ack(job.shown_id), job.fingerprint)
    continuation.FALLBACKS.record(job.call.endpoint_id, reason)
    logger.warning("deferred run fell back to inline: %s", reason)
    return _inline(job)


def _self_url(call: Call) -> str:
    if call.settings.self_url:
        return call.settings.self_url
    hook_id = (call.headers.get("Dify-Hook-Id") or "").strip()
    return continuation.default_self_url(hook_id)


def _start_continuation(job: _TwoWay) -> str:
    """Open the self-call; "" once the continuation confirmed it started, else why not.

    The concurrency gate is left when no continuation is left running.
    """
    call = job.call
    base = _self_url(call)
    if not base:
        continuation.GATE.leave()
        return "no self_url and no SERVER_PORT in the plugin's environment"
    nonce = continuation.new_nonce()
    payload = {
        "v": 1,
        "delivery": job.delivery,
        "channel": job.channel.name,
        "target": job.target.to_json(),
        "document": job.doc,
    }
    data = dumps(payload).encode()
    if len(data) > continuation.MAX_BODY:
        continuation.GATE.leave()
        return "the delivery is too large to hand to a continuation (the daemon cuts at 10 MiB)"
    headers = {
        "Content-Type": "application/json",
        continuation.HEADER: continuation.sign(call.settings.api_key, data, nonce),
    }
    public = endpoint_base_url(call.headers, call.path)
    if public:
        headers["Dify-Hook-Url"] = public + continuation.ROUTE  # carried forward
    continuation.LEDGER.mint(nonce)
    held = continuation.open_self_call(
        base + continuation.ROUTE, data, headers, continuation.GATE.leave
    )
    if held.wait_started(continuation.START_TIMEOUT):
        return ""
    if not held.failure and not continuation.LEDGER.cancel(nonce):
        return ""  # claimed meanwhile: the continuation runs; its first line is on its way
    continuation.LEDGER.cancel(nonce)
    if held.failure:
        return held.failure
    return f"the continuation did not start within {continuation.START_TIMEOUT:g} s"


def _inline(job: _TwoWay) -> StoredResponse:
    """Run now, inside this request: reply on the platform and answer in the response."""
    outcome, rendered = _execute(job.call, job.channel, job.doc, job.shown_id)
    if job.channel.name == "discord":  # the interaction's own response is the reply (type 4)
        content = message(outcome)[:2000]
        body = dumps({"type": 4, "data": {"content": content}}).encode()
        return StoredResponse(200, "application/json", body, job.fingerprint)
    _send(job.channel, job.target, outcome, _credentials(job.call))
    return StoredResponse(rendered.status, rendered.content_type, rendered.body, job.fingerprint)


def _send(
    channel: replies.Channel,
    target: replies.Target,
    outcome: replies.Outcome,
    credentials: replies.Credentials,
) -> bool:
    try:
        channel.send(target, outcome, credentials)
    except replies.ReplyFailed as failure:
        logger.warning("reply on %s failed: %s", channel.name, failure)
        return False
    return True


def _execute(
    call: Call, channel: replies.Channel, doc: dict[str, Any], delivery_id: str
) -> tuple[replies.Outcome, StoredResponse]:
    """Run the app for ``doc``: the channel's outcome and the ``webhook_response`` rendering."""
    body = doc.get("body")
    try:
        controls = input_variables(call.gateway.parameters(call.settings.app_id))
        mapped = _mapped(call, channel, doc, controls)
        result, kind = _run_app(call, mapped, controls, body)
    except BridgeError as error:
        outcome = replies.Outcome(delivery_id, FAILED, error=error.message)
        return outcome, _error_response(error)
    conversation_id = result.get("conversation_id")
    data = result.get("data") if kind is AppKind.WORKFLOW else None
    outputs = (data or {}).get("outputs") if isinstance(data, dict) else None
    if is_paused(result):  # a Human Input node waits: the platform is told so
        outcome = replies.Outcome(delivery_id, PAUSED, "", outputs, conversation_id)
        return outcome, StoredResponse(200, "application/json", dumps(result).encode())
    try:
        rendered = _render(call.settings.webhook_response, result, kind)
        answer = answer_text(result)
    except BridgeError as error:
        outcome = replies.Outcome(delivery_id, FAILED, error=error.message)
        return outcome, _error_response(error)
    if outputs is None and kind is not AppKind.WORKFLOW:
        outputs = {"answer": answer}
    outcome = replies.Outcome(delivery_id, SUCCEEDED, answer, outputs, conversation_id)
    return outcome, rendered


def _mapped(
    call: Call, channel: replies.Channel, doc: dict[str, Any], controls: list[dict[str, Any]]
) -> Mapped:
    """The channel's preset, with explicit ``webhook_*`` mappings winning (SPEC §6.1)."""
    settings = call.settings
    preset = channel.preset(doc)
    if preset is None or settings.webhook_inputs:
        mapped = map_request(settings, doc, controls)
        if preset is None:
            return mapped
        inputs = mapped.inputs
    else:
        declared = {c["variable"]: c for c in controls}
        inputs = {
            k: coerce(k, v, declared.get(k))
            for k, v in preset.inputs.items()
            if k in declared or not declared
        }
        if "payload" in declared and doc.get("body") is not None:
            inputs.setdefault("payload", as_text(doc.get("body")))
        query_variable = settings.query_variable or "query"
        for name, control in declared.items():
            missing = inputs.get(name) in (None, "") and name != query_variable
            if control.get("required") and missing:
                raise BridgeError(400, "invalid_param", f"input '{name}' is required by the app.")
    query = (
        as_text(search("webhook_query", settings.webhook_query, doc))
        if settings.webhook_query
        else preset.query
    )
    user = (
        as_text(search("webhook_user", settings.webhook_user, doc))
        if settings.webhook_user
        else preset.conversation_key or ""
    )
    return Mapped(dict(inputs), query, user.strip(), "")


def _claim(call: Call) -> None:
    """Refuse unless the continuation is genuine, fresh and used for the first time."""
    nonce = continuation.verify(
        call.settings.api_key, call.headers.get(continuation.HEADER), call.body
    )
    if not continuation.LEDGER.knows(nonce) and not _first_use_elsewhere(call, nonce):
        raise continuation.Refused("continuation already used")
    if not continuation.LEDGER.claim(nonce):
        raise continuation.Refused("continuation already used or cancelled")


def _continued_job(call: Call) -> _TwoWay:
    payload = json.loads(call.body)
    channel = replies.channel(str(payload["channel"]))
    doc = payload["document"]
    if not isinstance(doc, dict) or channel.name != call.settings.webhook_reply:
        raise ValueError("continuation does not match this endpoint")
    target = replies.Target.from_json(payload["target"])
    return _TwoWay(call, channel, target, doc, str(payload["delivery"]), "")


def resume(call: Call) -> Response:
    """``POST /_continue``: a signed, fresh, unused continuation runs its delivery."""
    try:
        _claim(call)
        job = _continued_job(call)
    except continuation.Refused as refused:
        raise unauthorized(f"Continuation refused: {refused}") from None
    except (ValueError, KeyError, TypeError):
        raise unauthorized("Continuation refused: malformed continuation") from None

    def run() -> Any:
        yield continuation.STARTED  # the original request acks on this line
        try:
            outcome, _ = _execute(call, job.channel, job.doc, job.shown_id)
            sent = _send(job.channel, job.target, outcome, _credentials(call))
            yield f"{outcome.status} {'replied' if sent else 'reply failed'}\n".encode()
        except Exception as exc:  # noqa: BLE001 - a stream must end cleanly
            logger.error("continuation failed: %s", describe_exception(exc))  # noqa: TRY400
            yield b"failed\n"

    return Response(run(), status=200, content_type="text/plain; charset=utf-8")


NONCES_SEEN = 256  # slots for nonces minted by other instances (60 s window, bounded)


def _first_use_elsewhere(call: Call, nonce: str) -> bool:
    """A nonce another instance minted: record it in storage; False if already there."""
    seen = SlotStore(call.records, continuation.NONCE_KIND, slots=NONCES_SEEN, ttl=300.0)
    if _safe(lambda: seen.get(nonce)) is not None:
        return False
    _safe(lambda: seen.put(nonce, 1))
    return True
