"""Webhook receiver: ``POST /webhook`` and ``GET /webhook`` (SPEC §6).

For each delivery: verify the signature on the raw body (``bridge.verifiers``, 401 on any
failure, before anything is parsed), answer provider handshakes (Slack
``url_verification``, Discord PING, Meta's ``hub.challenge``), replay an already-answered
delivery (``bridge.idempotency``), map the payload to the app's inputs
(``bridge.mapping``), continue the external user's conversation for chat-type apps, run the
app and answer per ``webhook_response``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from werkzeug import Response

from bridge import verifiers
from bridge.aggregate import PAUSED_TEXT, Aggregator, answer_text, is_paused
from bridge.auth import keys_match
from bridge.body import BODY_LIMIT, NotJson, check_text, decode_text, parse_json, raw_body
from bridge.call import Call
from bridge.conversations import storage_full
from bridge.errors import (
    BridgeError,
    describe_exception,
    invalid_param,
    payload_too_large,
    unauthorized,
    unsupported_media_type,
)
from bridge.gateway import AppFailure, AppKind, Reason, RunRequest, input_variables
from bridge.idempotency import FLIGHTS, REPLAY_HEADER, Deliveries, StoredResponse
from bridge.idempotency import fingerprint as idempotency_fingerprint
from bridge.mapping import Mapped, check_mapped_size, map_request
from bridge.records import Records
from bridge.responses import body_response, dumps, json_response
from bridge.slots import BucketStore, StorageFull
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

    Text bounds as for JSON bodies (:mod:`bridge.body`): UTF-8, no NUL; a ``payload`` field
    that is JSON must also be within the JSON bounds.
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
    if bound and response.fingerprint != fingerprint:
        raise BridgeError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request.",
        )
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
