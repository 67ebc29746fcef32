#!/usr/bin/env python3
"""keydeck sandbox: a seeded, IAM-enforcing AWS emulator behind a recording proxy.

Usage::

    python3 moto_sandbox.py --estate assets/estate.toml --data-dir DIR \
        [--port N] [--traffic demo|none] [--trail-delay SECONDS] [--no-stdin-watch]

What it does, in order:

1. starts moto's server in-process on an internal 127.0.0.1 port;
2. seeds the estate (KMS keys, aliases, rotations, deletions, Secrets Manager
   secrets, IAM operators) through boto3, back-dating moto's own records by running
   each step under a frozen clock (freezegun), then checks the dates took;
3. turns moto's IAM enforcement on (``POST /moto-api/reset-auth`` with ``0``);
4. serves a proxy on ``--port`` (0 = any free port) that relays every call to moto,
   rewrites moto's XML auth errors into the awsJson1_1 shape for JSON services,
   counts calls (``GET /_sandbox/stats``, ``POST /_sandbox/stats/reset``) and hands
   each exchange to :meth:`CallObserver.observe` (the future CloudTrail recorder);
5. prints exactly one JSON line on stdout (the ready line, also written to
   ``DATA_DIR/sandbox.json`` with mode 0600) and runs until SIGINT/SIGTERM/SIGHUP
   or EOF on stdin, then removes ``sandbox.json`` and exits 0.

Failures print one JSON line ``{"ready": false, "error": ..., "message": ...}``:
``moto_missing`` (exit 3), ``port_in_use`` (exit 4), ``seed_failed`` (exit 5).
Nothing else is ever written to stdout; logs go to ``DATA_DIR/sandbox.log`` and
never contain secret values.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import errno
import http.client
import http.server
import json
import logging
import logging.handlers
import os
import random
import secrets
import signal
import socket
import stat
import sys
import threading
import time
import tomllib
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, deque
from typing import Any, BinaryIO, NoReturn, TextIO

LOG = logging.getLogger("keydeck.sandbox")

EXIT_MOTO_MISSING = 3
EXIT_PORT_IN_USE = 4
EXIT_SEED_FAILED = 5

MAX_BODY_BYTES = 16 * 1024 * 1024  # requests above this are refused with 413
UPSTREAM_TIMEOUT_S = 60.0
SEED_ACCESS_KEY = "AKIASANDBOXSEEDING00"  # any key works while auth is still off
SEEDER_USER = "sandbox-seeder"
INSTALL_HINT = "install it with: pip install -r src/sandbox/requirements.txt"

# awsJson1_1 services keydeck talks to, by X-Amz-Target prefix.
JSON_TARGET_SERVICES = {
    "TrentService": "kms",
    "secretsmanager": "secretsmanager",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
}
# moto's XML auth error codes -> the code AWS returns over awsJson1_1.
JSON_ERROR_CODES = {
    "AccessDenied": "AccessDeniedException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "AuthFailure": "UnrecognizedClientException",
    "MissingAuthenticationToken": "MissingAuthenticationTokenException",
    "IncompleteSignature": "IncompleteSignatureException",
    "InvalidToken": "UnrecognizedClientException",
}
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
}


# --------------------------------------------------------------------------- output

class Output:
    """The one channel to the parent: a private dup of the original stdout.

    fd 1 itself is pointed at stderr so that stray prints (moto has a few) can never
    corrupt the protocol.
    """

    def __init__(self) -> None:
        sys.stdout.flush()
        self._fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._stream: TextIO = os.fdopen(self._fd, "w", encoding="utf-8")

    def line(self, obj: dict[str, Any]) -> None:
        self._stream.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._stream.flush()


def fail(out: Output, code: str, message: str, exit_code: int) -> NoReturn:
    """Print the failure line and exit."""
    LOG.error("startup failed: %s: %s", code, message)
    try:
        out.line({"ready": False, "error": code, "message": message})
    except OSError:
        pass
    logging.shutdown()
    os._exit(exit_code)


# --------------------------------------------------------------------------- estate

@dataclasses.dataclass
class Estate:
    account_id: str
    regions: list[str]
    keys: list[dict[str, Any]]
    secrets: list[dict[str, Any]]
    operators: list[dict[str, Any]]


def load_estate(path: str) -> Estate:
    """Parse and sanity-check the estate TOML (see its header for the fields)."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    estate = Estate(
        account_id=str(raw.get("account_id", "123456789012")),
        regions=list(raw.get("regions", ["eu-north-1"])),
        keys=list(raw.get("keys", [])),
        secrets=list(raw.get("secrets", [])),
        operators=list(raw.get("operators", [])),
    )
    if not (estate.account_id.isdigit() and len(estate.account_id) == 12):
        raise ValueError(f"account_id must be 12 digits, got {estate.account_id!r}")
    for k in estate.keys:
        for field in ("alias", "region"):
            if field not in k:
                raise ValueError(f"key entry without {field!r}: {k}")
        if k.get("state", "Enabled") not in ("Enabled", "Disabled", "PendingDeletion"):
            raise ValueError(f"key {k['alias']}: unknown state {k.get('state')!r}")
    for s in estate.secrets:
        if "name" not in s or "region" not in s:
            raise ValueError(f"secret entry without name/region: {s.get('name')}")
    for o in estate.operators:
        if "name" not in o:
            raise ValueError("operator entry without name")
        if o["name"] == SEEDER_USER:
            raise ValueError(f"operator name {SEEDER_USER!r} is reserved")
    return estate


# --------------------------------------------------------------------------- seeding

class Seeder:
    """Seeds the estate into the internal moto server through boto3.

    Back-dating: one ``freezegun`` clock is started for the whole of step 2 and moved
    to each event's date (``move_to``), so moto's own records carry those dates; the
    clock is always stopped before this class returns. :meth:`verify` then reads the
    dates back over the API and, if freezegun did not reach a value, writes it into
    moto's in-process backend objects (the fallback) and checks again.
    """

    def __init__(self, estate: Estate, internal_url: str, now: dt.datetime) -> None:
        import boto3
        from botocore.config import Config

        self.estate = estate
        self.url = internal_url
        self.now = now  # naive UTC
        self._session = boto3.session.Session()
        self._config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
        self._clients: dict[tuple[str, str, str], Any] = {}
        self.key_ids: dict[str, str] = {}  # primary alias -> KeyId
        self.rotation_keys: dict[str, list[float]] = {}  # alias -> rotations, days ago
        self.operators: dict[str, dict[str, str]] = {}
        self.seeder_creds: tuple[str, str] = ("", "")

    def client(self, service: str, region: str, creds: tuple[str, str] | None = None) -> Any:
        ak, sk = creds or (SEED_ACCESS_KEY, "sandbox-seeding")
        cache_key = (service, region, ak)
        if cache_key not in self._clients:
            self._clients[cache_key] = self._session.client(
                service, region_name=region, endpoint_url=self.url,
                aws_access_key_id=ak, aws_secret_access_key=sk, config=self._config)
        return self._clients[cache_key]

    def ago(self, days: float) -> dt.datetime:
        return self.now - dt.timedelta(days=float(days))

    # ---- IAM
    def seed_iam(self) -> None:
        home = self.estate.regions[0] if self.estate.regions else "us-east-1"
        iam = self.client("iam", home)
        iam.create_user(UserName=SEEDER_USER, Tags=[{"Key": "role", "Value": "sandbox-seeder"}])
        iam.put_user_policy(UserName=SEEDER_USER, PolicyName="sandbox-admin",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=SEEDER_USER)["AccessKey"]
        self.seeder_creds = (key["AccessKeyId"], key["SecretAccessKey"])
        for op in self.estate.operators:
            name, role = op["name"], str(op.get("role", "none"))
            user = iam.create_user(UserName=name, Tags=[{"Key": "role", "Value": role}])["User"]
            actions = list(op.get("actions", []))
            if actions:
                iam.put_user_policy(UserName=name, PolicyName=f"keydeck-{role}",
                                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                        {"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            self.operators[name] = {
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "arn": user["Arn"],
                "role": role,
            }
            LOG.info("operator %s (%s): %d allowed actions", user["Arn"], role, len(actions))

    # ---- KMS + Secrets Manager, under the frozen clock
    def seed_dated(self) -> None:
        from freezegun import freeze_time

        # logging is ignored so that log lines keep the real time.
        freezer = freeze_time(self.now, ignore=["logging"])
        clock = freezer.start()
        try:
            for k in self.estate.keys:
                self._seed_key(k, clock)
            for s in self.estate.secrets:
                self._seed_secret(s, clock)
        finally:
            freezer.stop()

    def _seed_key(self, k: dict[str, Any], clock: Any) -> None:
        region, alias = k["region"], k["alias"]
        kms = self.client("kms", region)
        clock.move_to(self.ago(k.get("created_days_ago", 0)))
        tags = [{"TagKey": str(t), "TagValue": str(v)} for t, v in (k.get("tags") or {}).items()]
        args: dict[str, Any] = {
            "Description": k.get("description", ""),
            "KeyUsage": k.get("usage", "ENCRYPT_DECRYPT"),
            "KeySpec": k.get("spec", "SYMMETRIC_DEFAULT"),
        }
        if tags:
            args["Tags"] = tags
        key_id = kms.create_key(**args)["KeyMetadata"]["KeyId"]
        self.key_ids[alias] = key_id
        for name in [alias, *k.get("extra_aliases", [])]:
            kms.create_alias(AliasName=f"alias/{name}", TargetKeyId=key_id)
        if k.get("rotation"):
            kms.enable_key_rotation(KeyId=key_id)
        rotations = sorted((float(d) for d in k.get("rotations_days_ago", [])), reverse=True)
        for days in rotations:
            clock.move_to(self.ago(days))
            kms.rotate_key_on_demand(KeyId=key_id)
        self.rotation_keys[alias] = rotations
        state = k.get("state", "Enabled")
        if state == "Disabled":
            kms.disable_key(KeyId=key_id)
        elif state == "PendingDeletion":
            clock.move_to(self.ago(k.get("deletion_scheduled_days_ago", 0)))
            kms.schedule_key_deletion(KeyId=key_id,
                                      PendingWindowInDays=int(k.get("deletion_window_days", 30)))
        LOG.info("key alias/%s (%s, %s) seeded", alias, region, state)

    def _seed_secret(self, s: dict[str, Any], clock: Any) -> None:
        sm = self.client("secretsmanager", s["region"])
        name = s["name"]
        created = float(s.get("created_days_ago", 0))
        clock.move_to(self.ago(created))
        args: dict[str, Any] = {"Name": name, "SecretString": secrets.token_hex(32)}
        if s.get("description"):
            args["Description"] = s["description"]
        if s.get("kms_key"):
            args["KmsKeyId"] = f"alias/{s['kms_key']}"
        tags = [{"Key": str(t), "Value": str(v)} for t, v in (s.get("tags") or {}).items()]
        if tags:
            args["Tags"] = tags
        sm.create_secret(**args)
        if s.get("rotation_days") or s.get("last_rotated_days_ago") is not None:
            clock.move_to(self.ago(s.get("last_rotated_days_ago", created)))
            if s.get("rotation_days"):
                # No Lambda (moto would invoke it): moto moves AWSCURRENT to a new
                # version itself, sets the rule, LastRotatedDate and NextRotationDate.
                sm.rotate_secret(SecretId=name, RotateImmediately=False,
                                 RotationRules={"AutomaticallyAfterDays": int(s["rotation_days"])})
                self._fresh_current_value(s["region"], name)
            else:
                sm.put_secret_value(SecretId=name, SecretString=secrets.token_hex(32))
        LOG.info("secret %s (%s) seeded", name, s["region"])

    def _fresh_current_value(self, region: str, name: str) -> None:
        """Give the version a Lambda-less rotate_secret just made current a new value.

        moto's RotateSecret without a Lambda copies the old value into the new
        AWSCURRENT version (RotateImmediately=False); a real rotation function would
        have put a new one. A PutSecretValue here would push a third version and leave
        an unlabelled one behind, so the value is replaced in moto's backend instead.
        """
        try:
            from moto.secretsmanager.models import secretsmanager_backends

            secret = secretsmanager_backends[self.estate.account_id][region].secrets[name]
            secret.versions[secret.default_version_id]["secret_string"] = secrets.token_hex(32)
        except Exception:  # moto internals moved: keep the copied value, still random
            LOG.warning("secret %s: could not refresh the rotated value", name, exc_info=True)

    # ---- verification and fallback
    def expected(self) -> list[tuple[str, str, str, float, float]]:
        """(kind, region, id, actual, wanted) for every back-dated value."""
        out: list[tuple[str, str, str, float, float]] = []
        for k in self.estate.keys:
            kms = self.client("kms", k["region"])
            key_id = self.key_ids[k["alias"]]
            md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            out.append(("key.creation", k["region"], key_id, md["CreationDate"].timestamp(),
                        _ts(self.ago(k.get("created_days_ago", 0)))))
            if k.get("state") == "PendingDeletion":
                want = self.ago(k.get("deletion_scheduled_days_ago", 0)) + dt.timedelta(
                    days=int(k.get("deletion_window_days", 30)))
                got = md.get("DeletionDate")
                out.append(("key.deletion", k["region"], key_id,
                            got.timestamp() if got else 0.0, _ts(want)))
            if self.rotation_keys.get(k["alias"]):
                rots = kms.list_key_rotations(KeyId=key_id)["Rotations"]
                for i, days in enumerate(self.rotation_keys[k["alias"]]):
                    got = rots[i]["RotationDate"].timestamp() if i < len(rots) else 0.0
                    out.append((f"key.rotation.{i}", k["region"], key_id, got, _ts(self.ago(days))))
        for s in self.estate.secrets:
            d = self.client("secretsmanager", s["region"]).describe_secret(SecretId=s["name"])
            created = s.get("created_days_ago", 0)
            out.append(("secret.created", s["region"], s["name"], d["CreatedDate"].timestamp(),
                        _ts(self.ago(created))))
            if s.get("rotation_days"):
                got = d.get("LastRotatedDate")
                out.append(("secret.rotated", s["region"], s["name"],
                            got.timestamp() if got else 0.0,
                            _ts(self.ago(s.get("last_rotated_days_ago", created)))))
                if not d.get("RotationEnabled") or d.get("RotationRules", {}).get(
                        "AutomaticallyAfterDays") != int(s["rotation_days"]):
                    raise RuntimeError(f"secret {s['name']}: rotation rule did not take")
        return out

    def verify(self) -> None:
        """Check every back-dated value; patch moto's backend directly where needed."""
        wrong = [e for e in self.expected() if abs(e[3] - e[4]) > 60]
        if not wrong:
            LOG.info("back-dating verified over the API (freezegun reached moto's clock)")
            return
        LOG.warning("freezegun missed %d values; writing them into moto's backend", len(wrong))
        self._patch_backend(wrong)
        still = [e for e in self.expected() if abs(e[3] - e[4]) > 60]
        if still:
            raise RuntimeError(f"back-dating failed for {[(e[0], e[2]) for e in still]}")

    def _patch_backend(self, wrong: list[tuple[str, str, str, float, float]]) -> None:
        from moto.kms.models import kms_backends
        from moto.secretsmanager.models import secretsmanager_backends

        acct = self.estate.account_id
        for kind, region, ident, _, want in wrong:
            if kind.startswith("key."):
                key = kms_backends[acct][region].keys[ident]
                if kind == "key.creation":
                    key.creation_date = want
                elif kind == "key.deletion":
                    key.deletion_date = dt.datetime.fromtimestamp(want, dt.UTC).replace(tzinfo=None)
                else:
                    key.rotations[int(kind.rsplit(".", 1)[1])]["RotationDate"] = want
            else:
                secret = secretsmanager_backends[acct][region].secrets[ident]
                if kind == "secret.created":
                    secret.created_date = int(want)
                else:
                    secret.last_rotation_date = int(want)
                    secret.last_changed_date = int(want)
                    days = int(next(x for x in self.estate.secrets if x["name"] == ident)["rotation_days"])
                    secret.next_rotation_date = int(want) + days * 86400


def _ts(d: dt.datetime) -> float:
    return d.replace(tzinfo=dt.UTC).timestamp()


def enable_iam_enforcement(internal_url: str) -> None:
    """POST /moto-api/reset-auth 0: every later request must be signed and allowed."""
    u = urllib.parse.urlparse(internal_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("POST", "/moto-api/reset-auth", body=b"0",
                     headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"reset-auth answered {resp.status}: {body[:200]!r}")
    finally:
        conn.close()


# --------------------------------------------------------------------------- proxy

@dataclasses.dataclass
class Exchange:
    """One relayed call, as the proxy saw it."""

    method: str
    path: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    client_address: tuple[str, int]
    status: int
    response_headers: list[tuple[str, str]]
    response_body: bytes
    started_at: dt.datetime  # aware UTC, when the request was fully read
    duration_ms: float  # time spent in moto (upstream round trip) plus rewriting
    service: str  # from the SigV4 credential scope (or X-Amz-Target), else "unknown"
    action: str  # "kms:ListKeys" form


class CallObserver:
    """Sees every relayed call. Today it counts; later it becomes the CloudTrail recorder.

    ``trail_delay`` (seconds, from ``--trail-delay``) is stored for that recorder:
    CloudTrail shows events some minutes after they happen.
    """

    def __init__(self, trail_delay: float = 0.0) -> None:
        self.trail_delay = trail_delay
        self._lock = threading.Lock()
        self._total = 0
        self._by_action: Counter[str] = Counter()
        self._by_service: Counter[str] = Counter()

    def observe(self, ex: Exchange) -> None:
        """The hook: called once for every request the proxy forwards to moto.

        Receives the request (method, path, headers, body, client address), the
        response as relayed to the client (status, headers, body, after error
        rewriting) and timing. Must not raise and must be quick; it runs on the
        proxy's request thread before the response is sent.
        """
        with self._lock:
            self._total += 1
            self._by_action[ex.action] += 1
            self._by_service[ex.service] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"total": self._total, "by_action": dict(self._by_action),
                    "by_service": dict(self._by_service)}

    def reset(self) -> None:
        with self._lock:
            self._total = 0
            self._by_action.clear()
            self._by_service.clear()


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def access_key_id(headers: list[tuple[str, str]]) -> str:
    """The (non-secret) access key id of a SigV4 Authorization header, or "-"."""
    auth = header(headers, "Authorization") or ""
    if "Credential=" not in auth:
        return "-"
    return auth.split("Credential=", 1)[1].split("/", 1)[0].strip()[:32] or "-"


def classify(method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[str, str]:
    """(service, "service:Action") for the stats and the hook."""
    service = ""
    auth = header(headers, "Authorization") or ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    scope = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    elif query.get("X-Amz-Credential"):
        scope = query["X-Amz-Credential"][0]
    parts = scope.split("/")
    if len(parts) >= 5:
        service = parts[3].lower()
    target = header(headers, "X-Amz-Target")
    action = ""
    if target:
        prefix, _, action = target.rpartition(".")
        service = service or JSON_TARGET_SERVICES.get(prefix, "")
    else:
        action = (query.get("Action") or [""])[0]
        ctype = (header(headers, "Content-Type") or "").lower()
        if not action and body and "x-www-form-urlencoded" in ctype:
            try:
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                action = (form.get("Action") or [""])[0]
            except ValueError:
                action = ""
    service = service or "unknown"
    return service, f"{service}:{action or 'unknown'}"


def rewrite_json_error(req_headers: list[tuple[str, str]], status: int,
                       headers: list[tuple[str, str]], body: bytes
                       ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Turn moto's XML auth error into awsJson1_1's shape for JSON-protocol requests."""
    if status < 400 or not header(req_headers, "X-Amz-Target"):
        return status, headers, body
    if not body.lstrip().startswith(b"<"):
        return status, headers, body
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return status, headers, body
    code_el = root.find(".//Code")
    if code_el is None or not (code_el.text or "").strip():
        return status, headers, body
    code = code_el.text.strip()
    msg_el = root.find(".//Message")
    message = (msg_el.text or "").strip() if msg_el is not None else ""
    json_code = JSON_ERROR_CODES.get(code, code)
    request_id = (header(headers, "x-amzn-RequestId") or header(headers, "x-amz-request-id")
                  or (root.findtext(".//RequestId") or "").strip() or str(uuid.uuid4()))
    keep = [(k, v) for k, v in headers if k.lower() not in {
        "content-type", "content-length", "x-amzn-errortype", "x-amzn-requestid"}]
    new_body = json.dumps({"__type": json_code, "message": message}).encode()
    keep += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", json_code),
             ("x-amzn-RequestId", request_id)]
    return status, keep, new_body


def rewrite_query_error(req_headers: list[tuple[str, str]], status: int,
                        headers: list[tuple[str, str]], body: bytes
                        ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Give query-protocol (STS, IAM) errors AWS's awsQuery shape.

    moto wraps its auth errors as ``<ErrorResponse><Errors><Error>…`` (the EC2 shape);
    AWS's awsQuery services answer ``<ErrorResponse><Error>…</Error><RequestId>``, which
    is what SDKs parse the error code from.
    """
    if status < 400 or header(req_headers, "X-Amz-Target"):
        return status, headers, body
    if not body.lstrip().startswith(b"<"):
        return status, headers, body
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return status, headers, body
    if root.find("./Error/Code") is not None:
        return status, headers, body  # already AWS's shape
    code_el = root.find(".//Error/Code")
    if code_el is None or not (code_el.text or "").strip():
        return status, headers, body
    code = (code_el.text or "").strip()
    message = (root.findtext(".//Error/Message") or "").strip()
    kind = (root.findtext(".//Error/Type") or "Sender").strip()
    request_id = (header(headers, "x-amzn-RequestId") or (root.findtext(".//RequestId") or "").strip()
                  or str(uuid.uuid4()))
    esc = lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # noqa: E731
    new_body = (f"<ErrorResponse><Error><Type>{esc(kind)}</Type><Code>{esc(code)}</Code>"
                f"<Message>{esc(message)}</Message></Error><RequestId>{esc(request_id)}</RequestId>"
                f"</ErrorResponse>").encode()
    keep = [(k, v) for k, v in headers if k.lower() not in {"content-type", "content-length", "x-amzn-requestid"}]
    keep += [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return status, keep, new_body


def refuse_unsigned(path: str, req_headers: list[tuple[str, str]], status: int,
                    headers: list[tuple[str, str]], body: bytes
                    ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Give unsigned requests AWS's answer where moto crashes on them (500).

    With IAM enforcement on, moto reads the Authorization header unconditionally and
    fails with a KeyError (HTTP 500, HTML) when it is absent or not SigV4. AWS answers
    MissingAuthenticationToken (no signature) or IncompleteSignature (malformed one);
    the XML built here is turned into awsJson1_1 by :func:`rewrite_json_error`.
    """
    if status < 500:
        return status, headers, body
    auth = header(req_headers, "Authorization")
    if (auth and "Credential=" in auth and "Signature=" in auth) or "X-Amz-Credential=" in path:
        return status, headers, body
    if not auth:
        code, message = "MissingAuthenticationToken", "Missing Authentication Token"
        status = 400 if header(req_headers, "X-Amz-Target") else 403
    else:
        code, message = "IncompleteSignature", "Authorization header is not a valid AWS4-HMAC-SHA256 signature"
        status = 400
    rid = str(uuid.uuid4())
    xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
           f"</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>").encode()
    kept = [(k, v) for k, v in headers if k.lower() in ("date", "server")]
    return status, kept + [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], xml


def normalize_json_response(req_headers: list[tuple[str, str]], status: int,
                            headers: list[tuple[str, str]], body: bytes
                            ) -> tuple[int, list[tuple[str, str]], bytes]:
    """Make moto's answers to awsJson requests look like AWS's.

    moto labels JSON bodies ``text/html``; AWS sends ``application/x-amz-json-1.x``.
    moto's crashes (HTTP 5xx, an HTML page, e.g. an action it does not implement)
    become ``{"__type": "InternalFailure", ...}`` so an SDK can parse them.
    """
    ctype_req = (header(req_headers, "Content-Type") or "").lower()
    if not header(req_headers, "X-Amz-Target") or "x-amz-json" not in ctype_req:
        return status, headers, body
    json_ct = "application/x-amz-json-1.0" if "1.0" in ctype_req else "application/x-amz-json-1.1"
    ctype = (header(headers, "Content-Type") or "").lower()
    if "json" in ctype:
        return status, headers, body
    stripped = body.lstrip()
    if status >= 500 and not stripped.startswith(b"{"):
        error = "InternalFailure"
        body = json.dumps({"__type": error, "message":
                           f"the sandbox emulator (moto) failed on this request (HTTP {status})"}).encode()
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-type", "x-amzn-errortype")]
        headers += [("x-amzn-ErrorType", error)]
        if not header(headers, "x-amzn-RequestId"):
            headers.append(("x-amzn-RequestId", str(uuid.uuid4())))
    elif stripped and not stripped.startswith(b"{"):
        return status, headers, body
    headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
    return status, headers + [("Content-Type", json_ct)], body


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_chunked(rfile: BinaryIO, limit: int) -> bytes:
    """Decode a Transfer-Encoding: chunked request body (trailers are dropped)."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(65537)
        if not line:
            raise BadRequest(400, "truncated chunked body")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(400, "malformed chunk size") from None
        if size < 0:
            raise BadRequest(400, "malformed chunk size")
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise BadRequest(413, f"request body over {limit} bytes")
        data = rfile.read(size)
        if len(data) != size:
            raise BadRequest(400, "truncated chunk")
        parts.append(data)
        rfile.readline(3)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    """Relays one connection's requests to moto (HTTP/1.1, keep-alive)."""

    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections are dropped after this
    server: "SandboxProxy"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        LOG.debug("proxy: " + format, *args)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes,
              head: bool = False) -> None:
        self.send_response_only(status)
        have_date = False
        for k, v in headers:
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == "content-length":
                continue
            have_date = have_date or lk == "date"
            self.send_header(k, v)
        if not have_date:
            self.send_header("Date", self.date_time_string())
        length = str(len(body))
        if head:  # a HEAD answer announces the length of the GET it stands for
            length = header(headers, "Content-Length") or length
        self.send_header("Content-Length", length)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any, error_type: str | None = None) -> None:
        headers = [("Content-Type", "application/json")]
        if error_type:
            headers = [("Content-Type", "application/x-amz-json-1.1"),
                       ("x-amzn-ErrorType", error_type), ("x-amzn-RequestId", str(uuid.uuid4()))]
        self._send(status, headers, json.dumps(obj).encode(), head=self.command == "HEAD")

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return read_chunked(self.rfile, MAX_BODY_BYTES)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
        except ValueError:
            raise BadRequest(400, "malformed Content-Length") from None
        if n < 0:
            raise BadRequest(400, "malformed Content-Length")
        if n > MAX_BODY_BYTES:
            raise BadRequest(413, f"request body over {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(n)
        if len(body) != n:
            raise BadRequest(400, "truncated body")
        return body

    def _handle(self) -> None:
        try:
            self._handle_inner()
        except (ConnectionError, socket.timeout, TimeoutError):
            self.close_connection = True
        except Exception:  # never let one request kill the proxy
            LOG.exception("proxy: unexpected error on %s %s", self.command, self.path)
            self.close_connection = True
            try:
                self._send_json(502, {"__type": "SandboxProxyError",
                                      "message": "internal error in the sandbox proxy"},
                                error_type="SandboxProxyError")
            except Exception:
                pass

    def _handle_inner(self) -> None:
        path_only = urllib.parse.urlsplit(self.path).path
        try:
            body = self._read_body()
        except BadRequest as e:
            self.close_connection = True
            self._send_json(e.status, {"__type": "BadRequest", "message": str(e)},
                            error_type="BadRequest")
            return
        if path_only.startswith("/_sandbox/"):
            self._sandbox_endpoint(path_only)
            return
        if path_only.startswith("/moto-api"):
            # Not relayed: it would let any client switch IAM enforcement off or wipe state.
            self._send_json(403, {"__type": "AccessDeniedException",
                                  "message": "moto's admin API is not exposed by the sandbox proxy"},
                            error_type="AccessDeniedException")
            return
        req_headers = [(k, v) for k, v in self.headers.items()]
        started = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        status, _reason, resp_headers, resp_body = self._forward(req_headers, body)
        status, resp_headers, resp_body = refuse_unsigned(self.path, req_headers, status,
                                                          resp_headers, resp_body)
        status, resp_headers, resp_body = rewrite_json_error(req_headers, status, resp_headers, resp_body)
        status, resp_headers, resp_body = rewrite_query_error(req_headers, status, resp_headers, resp_body)
        status, resp_headers, resp_body = normalize_json_response(req_headers, status,
                                                                  resp_headers, resp_body)
        duration_ms = (time.monotonic() - t0) * 1000.0
        service, action = classify(self.command, self.path, req_headers, body)
        ex = Exchange(self.command, self.path, req_headers, body, self.client_address, status,
                      resp_headers, resp_body, started, duration_ms, service, action)
        try:
            self.server.observer.observe(ex)
        except Exception:
            LOG.exception("proxy: observer failed")
        LOG.info("%s %s from %s -> %d (%.1f ms)", action, access_key_id(req_headers),
                 self.client_address[0], status, duration_ms)
        self._send(status, resp_headers, resp_body, head=self.command == "HEAD")

    def _forward(self, req_headers: list[tuple[str, str]], body: bytes
                 ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, port = self.server.upstream
        conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            has_host = False
            for k, v in req_headers:
                lk = k.lower()
                if lk in HOP_BY_HOP or lk == "content-length" or lk == "expect":
                    continue
                has_host = has_host or lk == "host"
                conn.putheader(k, v)
            if not has_host:  # HTTP/1.0 client: it cannot have signed a Host either
                conn.putheader("Host", "%s:%d" % self.server.server_address[:2])
            if body or self.headers.get("Content-Length") is not None or \
                    self.headers.get("Transfer-Encoding") is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        except (OSError, http.client.HTTPException, ValueError) as e:
            LOG.warning("proxy: upstream failure for %s %s: %s", self.command, self.path, e)
            msg = {"__type": "ServiceUnavailableException", "message": f"sandbox upstream error: {e}"}
            return 502, "Bad Gateway", [("Content-Type", "application/x-amz-json-1.1"),
                                        ("x-amzn-ErrorType", "ServiceUnavailableException")], \
                json.dumps(msg).encode()
        finally:
            conn.close()

    def _sandbox_endpoint(self, path: str) -> None:
        obs = self.server.observer
        if path == "/_sandbox/stats" and self.command in ("GET", "HEAD"):
            self._send_json(200, obs.stats())
        elif path == "/_sandbox/stats/reset" and self.command == "POST":
            obs.reset()
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": "not_found",
                                  "message": f"no sandbox endpoint {self.command} {path}"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class SandboxProxy(http.server.ThreadingHTTPServer):
    """The client-facing server; ``upstream`` is moto's internal (host, port)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, port: int, observer: CallObserver) -> None:
        self.observer = observer
        self.upstream: tuple[str, int] = ("127.0.0.1", 0)
        super().__init__(("127.0.0.1", port), ProxyHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("proxy: connection error from %s", client_address, exc_info=True)


# --------------------------------------------------------------------------- traffic

class TrafficDriver(threading.Thread):
    """``--traffic demo``: the operators going about their day, signed, via the proxy."""

    def __init__(self, endpoint: str, estate: Estate, operators: dict[str, dict[str, str]],
                 stop: threading.Event) -> None:
        super().__init__(name="traffic", daemon=True)
        import boto3
        from botocore.config import Config

        self.stop = stop
        self.rng = random.Random()
        self.blobs: deque[bytes] = deque(maxlen=20)
        keys = {k["alias"]: k for k in estate.keys}
        enc = keys.get("drop-national-id-key") or next(
            (k for k in estate.keys if k.get("usage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"
             and k.get("spec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
             and k.get("state", "Enabled") == "Enabled"), None)
        self.data_key = f"alias/{enc['alias']}" if enc else "alias/drop-national-id-key"
        self.region = enc["region"] if enc else (estate.regions or ["eu-north-1"])[0]
        sec = next((s for s in estate.secrets if s["name"] == "JWT_SECRET"),
                   estate.secrets[0] if estate.secrets else None)
        self.secret = sec["name"] if sec else "JWT_SECRET"
        self.describe_targets = [f"alias/{k['alias']}" for k in estate.keys
                                 if k["region"] == self.region] or [self.data_key]
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                        connect_timeout=2, read_timeout=10)
        session = boto3.session.Session()
        self.clients: dict[tuple[str, str], Any] = {}
        for name, op in operators.items():
            for service in ("kms", "secretsmanager"):
                self.clients[(name, service)] = session.client(
                    service, region_name=self.region, endpoint_url=endpoint, config=config,
                    aws_access_key_id=op["access_key_id"],
                    aws_secret_access_key=op["secret_access_key"])

    def _call(self, who: str, service: str, op: str, **kwargs: Any) -> Any:
        client = self.clients.get((who, service))
        if client is None:
            return None
        try:
            return getattr(client, op)(**kwargs)
        except Exception as e:  # swallowed: traffic must never hurt the server
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            LOG.debug("traffic: %s %s:%s -> %s", who, service, op, code)
            return None

    def tick(self) -> None:
        r = self.rng.random
        out = self._call("app-encrypt", "kms", "generate_data_key", KeyId=self.data_key,
                         KeySpec="AES_256")
        if out:
            self.blobs.append(out["CiphertextBlob"])
        if self.blobs and r() < 0.6:
            self._call("app-runner", "kms", "decrypt", CiphertextBlob=self.rng.choice(self.blobs))
        if r() < 0.3:
            self._call("app-runner", "secretsmanager", "get_secret_value", SecretId=self.secret)
        if self.blobs and r() < 0.15:
            self._call("compliance-decrypt", "kms", "decrypt",
                       CiphertextBlob=self.rng.choice(self.blobs))
        if r() < 0.4:
            if r() < 0.5:
                self._call("key-auditor", "kms", "list_keys")
            else:
                self._call("key-auditor", "kms", "describe_key",
                           KeyId=self.rng.choice(self.describe_targets))

    def outsider_burst(self) -> None:
        for _ in range(self.rng.randint(4, 6)):
            pick = self.rng.random()
            if pick < 0.4:
                self._call("outsider", "kms", "describe_key",
                           KeyId=self.rng.choice(self.describe_targets))
            elif pick < 0.7 and self.blobs:
                self._call("outsider", "kms", "decrypt", CiphertextBlob=self.rng.choice(self.blobs))
            else:
                self._call("outsider", "secretsmanager", "list_secrets")

    def run(self) -> None:
        next_burst = time.monotonic() + self.rng.uniform(6, 12)
        while not self.stop.is_set():
            try:
                self.tick()
                if time.monotonic() >= next_burst:
                    self.outsider_burst()
                    next_burst = time.monotonic() + self.rng.uniform(25, 35)
            except Exception:
                LOG.exception("traffic: tick failed")
            self.stop.wait(self.rng.uniform(1.0, 3.0))


# --------------------------------------------------------------------------- lifetime

def stdin_is_devnull() -> bool:
    """True when stdin is /dev/null or closed (a watcher would see EOF at once)."""
    try:
        st = os.fstat(0)
    except OSError:
        return True
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


def watch_stdin(stop: threading.Event) -> None:
    """Set ``stop`` when stdin reaches EOF (the parent died or closed the pipe)."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    LOG.info("stdin reached EOF; shutting down")
    stop.set()


def write_ready_file(data_dir: str, ready: dict[str, Any]) -> str:
    """Atomically write DATA_DIR/sandbox.json with mode 0600."""
    final = os.path.join(data_dir, "sandbox.json")
    tmp = os.path.join(data_dir, f".sandbox.json.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(ready, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, final)
    return final


def setup_logging(data_dir: str) -> None:
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    log_path = os.path.join(data_dir, "sandbox.log")
    handler = logging.handlers.RotatingFileHandler(log_path, maxBytes=5 * 1024 * 1024, backupCount=2)
    os.chmod(log_path, 0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="keydeck's seeded AWS sandbox (moto + proxy)")
    p.add_argument("--estate", required=True, help="estate TOML to seed")
    p.add_argument("--data-dir", required=True, help="where sandbox.json and sandbox.log go")
    p.add_argument("--port", type=int, default=0, help="proxy port on 127.0.0.1 (0 = free port)")
    p.add_argument("--traffic", choices=["demo", "none"], default="none")
    p.add_argument("--trail-delay", type=float, default=0.0,
                   help="seconds before a call shows in the trail (stored for the recorder)")
    p.add_argument("--no-stdin-watch", action="store_true",
                   help="do not exit when stdin reaches EOF")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.monotonic()
    out = Output()
    data_dir = os.path.abspath(args.data_dir)
    try:
        setup_logging(data_dir)
    except OSError as e:
        out.line({"ready": False, "error": "seed_failed", "message": f"data dir {data_dir}: {e}"})
        return EXIT_SEED_FAILED
    LOG.info("starting: estate=%s port=%s traffic=%s", args.estate, args.port, args.traffic)

    try:
        import boto3  # noqa: F401
        import flask  # noqa: F401
        import freezegun  # noqa: F401
        import werkzeug  # noqa: F401
        import moto
        from moto.server import ThreadedMotoServer
    except ImportError as e:
        fail(out, "moto_missing", f"the sandbox needs moto[server] and freezegun ({e}); {INSTALL_HINT}",
             EXIT_MOTO_MISSING)
        return EXIT_MOTO_MISSING

    try:
        estate = load_estate(args.estate)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as e:
        fail(out, "seed_failed", f"cannot read estate {args.estate}: {e}", EXIT_SEED_FAILED)
    os.environ["MOTO_ACCOUNT_ID"] = estate.account_id  # every request lands in this account

    observer = CallObserver(trail_delay=args.trail_delay)
    try:
        proxy = SandboxProxy(args.port, observer)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            fail(out, "port_in_use", f"port {args.port} on 127.0.0.1 is already in use", EXIT_PORT_IN_USE)
        fail(out, "seed_failed", f"cannot listen on 127.0.0.1:{args.port}: {e}", EXIT_SEED_FAILED)
    endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    if args.no_stdin_watch or stdin_is_devnull():
        LOG.info("stdin watcher off")
    else:  # started now so that a parent dying during seeding is noticed too
        threading.Thread(target=watch_stdin, args=(stop,), name="stdin", daemon=True).start()

    moto_server = None
    try:
        moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto_server.start()
        mhost, mport = moto_server.get_host_and_port()
        internal = f"http://{mhost}:{mport}"
        proxy.upstream = (mhost, mport)
        LOG.info("moto %s listening internally on %s", moto.__version__, internal)

        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        seeder = Seeder(estate, internal, now)
        seeder.seed_iam()
        seeder.seed_dated()
        seeder.verify()
        enable_iam_enforcement(internal)
        ident = seeder.client("sts", "us-east-1", seeder.seeder_creds).get_caller_identity()
        LOG.info("IAM enforcement on; seeder is %s", ident["Arn"])
        traffic = (TrafficDriver(endpoint, estate, seeder.operators, stop)
                   if args.traffic == "demo" else None)
        threading.Thread(target=proxy.serve_forever, name="proxy", daemon=True).start()
        ready = {
            "ready": True,
            "endpoint": endpoint,
            "account_id": estate.account_id,
            "regions": estate.regions,
            "operators": seeder.operators,
            "pid": os.getpid(),
            "moto_version": moto.__version__,
        }
        ready_file = write_ready_file(data_dir, ready)
    except Exception as e:
        LOG.exception("seeding failed")
        fail(out, "seed_failed", f"{type(e).__name__}: {e}", EXIT_SEED_FAILED)
        return EXIT_SEED_FAILED

    if not stop.is_set():
        try:
            out.line(ready)
            LOG.info("ready on %s after %.2f s", endpoint, time.monotonic() - t_start)
            if traffic is not None:
                traffic.start()
        except OSError as e:  # the parent is gone (EPIPE)
            LOG.warning("cannot write the ready line (%s)", e)
            stop.set()
    while not stop.wait(1.0):
        pass
    LOG.info("shutting down")
    try:
        os.unlink(ready_file)
    except OSError:
        pass
    for closer in (proxy.shutdown, proxy.server_close, moto_server.stop):
        t = threading.Thread(target=closer, daemon=True)
        t.start()
        t.join(5)
    LOG.info("stopped")
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
