"""Chat robots: one message in the format each vendor documents, signed where the vendor signs, sent
through the guarded client. An adapter: no ORM; it raises ``TransientError`` (retry) or ``PermanentError``.

The robot's URL and secret are credentials: they are never put in an error, a log line or an answer
(errors name the vendor and the URL's host only). Redirects are not followed, so neither reaches
another host.
"""
import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field, replace
from urllib.parse import quote_plus, urlsplit

import requests

from paas_site.errors import PermanentError, TransientError
from paas_site.outbound import GuardedSession, OutboundRefused, unreachable

from .choices import ChannelKind

TIMEOUT = 10
# Vendor error codes that mean "too many messages, try later" (the rest of a non-zero code is final):
# DingTalk 130101 "send too fast", WeCom 45009 "api freq out of limit", Feishu 11232 "frequency limited".
RATE_LIMITED = {ChannelKind.DINGTALK: {130101}, ChannelKind.WECOM: {45009}, ChannelKind.FEISHU: {11232}}
# A chat user id as the vendors issue them (Slack U…, DingTalk userId, WeCom userid, Feishu ou_…): users type
# theirs, and it is written into the message raw, so nothing else may pass (no <, >, quotes, brackets, spaces).
CHAT_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True)
class ChatMessage:
    subject: str
    lines: list[str]
    links: list[tuple[str, str]]  # (label, url)
    mentions: list[str] = field(default_factory=list)  # the vendor's user ids


@dataclass(frozen=True)
class ChatRequest:
    url: str
    body: dict


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk "加签": HMAC-SHA256 keyed with the secret over ``timestamp + "\\n" + secret``, base64, then
    URL-encoded (open.dingtalk.com, custom robot security settings)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark "签名校验": ``timestamp + "\\n" + secret`` is the HMAC-SHA256 *key* over an empty message,
    base64 (open.feishu.cn, custom bot guide, signature verification)."""
    return base64.b64encode(hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()


# What a user may write (a rejection comment, a failure reason) must not mention or link by itself:
# Slack's <!channel>/<@U…>, WeCom's <@userid>, Feishu's <at …>, and markdown links [text](url). Slack's own
# escaping is &amp; &lt; &gt; ("Formatting text: escaping"); the others take these look-alike characters.
_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MARKUP_ESCAPES = str.maketrans({"<": "‹", ">": "›", "[": "［", "]": "］"})


def _text(value: str, kind: str) -> str:
    return value.translate(_SLACK_ESCAPES if kind == ChannelKind.SLACK else _MARKUP_ESCAPES)


def _markdown(message: ChatMessage, kind: str, mention: str) -> str:
    links = " · ".join(f"[{_text(label, kind)}]({url})" for label, url in message.links)
    mentions = " ".join(mention.format(id) for id in message.mentions)
    lines = [f"**{_text(message.subject, kind)}**", *(_text(line, kind) for line in message.lines), links, mentions]
    return "\n\n".join(part for part in lines if part)


def chat_request(kind: str, url: str, secret: str, message: ChatMessage, now: float | None = None) -> ChatRequest:
    """The request a vendor's robot expects for ``message`` (a mention whose id is not a ``CHAT_ID`` is left out)."""
    now = time.time() if now is None else now
    message = replace(message, mentions=[id for id in message.mentions if CHAT_ID.fullmatch(id)])
    if kind == ChannelKind.SLACK:
        # Slack incoming webhooks: JSON with ``text`` (the fallback) and ``blocks``; mentions are <@U…>
        # (api.slack.com/messaging/webhooks, "Formatting text": mrkdwn links are <url|label>).
        links = " · ".join(f"<{link}|{_text(label, kind)}>" for label, link in message.links)
        mentions = " ".join(f"<@{id}>" for id in message.mentions)
        subject = _text(message.subject, kind)
        lines = [f"*{subject}*", *(_text(line, kind) for line in message.lines), links, mentions]
        text = "\n".join(part for part in lines if part)
        return ChatRequest(url, {"text": subject, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    if kind == ChannelKind.DINGTALK:
        # DingTalk custom robot: msgtype markdown (title + text); ``at.atUserIds`` and "@id" in the text mention;
        # with a secret, ``timestamp`` (ms) and ``sign`` go in the query string.
        body = {"msgtype": "markdown",
                "markdown": {"title": _text(message.subject, kind), "text": _markdown(message, kind, "@{}")},
                "at": {"atUserIds": message.mentions, "isAtAll": False}}
        if secret:
            timestamp = int(now * 1000)
            url = f"{url}{'&' if urlsplit(url).query else '?'}timestamp={timestamp}&sign={dingtalk_sign(secret, timestamp)}"
        return ChatRequest(url, body)
    if kind == ChannelKind.WECOM:
        # WeCom group robot: the key is in the URL (…/cgi-bin/webhook/send?key=…); msgtype markdown, where
        # <@userid> mentions (developer.work.weixin.qq.com/document/path/91770).
        return ChatRequest(url, {"msgtype": "markdown", "markdown": {"content": _markdown(message, kind, "<@{}>")}})
    if kind == ChannelKind.FEISHU:
        # Feishu/Lark custom bot: msg_type text, <at user_id="ou_…"></at> mentions; with a secret,
        # ``timestamp`` (s) and ``sign`` in the body.
        links = "\n".join(f"{_text(label, kind)}: {link}" for label, link in message.links)
        mentions = " ".join(f'<at user_id="{id}"></at>' for id in message.mentions)
        lines = [_text(message.subject, kind), *(_text(line, kind) for line in message.lines), links, mentions]
        text = "\n".join(part for part in lines if part)
        body: dict = {"msg_type": "text", "content": {"text": text}}
        if secret:
            timestamp = int(now)
            body = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **body}
        return ChatRequest(url, body)
    raise ValueError(f"unknown chat channel kind {kind!r}")


def chat_send(kind: str, url: str, secret: str, message: ChatMessage) -> None:
    """Post ``message`` to the robot; return when the vendor accepted it."""
    request = chat_request(kind, url, secret, message)
    what = f"{ChannelKind(kind).label} at {urlsplit(url).hostname}"
    try:
        with GuardedSession() as session:
            response = session.post(request.url, data=json.dumps(request.body).encode(), timeout=TIMEOUT,
                                    headers={"Content-Type": "application/json", "User-Agent": "Slipway-Notify/1"},
                                    allow_redirects=False)
    except OutboundRefused as exc:
        raise OutboundRefused(f"{what}: {exc.message}") from None
    except requests.RequestException as exc:  # its text holds the URL, token and all: log it without
        raise unreachable(what, _redacted(exc, request.url)) from None
    status = response.status_code
    if status >= 500 or status == 429:
        raise TransientError(f"{what} answered HTTP {status}")
    if status >= 300:
        raise PermanentError(f"{what} refused the message: HTTP {status}" + (" (a redirect, not followed)"
                                                                            if status < 400 else ""))
    _vendor_code_check(kind, what, response)


def _redacted(exc: Exception, url: str) -> Exception:
    """``exc`` for the server log, without the URL's path and query (where robots keep their token)."""
    parts = urlsplit(url)
    text = f"{type(exc).__name__}: {exc}"
    for secret in sorted({url, parts.path, parts.query} - {""}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return ConnectionError(text)


def _vendor_code_check(kind: str, what: str, response: requests.Response) -> None:
    """DingTalk, WeCom and Feishu answer HTTP 200 with an error code in the body; Slack answers "ok"."""
    if kind == ChannelKind.SLACK:
        return
    try:
        answer = response.json()
    except ValueError:
        raise PermanentError(f"{what} answered something that is not JSON") from None
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0))) if isinstance(answer, dict) else 0
    if code in (0, None):
        return
    reason = str(answer.get("errmsg") or answer.get("msg") or "")[:200]
    error = TransientError if code in RATE_LIMITED.get(kind, ()) else PermanentError
    raise error(f"{what} refused the message: code {code} {reason}".rstrip())
