"""Real receivers for notifications: an SMTP server (aiosmtpd) on loopback, and chat robots that check each
vendor's format and signature by the vendor's own recipe (computed here, independently of ``workflows.chat``).

``smtp_server`` (session): ``.messages`` holds every message received as ``email.message.Message`` with its
envelope recipients in ``X-RcptTo``; ``.clear()`` forgets them. ``chat_robot(kind, secret, fail_first=N)``
starts an HTTP robot that answers N times 503, then accepts; ``.accepted`` are the bodies it accepted
after verifying them, ``.refused`` the reasons it refused others.
"""
import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from email import message_from_bytes, policy
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
from aiosmtpd.controller import Controller


class _Inbox:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-RcptTo"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_inbox():
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def smtp_server(smtp_inbox, settings):
    """The session's SMTP server, emptied, configured as the relay (with the real backend: Django's test
    set-up would swap in its in-memory one)."""
    settings.EMAIL_BACKEND = "paas_site.mail.GuardedEmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_inbox.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.SLIPWAY_PUBLIC_URL = "http://testserver"
    with smtp_inbox.lock:
        smtp_inbox.messages.clear()
    return smtp_inbox


def wait_for(condition, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still not true after {timeout}s: {condition}")


# -- each vendor's recipe ------------------------------------------------------------------
def dingtalk_expected(secret: str, timestamp: str) -> str:
    # open.dingtalk.com: string_to_sign = timestamp + "\n" + secret; HmacSHA256 keyed with the secret;
    # base64; the query parameter carries it URL-encoded.
    string_to_sign = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), string_to_sign, digestmod=hashlib.sha256).digest()).decode()


def feishu_expected(secret: str, timestamp: str) -> str:
    # open.feishu.cn: key = timestamp + "\n" + secret; HmacSHA256 of an empty message under that key; base64.
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", digestmod=hashlib.sha256).digest()).decode()


def verify(kind: str, secret: str, path: str, raw_query: str, body: dict) -> str:
    """Why the vendor would refuse this request ("" if it would accept it)."""
    now = time.time()
    if kind == "slack":
        blocks = body.get("blocks") or []
        ok = isinstance(body.get("text"), str) and blocks and blocks[0]["text"]["type"] == "mrkdwn"
        return "" if ok else "not a Slack message"
    if kind == "dingtalk":
        query = parse_qs(raw_query)
        if query.get("access_token") != ["robot-token"]:
            return "no access_token"
        if secret:
            timestamp = query.get("timestamp", [""])[0]
            if not timestamp or abs(now * 1000 - int(timestamp)) > 3600_000:
                return "timestamp out of range"
            # the raw query holds the URL-encoded signature: decode it once, as the vendor does
            raw_sign = dict(part.split("=", 1) for part in raw_query.split("&"))["sign"]
            if unquote_plus(raw_sign) != dingtalk_expected(secret, timestamp):
                return "sign mismatch"
        return "" if body.get("msgtype") == "markdown" and body["markdown"].get("text") else "not markdown"
    if kind == "wecom":
        if parse_qs(raw_query).get("key") != ["robot-key"]:
            return "no key"
        return "" if body.get("msgtype") == "markdown" and body["markdown"].get("content") else "not markdown"
    if kind == "feishu":
        if secret:
            timestamp = body.get("timestamp", "")
            if not timestamp or abs(now - int(timestamp)) > 3600:
                return "timestamp out of range"
            if body.get("sign") != feishu_expected(secret, timestamp):
                return "sign mismatch"
        return "" if body.get("msg_type") == "text" and body["content"].get("text") else "not text"
    return f"unknown kind {kind}"


ACCEPTED = {"slack": (b"ok", "text/plain"), "dingtalk": (b'{"errcode":0,"errmsg":"ok"}', "application/json"),
            "wecom": (b'{"errcode":0,"errmsg":"ok"}', "application/json"),
            "feishu": (b'{"code":0,"msg":"success","data":{}}', "application/json")}
REFUSED = {"slack": (403, b"invalid_token", "text/plain"),
           "dingtalk": (200, b'{"errcode":310000,"errmsg":"sign not match"}', "application/json"),
           "wecom": (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}', "application/json"),
           "feishu": (200, b'{"code":19021,"msg":"sign match fail or timestamp is not within one hour"}',
                      "application/json")}
PATHS = {"slack": "/services/T000/B000/XXXX", "dingtalk": "/robot/send?access_token=robot-token",
         "wecom": "/cgi-bin/webhook/send?key=robot-key", "feishu": "/open-apis/bot/v2/hook/robot-id"}


@pytest.fixture
def chat_robot(http_peer):
    def start(kind: str, secret: str = "", fail_first: int = 0):
        state = {"failures_left": fail_first}

        def answer(request):
            if state["failures_left"] > 0:
                state["failures_left"] -= 1
                return 503, {}, b"busy"
            parts = urlsplit(request.path)
            body = json.loads(request.body)
            problem = verify(kind, secret, parts.path, parts.query, body)
            if problem:
                robot.refused.append(problem)
                status, text, content_type = REFUSED[kind]
                return status, {"Content-Type": content_type}, text
            robot.accepted.append(body)
            text, content_type = ACCEPTED[kind]
            return 200, {"Content-Type": content_type}, text

        robot = http_peer(answer)
        robot.accepted, robot.refused = [], []
        robot.webhook_url = robot.url + PATHS[kind]
        return robot

    return start
