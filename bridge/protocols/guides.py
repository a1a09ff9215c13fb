"""Setup guides per platform for the diagnostics page: the steps an admin takes on the
platform's side, with the exact URL to paste.

Pure data: :func:`guide_for` picks the guide from the endpoint's ``webhook_reply`` (a reply
platform) or else its ``webhook_verification``; steps are plain text in which
```code``` spans are marked with backticks and ``{webhook}`` is the endpoint's public
``/webhook`` URL. Nothing here ever contains a setting's value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Guide:
    platform: str
    title: str
    steps: tuple[str, ...]
    user_sees: str


_DEFERRED = (
    "The platform gets its answer at once; the app's run finishes in a continuation the plugin "
    "opens through `self_url` (default `http://127.0.0.1:$SERVER_PORT/e/<hook_id>`, Dify's own "
    "plugin daemon), and the reply is posted with `reply_token`."
)

GUIDES: dict[str, Guide] = {
    "slack": Guide(
        "slack",
        "Slack (Events API, replies in the thread)",
        (
            "Endpoint settings: `webhook_verification` = `slack`, `webhook_secret` = the app's "
            "Signing Secret (api.slack.com/apps → your app → Basic Information), "
            "`webhook_reply` = `slack`, `reply_token` = the Bot User OAuth Token `xoxb-…` "
            "(OAuth & Permissions; bot scopes `chat:write`, `app_mentions:read`, `im:history`).",
            "Event Subscriptions → Enable Events → Request URL: `{webhook}` — Slack sends a "
            "challenge, the bridge answers it and Slack shows Verified.",
            "Subscribe to bot events `app_mention` and `message.im`, save, reinstall the app and "
            "invite the bot to a channel (`/invite @your-bot`).",
            _DEFERRED,
        ),
        "Mention the bot or message it: the answer arrives in the message's thread; messages "
        "from bots and edits never run the app.",
    ),
    "discord": Guide(
        "discord",
        "Discord (slash commands through interactions)",
        (
            "Endpoint settings: `webhook_verification` = `discord`, `webhook_secret` = the "
            "application's Public Key (Developer Portal → General Information), `webhook_reply` "
            "= `discord` (no `reply_token`: the interaction's own token is used).",
            "General Information → Interactions Endpoint URL: `{webhook}` → Save Changes "
            '(Discord sends a PING; the bridge answers `{"type":1}`).',
            "Register a slash command with a string option `query` (its options become inputs).",
            _DEFERRED,
        ),
        "The user runs the command, sees “thinking…” at once, then the answer replaces it "
        "(longer answers continue in follow-up messages of 2000 characters).",
    ),
    "telegram": Guide(
        "telegram",
        "Telegram bot",
        (
            "Endpoint settings: `webhook_verification` = `telegram`, `webhook_secret` = a random "
            "secret token you choose, `webhook_reply` = `telegram`, `reply_token` = the bot token "
            "from @BotFather.",
            "Register the webhook once: `curl https://api.telegram.org/bot<bot token>/setWebhook "
            "-d url={webhook} -d secret_token=<webhook_secret>`.",
            _DEFERRED,
        ),
        "Users message the bot; it replies to their message (4096 characters per message).",
    ),
    "line": Guide(
        "line",
        "LINE Messaging API",
        (
            "Endpoint settings: `webhook_verification` = `line`, `webhook_secret` = the Channel "
            "secret (LINE Developers → channel → Basic settings), `webhook_reply` = `line`, "
            "`reply_token` = a channel access token (Messaging API tab).",
            "Messaging API → Webhook URL: `{webhook}` → Verify, then turn on Use webhook; turn "
            "off auto-reply messages in the LINE Official Account Manager.",
            _DEFERRED,
        ),
        "Users message the account and get the answer as a reply (or a push message once "
        "the reply token has expired).",
    ),
    "whatsapp": Guide(
        "whatsapp",
        "WhatsApp Cloud API",
        (
            "Endpoint settings: `webhook_verification` = `meta`, `webhook_secret` = the App "
            "Secret (Meta app → App settings → Basic), `webhook_reply` = `whatsapp`, "
            "`reply_token` = a WhatsApp access token (WhatsApp → API Setup).",
            "WhatsApp → Configuration → Webhook: Callback URL `{webhook}`, Verify token = this "
            "endpoint's `api_key`; Verify and save, then subscribe to the `messages` field.",
            _DEFERRED,
        ),
        "Users message your WhatsApp number and get the answer as a WhatsApp message.",
    ),
    "meta": Guide(
        "meta",
        "Meta webhooks (Messenger, Instagram, WhatsApp events)",
        (
            "Endpoint settings: `webhook_verification` = `meta`, `webhook_secret` = the App "
            "Secret (Meta app → App settings → Basic).",
            "App → Webhooks: Callback URL `{webhook}`, Verify token = this endpoint's `api_key` "
            "(the `GET` `hub.challenge` handshake is answered); subscribe to the fields you need.",
        ),
        "Each event runs the app; the answer goes back in the HTTP response (Meta does not "
        "read it). For WhatsApp replies set `webhook_reply` = `whatsapp`.",
    ),
    "github": Guide(
        "github",
        "GitHub webhook (comments on issues and pull requests)",
        (
            "Repository or organization → Settings → Webhooks → Add webhook: Payload URL "
            "`{webhook}`, Content type `application/json`, Secret = a random value that you also "
            "put in `webhook_secret`; `webhook_verification` = `github`. Pick the events "
            "(Issues, Issue comments, Pull requests).",
            "Replies: `webhook_reply` = `github`, `reply_token` = a token allowed to write issues "
            "and pull requests; GitHub Enterprise: its API base in `reply_url`.",
            "GitHub sends a `ping` at once: it shows a green delivery and the app does not run.",
        ),
        "With `webhook_reply` = `github` the answer appears as a comment on the issue or pull "
        "request; otherwise it is in the delivery's response (Recent Deliveries).",
    ),
    "gitlab": Guide(
        "gitlab",
        "GitLab webhook (notes on issues and merge requests)",
        (
            "Project → Settings → Webhooks → Add new webhook: URL `{webhook}`, Secret token = a "
            "random value that you also put in `webhook_secret`; `webhook_verification` = "
            "`gitlab`. Trigger: Issues, Comments, Merge request events.",
            "Replies: `webhook_reply` = `gitlab`, `reply_token` = a token with the `api` scope; "
            "self-managed GitLab: `reply_url` = `https://gitlab.example.com/api/v4`.",
        ),
        "With `webhook_reply` = `gitlab` the answer appears as a note on the issue or merge "
        "request; otherwise it is in the hook's response (Test → Recent events).",
    ),
    "callback": Guide(
        "callback",
        "Signed callback to your own URL",
        (
            "Endpoint settings: `webhook_reply` = `callback`, `reply_url` = the URL that receives "
            "results, `reply_token` = a Standard Webhooks secret `whsec_…` shared with it.",
            "Senders post to `{webhook}` (verified per `webhook_verification`) and get "
            '`202 {"status": "accepted", "id": …}` at once.',
            _DEFERRED,
        ),
        "Your receiver gets `{id, status, answer, outputs, conversation_id, error}`, signed "
        "with `webhook-id`, `webhook-timestamp` and `webhook-signature`.",
    ),
    "stripe": Guide(
        "stripe",
        "Stripe webhook",
        (
            "Dashboard → Developers → Webhooks → Add endpoint: `{webhook}`, select the events.",
            "Reveal the endpoint's signing secret `whsec_…` and put it in `webhook_secret`; "
            "`webhook_verification` = `stripe`.",
        ),
        "Each event runs the app once (retries are replayed); the answer is in the delivery's "
        "response in Stripe's event log.",
    ),
    "shopify": Guide(
        "shopify",
        "Shopify webhook",
        (
            "App configuration (or Settings → Notifications → Webhooks): URL `{webhook}`, format "
            "JSON.",
            "`webhook_secret` = the app's client secret (or the key shown under the store's "
            "webhooks); `webhook_verification` = `shopify`.",
        ),
        "Each event runs the app once; Shopify retries are replayed, not re-run.",
    ),
    "standard_webhooks": Guide(
        "standard_webhooks",
        "Standard Webhooks / Svix sender",
        (
            "In the sender's webhook settings add the endpoint `{webhook}` and copy its signing "
            "secret `whsec_…` into `webhook_secret`; `webhook_verification` = "
            "`standard_webhooks`.",
        ),
        "Each message runs the app once (`webhook-id` deduplicates retries).",
    ),
    "hmac_sha256": Guide(
        "hmac_sha256",
        "Generic HMAC-signed sender",
        (
            "The sender signs the raw body with HMAC-SHA256 (hex, optionally `sha256=`) in a "
            "header; put its name in `webhook_signature_header` and the shared secret in "
            "`webhook_secret`; `webhook_verification` = `hmac_sha256`.",
            "Point the sender at `{webhook}`; send an `Idempotency-Key` header to deduplicate.",
        ),
        "Each delivery runs the app; the answer is the HTTP response (`webhook_response`).",
    ),
    "api_key": Guide(
        "api_key",
        "Any sender that can call a URL",
        (
            "Point the sender at `{webhook}` with the header `Authorization: Bearer <api_key>` "
            "(or `X-API-Key`). Senders that can only set a URL may use "
            "`{webhook}?api_key=<api_key>` — query strings end up in logs, so prefer the header.",
            'Send `{"query": …, "inputs": {…}}` as Dify callers do, or map any JSON with '
            "`webhook_inputs`, `webhook_query` and `webhook_user` (JMESPath).",
        ),
        "The answer is the HTTP response, shaped by `webhook_response`.",
    ),
}

REPLY_PLATFORMS = ("slack", "discord", "telegram", "line", "whatsapp", "github", "gitlab")


def guide_for(webhook_reply: str, webhook_verification: str) -> Guide:
    """The guide for a reply platform, else for the verification scheme, else the default."""
    reply = (webhook_reply or "").strip().lower()
    if reply in GUIDES and reply != "api_key":
        return GUIDES[reply]
    return GUIDES.get((webhook_verification or "").strip().lower(), GUIDES["api_key"])
