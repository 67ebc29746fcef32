#!/usr/bin/env python3
"""keydeck sandbox: a seeded, IAM-enforcing AWS emulator behind a recording proxy.

Usage::

    python3 moto_sandbox.py --estate assets/estate.toml --data-dir DIR \
        [--port N] [--traffic demo|none] [--trail-delay SECONDS] [--no-stdin-watch]

What it does, in order:

1. starts moto's server in-process on an internal 127.0.0.1 port, checking SigV4 over
   the request body as received (:class:`RawBodyApp`; moto re-encodes form bodies), with
   moto's models taught what KMS and Secrets Manager document and moto lacks (imported
   key material, multi-Region replicas, rotation schedules: :func:`patch_moto_models`);
2. seeds the estate (KMS keys, aliases, rotations, deletions, Secrets Manager
   secrets, IAM operators) through boto3, back-dating moto's own records by running
   each step under a frozen clock (freezegun), then checks the dates took; then the
   SNS topics and the applications' stored data (``stored_data``: data keys encrypted
   under their KMS key before any incident, which the demo traffic decrypts);
3. turns moto's IAM enforcement on (``POST /moto-api/reset-auth`` with ``0``);
4. serves a proxy on ``--port`` (0 = any free port) that relays every call to moto,
   rewrites moto's XML auth errors into the awsJson1_1 shape for JSON services,
   refuses KMS cryptographic operations on keys whose state KMS refuses them in
   (DisabledException, KMSInvalidStateException; :class:`KeyStateGuard`, moto does not
   enforce key states), gives Sign/Verify KMS's semantics (MessageType DIGEST,
   KMSInvalidSignatureException; :class:`SignatureFixer`), gives Secrets Manager's label
   moves AWS's atomicity and answers and enforces per-secret permissions
   (:class:`SecretsFixer`), names IAM denials as AWS
   does (ReEncryptFrom/To, SNS's AuthorizationError), counts calls (``GET
   /_sandbox/stats``, ``POST /_sandbox/stats/reset``) and hands each exchange to
   :meth:`CallObserver.observe`, which records it in CloudTrail (below);
5. prints exactly one JSON line on stdout (the ready line, also written to
   ``DATA_DIR/sandbox.json`` with mode 0600) and runs until SIGINT/SIGTERM/SIGHUP
   or EOF on stdin, then removes ``sandbox.json`` (if it is still its own) and exits 0.
   The keydeck process that starts the driver owns the data dir (it holds an exclusive
   lock on ``DATA_DIR/sandbox.lock``); the driver itself takes no lock.

CloudTrail (:class:`CloudTrailRecorder`; moto has no event history of its own):

* Every KMS, Secrets Manager, STS, IAM and SNS call through the proxy becomes one record
  with the fields of AWS's published KMS / Secrets Manager examples (eventVersion
  1.08, userIdentity from the SigV4 access key via moto's IAM backend, eventTime to
  the second, awsRegion from the credential scope (IAM: us-east-1), requestParameters
  and responseElements in AWS's camelCase, errorCode/errorMessage, readOnly,
  resources = the KMS keys named by key id, key ARN, alias or alias ARN, ...). The
  record is stored before the caller gets its answer.
* Secret material is never recorded: Plaintext, CiphertextBlob, SecretString,
  SecretBinary, RandomPassword, private keys, passwords, secret access keys and
  session tokens are dropped wherever they occur (:data:`SENSITIVE_MEMBERS`), reads
  and KMS cryptographic operations record ``responseElements: null`` as AWS does,
  and an error message that echoes such a value has it replaced.
* Recorded as AWS would not, on purpose: calls that fail authentication (no
  signature: userIdentity ``{"type": "Unknown"}``; an access key the account does
  not have: ``{"type": "Unknown", "accessKeyId": ...}``; a bad signature: the key's
  owner), so that probing shows up. Not recorded: operations the service does not
  have (an unknown X-Amz-Target; AWS has no such event), other services, the
  ``/_sandbox`` endpoints, the seeding (it goes to moto directly, before IAM
  enforcement), and successful LookupEvents calls (the console polls them; refused
  ones are recorded). Requests without a credential scope are recorded in the
  estate's first region. Parameters whose JSON is over 100 KiB are recorded as null.
* SNS Publish and PublishBatch are data events in AWS (eventCategory Data,
  managementEvent false): they are written to the trail file, as a trail selecting SNS
  data events would, and never answered by LookupEvents; CreateTopic, ListTopics, ...
  are management events like the others. The message body is never recorded.
* ``LookupEvents`` (both X-Amz-Target spellings) is answered by the proxy: SigV4 is
  verified and ``cloudtrail:LookupEvents`` authorised with moto's own IAM code; one
  lookup attribute (EventId, EventName, EventSource, ReadOnly, ResourceName,
  ResourceType, Username, AccessKeyId); StartTime/EndTime (default: the last 90
  days); MaxResults 1-50 (default 50); newest first; only the request's region;
  NextToken = the position of the last event returned plus the query, signed, so
  paging neither repeats nor skips while events arrive; 2 requests/s per region
  (token bucket; HTTP 400 ThrottlingException "Rate exceeded"); AWS's exception
  names for bad input. A record becomes visible ``--trail-delay`` seconds after its
  eventTime (per region overridable, see below). Other CloudTrail calls go to moto.
* Records live in memory (the newest :data:`TRAIL_MEMORY_CAP`) and are appended,
  one JSON object a line, flushed per record, to ``DATA_DIR/cloudtrail.jsonl``
  (mode 0600; a previous run's file is kept as ``cloudtrail.jsonl.prev``).

Sandbox-only endpoints (loopback, unauthenticated, never recorded):

* ``GET /_sandbox/stats``, ``POST /_sandbox/stats/reset``: the request counter.
* ``GET /_sandbox/sns/messages?topic=NAME`` (or a topic ARN; ``&region=R``, default the
  estate's first region): ``{"topic", "topic_arn", "region", "messages": [{"message_id",
  "subject", "message", "message_attributes"}]}``, oldest first (moto's record of what
  was published); 404 for an unknown topic.
* ``POST /_sandbox/traffic/stored-reads``: every stored record is decrypted once now by
  the principal that holds it, as the demo traffic does at random; answers ``{"reads":
  [{"principal", "region", "key", "record", "outcome": "ok" or the error code}]}``.
* ``GET /_sandbox/trail``: ``{"file": path of cloudtrail.jsonl, "recorded": N,
  "in_memory": N, "delay": {...}}``.
* ``GET /_sandbox/trail-delay``: ``{"seconds": default, "regions": {region: s}}``.
* ``POST /_sandbox/trail-delay``: body ``3`` sets the default delay (seconds,
  0-3600); ``{"seconds": 3, "region": "us-west-2"}`` sets one region's delay (so
  tests sharing a sandbox can use different delays), ``{"seconds": null, "region":
  "us-west-2"}`` drops it. Applies to calls recorded afterwards. 400 on bad input.

Failures print one JSON line ``{"ready": false, "error": ..., "message": ...}``:
``moto_missing`` (exit 3), ``port_in_use`` (exit 4), ``seed_failed`` (exit 5).
Nothing else is ever written to stdout; logs go to ``DATA_DIR/sandbox.log`` and
never contain secret values.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import dataclasses
import datetime as dt
import errno
import fnmatch
import hashlib
import hmac
import http.client
import http.server
import json
import logging
import logging.handlers
import math
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
    "CloudTrail_20131101": "cloudtrail",  # the short form smithy-generated SDKs (Rust) send
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
    topics: list[dict[str, Any]] = dataclasses.field(default_factory=list)


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
        topics=list(raw.get("topics", [])),
    )
    if not (estate.account_id.isdigit() and len(estate.account_id) == 12):
        raise ValueError(f"account_id must be 12 digits, got {estate.account_id!r}")
    for k in estate.keys:
        for field in ("alias", "region"):
            if field not in k:
                raise ValueError(f"key entry without {field!r}: {k}")
        if k.get("state", "Enabled") not in ("Enabled", "Disabled", "PendingDeletion"):
            raise ValueError(f"key {k['alias']}: unknown state {k.get('state')!r}")
        stored = k.get("stored_data")
        if stored is not None:
            if not isinstance(stored, dict) or not isinstance(stored.get("principal"), str) \
                    or not isinstance(stored.get("records", 1), int) or not 0 < stored.get("records", 1) <= 100:
                raise ValueError(f"key {k['alias']}: stored_data needs principal and records (1..100)")
            if k.get("usage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT" \
                    or k.get("spec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
                raise ValueError(f"key {k['alias']}: stored_data needs a symmetric encryption key")
    for k in estate.keys:
        if k.get("origin", "AWS_KMS") not in ("AWS_KMS", "EXTERNAL"):
            raise ValueError(f"key {k['alias']}: origin must be AWS_KMS or EXTERNAL")
        if k.get("material_expires_in_days") is not None:
            if k.get("origin") != "EXTERNAL":
                raise ValueError(f"key {k['alias']}: material_expires_in_days needs origin EXTERNAL")
            span = float(k.get("created_days_ago", 0)) + float(k["material_expires_in_days"])
            if not (0 < float(k["material_expires_in_days"]) and span <= 365):
                raise ValueError(f"key {k['alias']}: ValidTo must be in the future and at most 365 days after "
                                 f"the import (created_days_ago + material_expires_in_days <= 365)")
        if k.get("origin") == "EXTERNAL" and k.get("rotation"):
            raise ValueError(f"key {k['alias']}: KMS cannot rotate imported key material automatically")
        for r in k.get("replica_regions", []) or []:
            if not k.get("multi_region") or r == k["region"]:
                raise ValueError(f"key {k['alias']}: replica_regions needs multi_region = true and other regions")
    for s in estate.secrets:
        if "name" not in s or "region" not in s:
            raise ValueError(f"secret entry without name/region: {s.get('name')}")
        if s.get("rotation_days") and s.get("rotation_schedule"):
            raise ValueError(f"secret {s['name']}: rotation_days or rotation_schedule, not both")
    for t in estate.topics:
        if "name" not in t or "region" not in t:
            raise ValueError(f"topic entry without name/region: {t.get('name')}")
    for o in estate.operators:
        if "name" not in o:
            raise ValueError("operator entry without name")
        for e in o.get("scoped_secrets", []) or []:
            if not isinstance(e, dict) or not all(isinstance(a, str) and a.startswith("secretsmanager:")
                                                  for a in e.get("actions", [])) \
                    or not e.get("names") or not all(isinstance(n, str) for n in e["names"]):
                raise ValueError(f"operator {o['name']}: scoped_secrets entries need secretsmanager: "
                                 f"actions and secret name patterns")
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
        self.stored: list[StoredRecord] = []  # the applications' data at rest (stored_data)

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
            for entry in op.get("scoped_secrets", []) or []:  # enforced per secret by SecretsFixer
                actions += [a for a in entry.get("actions", []) if a not in actions]
            if actions:
                iam.put_user_policy(UserName=name, PolicyName=f"keydeck-{role}",
                                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                        {"Effect": "Allow", "Action": moto_actions(actions),
                                         "Resource": "*"}]}))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            self.operators[name] = {
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "arn": user["Arn"],
                "role": role,
            }
            if op.get("second_access_key"):  # IAM allows two access keys per user
                second = iam.create_access_key(UserName=name)["AccessKey"]
                self.operators[name]["second_access_key_id"] = second["AccessKeyId"]
                self.operators[name]["second_secret_access_key"] = second["SecretAccessKey"]
            if op.get("assumable_role") and actions:
                # The IAM role the operator plays (004 §4.5), which the user may assume:
                # the same permissions; the user may call sts:AssumeRole on it alone.
                trust = {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}]}
                arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust),
                                      Tags=[{"Key": "keydeck-operator", "Value": name}])["Role"]["Arn"]
                iam.put_role_policy(RoleName=role, PolicyName=f"keydeck-{role}",
                                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                        {"Effect": "Allow", "Action": moto_actions(actions), "Resource": "*"}]}))
                iam.put_user_policy(UserName=name, PolicyName=f"keydeck-assume-{role}",
                                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn}]}))
                self.operators[name]["role_arn"] = arn
            LOG.info("operator %s (%s): %d allowed actions", user["Arn"], role, len(actions))

    # ---- SNS topics (not dated: moto keeps no creation date for topics)
    def seed_topics(self) -> None:
        for t in self.estate.topics:
            sns = self.client("sns", t["region"])
            tags = [{"Key": str(k), "Value": str(v)} for k, v in (t.get("tags") or {}).items()]
            args: dict[str, Any] = {"Name": t["name"]}
            if tags:
                args["Tags"] = tags
            arn = sns.create_topic(**args)["TopicArn"]
            LOG.info("topic %s seeded", arn)

    # ---- the applications' data at rest, made before any incident
    def seed_stored_data(self) -> None:
        """Envelope-encrypt each key's ``stored_data`` records: GenerateDataKey with the
        record's encryption context, keeping only the encrypted data key, as an application
        stores it next to its data. The plaintext data keys are dropped at once."""
        for k in self.estate.keys:
            spec = k.get("stored_data")
            if not spec:
                continue
            kms = self.client("kms", k["region"])
            purpose = str(spec.get("purpose", k["alias"]))
            for i in range(int(spec.get("records", 1))):
                context = {"purpose": purpose, "record": f"{purpose}-{i + 1:04d}"}
                out = kms.generate_data_key(KeyId=f"alias/{k['alias']}", KeySpec="AES_256",
                                            EncryptionContext=context)
                self.stored.append(StoredRecord(str(spec["principal"]), k["region"], k["alias"],
                                                out["CiphertextBlob"], context))
            LOG.info("key alias/%s: %d stored records for %s", k["alias"], int(spec.get("records", 1)),
                     spec["principal"])

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
        imported = k.get("origin") == "EXTERNAL"
        if imported:
            args["Origin"] = "EXTERNAL"
        if k.get("multi_region"):
            args["MultiRegion"] = True
        key_id = kms.create_key(**args)["KeyMetadata"]["KeyId"]
        self.key_ids[alias] = key_id
        if imported:
            expires = k.get("material_expires_in_days")
            self._import_material(kms, key_id, None if expires is None else self.ago(-float(expires)))
        for name in [alias, *k.get("extra_aliases", [])]:
            kms.create_alias(AliasName=f"alias/{name}", TargetKeyId=key_id)
        if k.get("rotation"):
            kms.enable_key_rotation(KeyId=key_id)
        rotations = sorted((float(d) for d in k.get("rotations_days_ago", [])), reverse=True)
        for days in rotations:
            clock.move_to(self.ago(days))
            if imported:  # on-demand rotation of imported material: new material first
                self._import_material(kms, key_id, None, new=True)
            kms.rotate_key_on_demand(KeyId=key_id)
        self.rotation_keys[alias] = rotations
        if k.get("rotation"):
            self._record_automatic_rotations(k["region"], key_id, float(k.get("created_days_ago", 0)))
        for replica_region in k.get("replica_regions", []) or []:
            clock.move_to(self.ago(k.get("created_days_ago", 0)))
            kms.replicate_key(KeyId=key_id, ReplicaRegion=replica_region)
        state = k.get("state", "Enabled")
        if state == "Disabled":
            kms.disable_key(KeyId=key_id)
        elif state == "PendingDeletion":
            clock.move_to(self.ago(k.get("deletion_scheduled_days_ago", 0)))
            kms.schedule_key_deletion(KeyId=key_id,
                                      PendingWindowInDays=int(k.get("deletion_window_days", 30)))
        LOG.info("key alias/%s (%s, %s) seeded", alias, region, state)

    @staticmethod
    def _import_material(kms: Any, key_id: str, valid_to: dt.datetime | None, new: bool = False) -> None:
        """Import fresh random key material (GetParametersForImport, RSAES_OAEP_SHA_256,
        ImportKeyMaterial): expiring at ``valid_to`` (naive UTC), or never; ``new`` imports
        it as NEW_KEY_MATERIAL for an on-demand rotation. The material is dropped at once."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                               WrappingKeySpec="RSA_2048")
        public = serialization.load_der_public_key(params["PublicKey"])
        wrapped = public.encrypt(secrets.token_bytes(32), padding.OAEP(  # type: ignore[union-attr]
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        args: dict[str, Any] = {"KeyId": key_id, "ImportToken": params["ImportToken"],
                                "EncryptedKeyMaterial": wrapped}
        if valid_to is None:
            args["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        else:
            args["ValidTo"] = valid_to.replace(tzinfo=dt.UTC)
        if new:
            args["ImportType"] = "NEW_KEY_MATERIAL"
        kms.import_key_material(**args)

    def _record_automatic_rotations(self, region: str, key_id: str, created_days_ago: float) -> None:
        """Record the automatic rotations KMS would have made since the key's creation.

        moto never rotates by itself; AWS rotates a key with automatic rotation on every
        365 days (the default period) and lists each as RotationType AUTOMATIC. They are
        written into moto's own record of the key, dated like AWS would have dated them.
        """
        from moto.kms.models import kms_backends

        key = kms_backends[self.estate.account_id][region].keys[key_id]
        age = created_days_ago - 365.0
        while age > 0:
            key.rotations.append({"KeyId": key_id, "RotationDate": _ts(self.ago(age)),
                                  "RotationType": "AUTOMATIC"})
            age -= 365.0
        key.rotations.sort(key=lambda r: float(r["RotationDate"]))

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
        if s.get("replica_regions"):
            args["AddReplicaRegions"] = [{"Region": r} for r in s["replica_regions"]]
        sm.create_secret(**args)
        rules: dict[str, Any] | None = None
        if s.get("rotation_days"):
            rules = {"AutomaticallyAfterDays": int(s["rotation_days"])}
        elif s.get("rotation_schedule"):
            rules = {"ScheduleExpression": str(s["rotation_schedule"])}
        if rules or s.get("last_rotated_days_ago") is not None:
            clock.move_to(self.ago(s.get("last_rotated_days_ago", created)))
            if rules:
                # No Lambda (moto would invoke it): moto moves AWSCURRENT to a new
                # version itself, sets the rule, LastRotatedDate and NextRotationDate.
                sm.rotate_secret(SecretId=name, RotateImmediately=False, RotationRules=rules)
                self._fresh_current_value(s["region"], name)
            else:
                sm.put_secret_value(SecretId=name, SecretString=secrets.token_hex(32))
        if s.get("value_replaced_days_ago") is not None:
            # A value put by hand, outside rotation: a new AWSCURRENT version.
            clock.move_to(self.ago(float(s["value_replaced_days_ago"])))
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
                rots = [r for r in kms.list_key_rotations(KeyId=key_id)["Rotations"]
                        if r.get("RotationType") == "ON_DEMAND"]
                for i, days in enumerate(self.rotation_keys[k["alias"]]):
                    got = rots[i]["RotationDate"].timestamp() if i < len(rots) else 0.0
                    out.append((f"key.rotation.{i}", k["region"], key_id, got, _ts(self.ago(days))))
        for s in self.estate.secrets:
            d = self.client("secretsmanager", s["region"]).describe_secret(SecretId=s["name"])
            created = s.get("created_days_ago", 0)
            out.append(("secret.created", s["region"], s["name"], d["CreatedDate"].timestamp(),
                        _ts(self.ago(created))))
            if s.get("rotation_days") or s.get("rotation_schedule"):
                got = d.get("LastRotatedDate")
                out.append(("secret.rotated", s["region"], s["name"],
                            got.timestamp() if got else 0.0,
                            _ts(self.ago(s.get("last_rotated_days_ago", created)))))
                rules = d.get("RotationRules", {})
                took = rules.get("AutomaticallyAfterDays") == int(s["rotation_days"]) if s.get("rotation_days") \
                    else rules.get("ScheduleExpression") == s["rotation_schedule"]
                if not d.get("RotationEnabled") or not took:
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
                    on_demand = [r for r in key.rotations if r.get("RotationType") == "ON_DEMAND"]
                    on_demand[int(kind.rsplit(".", 1)[1])]["RotationDate"] = want
            else:
                secret = secretsmanager_backends[acct][region].secrets[ident]
                if kind == "secret.created":
                    secret.created_date = int(want)
                else:
                    secret.last_rotation_date = int(want)
                    secret.last_changed_date = int(want)
                    entry = next(x for x in self.estate.secrets if x["name"] == ident)
                    if entry.get("rotation_days"):
                        secret.next_rotation_date = int(want) + int(entry["rotation_days"]) * 86400
                    else:
                        secret.next_rotation_date = int(next_run(entry["rotation_schedule"], want) or 0) or None


def _ts(d: dt.datetime) -> float:
    return d.replace(tzinfo=dt.UTC).timestamp()


@dataclasses.dataclass(frozen=True)
class StoredRecord:
    """One record an application holds: an encrypted data key and its encryption context."""

    principal: str  # the IAM user that reads it
    region: str
    key_alias: str  # without "alias/"
    blob: bytes  # the CiphertextBlob of GenerateDataKey
    context: dict[str, str]


def moto_actions(actions: list[str]) -> list[str]:
    """An operator's IAM actions as moto needs them to authorise as AWS does.

    AWS authorises ReEncrypt as kms:ReEncryptFrom on the source key and kms:ReEncryptTo on
    the destination key; moto checks a single action, kms:ReEncrypt, which AWS does not
    have. An operator holding both (or kms:ReEncrypt*) gets that name too; one holding
    only one of them does not, so moto refuses as AWS would."""
    have = set(actions)
    both = {"kms:ReEncryptFrom", "kms:ReEncryptTo"} <= have or "kms:ReEncrypt*" in have
    return [*actions, "kms:ReEncrypt"] if both and "kms:ReEncrypt" not in have else list(actions)


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


RAW_BODY_ENVIRON = "keydeck.raw_body"


class RawBodyApp:
    """WSGI middleware in front of moto: keeps the request body exactly as received
    (``environ[RAW_BODY_ENVIRON]``) and hands moto a fresh stream of the same bytes.

    AWS checks a SigV4 signature over the bytes the client sent. moto, for a form-encoded
    (query-protocol: SNS, STS, IAM) request, gets an empty ``request.data`` from werkzeug
    (the form parser consumed the stream) and signs ``urlencode(parsed form)`` instead, so
    it refuses every request whose encoding differs from Python's (``%20`` for a space,
    as the Rust SDK and the AWS CLI v2 write it, vs ``+``) with SignatureDoesNotMatch.
    :func:`verify_signatures_over_raw_body` makes moto use these bytes."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        import io
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ[RAW_BODY_ENVIRON] = body
        return self.app(environ, start_response)


def verify_signatures_over_raw_body() -> None:
    """Make moto's IAM signature check hash the request body as received (see
    :class:`RawBodyApp`). ``raw_body`` is read only by that check."""
    from moto.core.responses import BaseResponse
    original = BaseResponse.setup_class
    if getattr(original, "_keydeck_raw_body", False):
        return

    def setup_class(self: Any, request: Any, full_url: str, headers: Any, use_raw_body: bool = False) -> None:
        original(self, request, full_url, headers, use_raw_body=use_raw_body)
        raw = getattr(request, "environ", {}).get(RAW_BODY_ENVIRON)
        if isinstance(raw, bytes) and raw:
            self.raw_body = raw

    setup_class._keydeck_raw_body = True  # type: ignore[attr-defined]
    BaseResponse.setup_class = setup_class  # type: ignore[method-assign]


def moto_server_class() -> Any:
    """moto's ThreadedMotoServer with :class:`RawBodyApp` in front of its application."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class SignedBodyMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = RawBodyApp(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True)
            self._server_ready_event.set()
            self._server.serve_forever()

    verify_signatures_over_raw_body()
    patch_moto_models()
    return SignedBodyMotoServer


# --------------------------------------------------------------------------- moto's models

IMPORT_PARAMETERS_VALID_S = 24 * 3600  # GetParametersForImport: the token and key live 24 hours
MAX_VALID_TO_S = 365 * 86400  # ImportKeyMaterial: ValidTo at most 365 days from the request
OAEP_HASHES = {"RSAES_OAEP_SHA_1": "SHA1", "RSAES_OAEP_SHA_256": "SHA256"}
WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}


def _kms_error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError
    return JsonRESTError(code, message)


def _material_expired(m: dict[str, Any], now: float) -> bool:
    return m["import_state"] == "IMPORTED" and m["state"] != "PENDING_ROTATION" \
        and m.get("valid_to") is not None and m["valid_to"] <= now


def patch_moto_models() -> None:
    """Teach moto's in-process models what KMS and Secrets Manager document and moto lacks.

    The seeder and the proxied calls reach the same backend objects, so both see it.

    KMS, imported key material (KMS developer guide "Importing key material"; API
    reference GetParametersForImport, ImportKeyMaterial, RotateKeyOnDemand,
    ListKeyRotations, KeyMetadata):

    * CreateKey with Origin EXTERNAL makes a key without material: KeyState PendingImport,
      Enabled false (moto: an Enabled key with generated material).
    * GetParametersForImport answers an RSA wrapping key (WrappingKeySpec RSA_2048..4096)
      and an import token valid 24 hours; ImportKeyMaterial unwraps the material
      (RSAES_OAEP_SHA_1 / _SHA_256), checks the token (InvalidImportTokenException,
      ExpiredImportTokenException), ExpirationModel (default KEY_MATERIAL_EXPIRES, which
      needs a future ValidTo at most 365 days away) and ImportType (the first import is
      NEW_KEY_MATERIAL, later ones default to EXISTING_KEY_MATERIAL, which must be the
      same material: IncorrectKeyMaterialException); the key becomes Enabled. New material
      for a symmetric key waits in PENDING_ROTATION.
    * When material that is permanently associated with the key passes its ValidTo, KMS
      deletes it and the key becomes PendingImport (checked whenever the key state is read).
      DescribeKey reports ExpirationModel and ValidTo (the earliest expiry) of EXTERNAL keys.
    * RotateKeyOnDemand on an EXTERNAL key needs material in PENDING_ROTATION
      (KMSInvalidStateException otherwise); it becomes CURRENT, the previous NON_CURRENT.
      Asymmetric and HMAC keys cannot rotate (UnsupportedOperationException).
    * ListKeyRotations takes a key ID or key ARN (an alias: NotFoundException "Invalid
      keyId", not moto's HTTP 500); each entry's KeyId is the key's id, however the
      rotation was asked for. It lists completed rotations; with IncludeKeyMaterial ALL_KEY_MATERIAL
      also the first material and any pending one; entries of EXTERNAL keys carry
      KeyMaterialId, ImportState, KeyMaterialState, ExpirationModel and ValidTo.

    KMS, multi-Region keys: moto's ReplicateKey copies the primary shallowly, so both share
    one MultiRegionConfiguration, and DescribeKey of the replica rewrites its
    MultiRegionKeyType to REPLICA for both, and lists the primary's aliases in the replica's
    Region. Each key now answers its own type (PRIMARY where its ARN is PrimaryKey.Arn); a
    replica gets its own CreationDate, no aliases or grants (they are regional), no imported
    material of its own yet (PendingImport), and GetKeyRotationStatus of a replica answers
    its primary's (rotation is set on the primary; they share key material).

    Secrets Manager: RotateSecret with RotationRules.ScheduleExpression (``rate(N days)``,
    ``rate(N hours)``, ``cron(...)``) turns rotation on, keeps the expression (DescribeSecret
    and ListSecrets answer it, with AutomaticallyAfterDays for a rate in days) and sets
    NextRotationDate from it; AutomaticallyAfterDays and ScheduleExpression together are
    InvalidParameterException. A value put by hand (PutSecretValue making a new AWSCURRENT)
    is a valid rotation for an AutomaticallyAfterDays schedule: NextRotationDate is counted
    from it (RotationRulesType), LastRotatedDate stays. Every secret answers PrimaryRegion
    (its own Region when it is not a replica).
    """
    from moto.kms import models as kms_models
    from moto.kms.responses import KmsResponse
    from moto.secretsmanager import models as sm_models

    Key = kms_models.Key
    if getattr(Key, "_keydeck_patched", False):
        return
    Key._keydeck_patched = True

    # ---- key state as a property: imported material expires when the state is read
    def get_state(self: Any) -> str:
        state = self.__dict__.get("_key_state", "Enabled")
        materials = self.__dict__.get("materials")
        if materials and state in ("Enabled", "Disabled"):
            now = time.time()
            expired = [m for m in materials if _material_expired(m, now)]
            for m in expired:
                m["import_state"] = "PENDING_IMPORT"
            if expired:
                self.__dict__["_key_state"] = state = "PendingImport"
                self.__dict__["enabled"] = False
        return state

    def set_state(self: Any, value: str) -> None:
        self.__dict__["_key_state"] = value

    Key.key_state = property(get_state, set_state)

    original_init = Key.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.origin == "EXTERNAL":
            # No material until ImportKeyMaterial. moto's generated key_material stays as a
            # placeholder (moto fails without one); KeyStateGuard refuses every use of a
            # PendingImport key, so it is never used.
            self.materials = []  # [{id, bytes, state, import_state, expiration_model, valid_to, rotation_date}]
            self.key_state = "PendingImport"
            self.enabled = False

    Key.__init__ = init

    original_to_dict = Key.to_dict

    def to_dict(self: Any) -> dict[str, Any]:
        state = self.key_state  # expires material first
        out = original_to_dict(self)
        md = out["KeyMetadata"]
        md["KeyState"] = state
        if self.multi_region:
            cfg = dict(self.multi_region_configuration)
            cfg["ReplicaKeys"] = list(cfg.get("ReplicaKeys", []))
            cfg["MultiRegionKeyType"] = "PRIMARY" if cfg["PrimaryKey"]["Arn"] == self.arn else "REPLICA"
            md["MultiRegionConfiguration"] = cfg
        materials = self.__dict__.get("materials")
        if self.origin == "EXTERNAL":
            md["Enabled"] = state == "Enabled"
            permanent = [m for m in materials or [] if m["state"] != "PENDING_ROTATION"]
            if permanent:
                current = next((m for m in permanent if m["state"] == "CURRENT"), permanent[-1])
                md["ExpirationModel"] = current["expiration_model"]
                expiring = [m["valid_to"] for m in permanent
                            if m["expiration_model"] == "KEY_MATERIAL_EXPIRES" and m.get("valid_to")]
                if expiring:
                    md["ValidTo"] = min(expiring)
                if self.key_spec == "SYMMETRIC_DEFAULT":
                    md["CurrentKeyMaterialId"] = current["id"]
        return out

    Key.to_dict = to_dict

    Backend = kms_models.KmsBackend

    original_replicate = Backend.replicate_key

    def replicate_key(self: Any, key_id: str, replica_region: str) -> Any:
        replica = original_replicate(self, key_id, replica_region)
        # A replica is a key of its own Region: its own creation date, no aliases or grants
        # (regional), and imported material must be imported into it separately.
        replica.creation_date = kms_models.unix_time()
        replica.aliases = {}
        replica.grants = {}
        if replica.origin == "EXTERNAL":
            replica.materials = []
            replica.key_state = "PendingImport"
            replica.enabled = False
        return replica

    Backend.replicate_key = replicate_key

    original_rotation_status = Backend.get_key_rotation_status

    def get_key_rotation_status(self: Any, key_id: str) -> bool:
        key = self.keys[self.get_key_id(key_id)]
        if key.multi_region:
            primary = key.multi_region_configuration["PrimaryKey"]
            if primary["Arn"] != key.arn:
                other = kms_models.kms_backends[self.account_id][primary["Region"]].keys.get(key.id)
                if other is not None:
                    return bool(other.key_rotation_status)
        return original_rotation_status(self, key_id)

    Backend.get_key_rotation_status = get_key_rotation_status

    original_rotate = Backend.rotate_key_on_demand

    def rotate_key_on_demand(self: Any, key_id: str) -> str:
        key = self.keys[self.get_key_id(key_id)]
        if key.key_spec != "SYMMETRIC_DEFAULT":
            raise _kms_error("UnsupportedOperationException",
                             f"{key.arn} key usage or key spec does not support key rotation.")
        if key.origin != "EXTERNAL":
            return original_rotate(self, key_id)
        pending = next((m for m in key.materials if m["state"] == "PENDING_ROTATION"), None)
        if pending is None or key.key_state != "Enabled":
            raise _kms_error("KMSInvalidStateException",
                             f"{key.arn} has no imported key material in PENDING_ROTATION: import new key "
                             "material (ImportType NEW_KEY_MATERIAL) before rotating on demand.")
        for m in key.materials:
            if m["state"] == "CURRENT":
                m["state"] = "NON_CURRENT"
        pending["state"] = "CURRENT"
        pending["rotation_date"] = kms_models.unix_time()
        key.key_material = pending["bytes"]
        key.rotations.append({"KeyId": key.id, "RotationDate": pending["rotation_date"],
                              "RotationType": "ON_DEMAND"})
        return key.id

    Backend.rotate_key_on_demand = rotate_key_on_demand

    def material_entry(key: Any, m: dict[str, Any]) -> dict[str, Any]:
        e: dict[str, Any] = {"KeyId": key.id, "KeyMaterialId": m["id"], "ImportState": m["import_state"],
                             "KeyMaterialState": m["state"], "ExpirationModel": m["expiration_model"]}
        if m["expiration_model"] == "KEY_MATERIAL_EXPIRES" and m.get("valid_to") is not None:
            e["ValidTo"] = m["valid_to"]
        if m.get("rotation_date") is not None:
            e["RotationDate"] = m["rotation_date"]
            e["RotationType"] = "ON_DEMAND"
        return e

    def list_key_rotations(self: Any) -> str:
        key_id = self._get_param("KeyId")
        include = self._get_param("IncludeKeyMaterial") or "ROTATIONS_ONLY"
        limit = int(self._get_param("Limit") or 100)
        marker = self._get_param("Marker")
        self._validate_key_id(key_id)
        # KeyId is a key ID or key ARN, no alias (API reference); moto fails on an alias
        # (HTTP 500): answer as KMS answers the other rotation calls given one.
        if isinstance(key_id, str) and (key_id.startswith("alias/") or ":alias/" in key_id):
            raise _kms_error("NotFoundException", f"Invalid keyId {key_id}")
        key = self.kms_backend.keys[self.kms_backend.get_key_id(key_id)]
        if key.key_spec != "SYMMETRIC_DEFAULT":
            raise _kms_error("UnsupportedOperationException",
                             f"{key.arn} key usage or key spec does not support key rotation.")
        _ = key.key_state  # expires material first
        if key.origin == "EXTERNAL":
            entries = [material_entry(key, m) for m in key.materials
                       if include == "ALL_KEY_MATERIAL" or m.get("rotation_date") is not None]
        else:
            # moto keeps the reference RotateKeyOnDemand was given (an ARN, say): every
            # entry's KeyId is the key's id, as AWS answers (and the automatic ones here).
            entries = [{**r, "KeyId": key.id} for r in key.rotations]
        start = int(marker) if marker and str(marker).isdigit() else 0
        page = entries[start:start + limit]
        response: dict[str, Any] = {"Rotations": page, "Truncated": start + limit < len(entries)}
        if response["Truncated"]:
            response["NextMarker"] = str(start + limit)
        return json.dumps(response)

    KmsResponse.list_key_rotations = list_key_rotations

    tokens: dict[str, tuple[str, Any, str, float]] = {}  # token -> (key id, private key, algorithm, valid to)

    def get_parameters_for_import(self: Any) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key_id = self._get_param("KeyId")
        algorithm = self._get_param("WrappingAlgorithm")
        spec = self._get_param("WrappingKeySpec")
        self._validate_key_id(key_id)
        key = self.kms_backend.keys[self.kms_backend.get_key_id(key_id)]
        if key.origin != "EXTERNAL":
            raise _kms_error("UnsupportedOperationException", f"{key.arn} origin is {key.origin} which is not valid "
                                                              "for this operation.")
        if algorithm not in OAEP_HASHES or spec not in WRAPPING_KEY_BITS:
            raise _kms_error("UnsupportedOperationException",
                             f"The sandbox wraps key material with {sorted(OAEP_HASHES)} and "
                             f"{sorted(WRAPPING_KEY_BITS)} only.")
        private = rsa.generate_private_key(public_exponent=65537, key_size=WRAPPING_KEY_BITS[spec])
        token = secrets.token_bytes(32)
        valid_to = time.time() + IMPORT_PARAMETERS_VALID_S
        tokens[base64.b64encode(token).decode()] = (key.id, private, algorithm, valid_to)
        public = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return json.dumps({"KeyId": key.arn, "ImportToken": base64.b64encode(token).decode(),
                           "PublicKey": base64.b64encode(public).decode(), "ParametersValidTo": valid_to})

    KmsResponse.get_parameters_for_import = get_parameters_for_import

    def import_key_material(self: Any) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        key_id = self._get_param("KeyId")
        self._validate_key_id(key_id)
        key = self.kms_backend.keys[self.kms_backend.get_key_id(key_id)]
        token = self._get_param("ImportToken") or ""
        found = tokens.get(token)
        if found is None or found[0] != key.id:
            raise _kms_error("InvalidImportTokenException", "Import token is invalid for this KMS key.")
        _, private, algorithm, token_valid_to = found
        now = time.time()
        if now > token_valid_to:
            raise _kms_error("ExpiredImportTokenException", "Import token expired.")
        model = self._get_param("ExpirationModel") or "KEY_MATERIAL_EXPIRES"
        valid_to = self._get_param("ValidTo")
        if model == "KEY_MATERIAL_EXPIRES":
            if valid_to is None:
                raise _kms_error("ValidationException", "ValidTo is required when ExpirationModel is "
                                                        "KEY_MATERIAL_EXPIRES.")
            valid_to = float(valid_to)
            if not now < valid_to <= now + MAX_VALID_TO_S:
                raise _kms_error("ValidationException", "ValidTo must be a future date no more than 365 days "
                                                        "from now.")
        elif valid_to is not None:
            raise _kms_error("ValidationException", "ValidTo is not valid with KEY_MATERIAL_DOES_NOT_EXPIRE.")
        try:
            blob = base64.b64decode(self._get_param("EncryptedKeyMaterial") or "")
            hash_cls = getattr(hashes, OAEP_HASHES[algorithm])
            material = private.decrypt(blob, padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(),
                                                          label=None))
        except Exception:
            raise _kms_error("InvalidCiphertextException", "The key material could not be unwrapped with the "
                                                           "import parameters.")
        state = key.key_state
        import_type = self._get_param("ImportType") or ("EXISTING_KEY_MATERIAL" if key.materials
                                                        else "NEW_KEY_MATERIAL")
        same = next((m for m in key.materials if m["bytes"] == material), None)
        if import_type == "EXISTING_KEY_MATERIAL":
            if same is None:
                raise _kms_error("IncorrectKeyMaterialException", "The key material is not the key material "
                                                                  "previously imported into this KMS key.")
            entry = same
        else:
            if same is not None:
                raise _kms_error("IncorrectKeyMaterialException", "This key material was already imported into "
                                                                  "this KMS key.")
            if key.materials and key.key_spec != "SYMMETRIC_DEFAULT":
                raise _kms_error("UnsupportedOperationException", "Only symmetric encryption keys accept new key "
                                                                  "material after the first import.")
            first = not key.materials
            entry = {"id": hashlib.sha256(key.id.encode() + material).hexdigest(), "bytes": material,
                     "state": "CURRENT" if first else "PENDING_ROTATION", "rotation_date": None}
            key.materials.append(entry)
        entry["import_state"] = "IMPORTED"
        entry["expiration_model"] = model
        entry["valid_to"] = valid_to if model == "KEY_MATERIAL_EXPIRES" else None
        if entry["state"] == "CURRENT":
            key.key_material = material
        if state == "PendingImport" and all(m["import_state"] == "IMPORTED" for m in key.materials
                                            if m["state"] != "PENDING_ROTATION"):
            key.key_state = "Enabled"
            key.enabled = True
        return json.dumps({"KeyId": key.arn, "KeyMaterialId": entry["id"]})

    KmsResponse.import_key_material = import_key_material

    # ---- Secrets Manager: schedule expressions, PrimaryRegion
    Backend = sm_models.SecretsManagerBackend
    original_rotate_secret = Backend.rotate_secret

    def rotate_secret(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> str:
        rules = kwargs.get("rotation_rules") if "rotation_rules" in kwargs else (args[2] if len(args) > 2 else None)
        expr = (rules or {}).get("ScheduleExpression")
        if expr is not None and "AutomaticallyAfterDays" in (rules or {}):
            raise sm_models.InvalidParameterException(
                "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.")
        if expr is not None and not (isinstance(expr, str) and expr.strip().startswith(("rate(", "cron("))
                                     and expr.strip().endswith(")")):
            raise sm_models.InvalidParameterException(f"Invalid ScheduleExpression: {expr}")
        out = original_rotate_secret(self, secret_id, *args, **kwargs)
        secret = self.secrets[secret_id]
        if expr is not None:
            secret.schedule_expression = expr
            secret.rotation_enabled = True
            when = next_run(expr, time.time())
            if when is None:
                LOG.warning("secret %s: schedule %s not understood by the sandbox: no NextRotationDate", secret_id, expr)
            secret.next_rotation_date = int(when) if when is not None else None
        elif rules and "AutomaticallyAfterDays" in rules:
            secret.schedule_expression = None
        return out

    Backend.rotate_secret = rotate_secret

    original_put = Backend.put_secret_value

    def put_secret_value(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> str:
        out = original_put(self, secret_id, *args, **kwargs)
        secret = self.secrets[secret_id]
        days = int(getattr(secret, "auto_rotate_after_days", 0) or 0)
        current = secret.versions.get(secret.default_version_id) if secret.versions else None
        # A value put by hand is a valid rotation for an AutomaticallyAfterDays schedule:
        # the next rotation is counted from it.
        if secret.rotation_enabled and days > 0 and not getattr(secret, "schedule_expression", None) \
                and current is not None and int(current.get("createdate", 0)) >= int(time.time()) - 1:
            secret.next_rotation_date = int(time.time()) + days * 86400
        return out

    Backend.put_secret_value = put_secret_value

    original_secret_dict = sm_models.FakeSecret.to_dict

    def secret_to_dict(self: Any) -> dict[str, Any]:
        out = original_secret_dict(self)
        out.setdefault("PrimaryRegion", self.region)
        expr = getattr(self, "schedule_expression", None)
        if expr and "RotationRules" in out:
            rules: dict[str, Any] = {"ScheduleExpression": expr}
            days = rate_days(expr)
            if days:
                rules["AutomaticallyAfterDays"] = days
            out["RotationRules"] = rules
        return out

    sm_models.FakeSecret.to_dict = secret_to_dict


def rate_days(expr: str) -> int | None:
    """N for ``rate(N day|days)``, else None."""
    inner = expr.strip()
    if not (inner.startswith("rate(") and inner.endswith(")")):
        return None
    parts = inner[5:-1].split()
    if len(parts) == 2 and parts[0].isdigit() and parts[1] in ("day", "days") and int(parts[0]) > 0:
        return int(parts[0])
    return None


def next_run(expr: str, after: float) -> float | None:
    """The next time (epoch seconds, UTC) a Secrets Manager schedule runs after ``after``:
    ``rate(N days)`` / ``rate(N hours)`` from ``after``; a six-field ``cron(min hour dom
    month dow year)`` with numbers, ``*``, ``?``, lists, ranges and steps (day names and
    month names too), searched minute by hour over the next 400 days. None if not understood."""
    e = expr.strip()
    if e.startswith("rate(") and e.endswith(")"):
        parts = e[5:-1].split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) <= 0:
            return None
        n, unit = int(parts[0]), parts[1]
        if unit in ("day", "days"):
            return after + n * 86400
        if unit in ("hour", "hours"):
            return after + n * 3600
        return None
    if not (e.startswith("cron(") and e.endswith(")")):
        return None
    fields = e[5:-1].split()
    if len(fields) != 6:
        return None
    names = {**{m.upper(): i + 1 for i, m in enumerate(MONTHS)},
             **{d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}}

    def matcher(field: str, lo: int, hi: int) -> Any:
        if field in ("*", "?"):
            return lambda v: True
        allowed: set[int] = set()
        for part in field.split(","):
            base, _, step = part.partition("/")
            if base in ("*", ""):
                a, b = lo, hi
            elif "-" in base:
                x, _, y = base.partition("-")
                a, b = int(names.get(x.upper(), x)), int(names.get(y.upper(), y))
            else:
                a = int(names.get(base.upper(), base))
                b = hi if step else a
            allowed.update(range(a, b + 1, int(step) if step else 1))
        return lambda v: v in allowed

    try:
        minute, hour, dom, month, dow = (matcher(fields[0], 0, 59), matcher(fields[1], 0, 23),
                                         matcher(fields[2], 1, 31), matcher(fields[3], 1, 12),
                                         matcher(fields[4], 1, 7))
    except ValueError:
        return None
    start = dt.datetime.fromtimestamp(after, dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    t = start
    end = start + dt.timedelta(days=400)
    while t < end:
        if month(t.month) and dom(t.day) and dow((t.isoweekday() % 7) + 1) and hour(t.hour):
            for m in range(t.minute, 60):
                if minute(m):
                    return t.replace(minute=m).timestamp()
        t = (t + dt.timedelta(hours=1)).replace(minute=0)
    return None


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
    context: Any = None  # what CallObserver.prepare returned before the call was forwarded


class CallObserver:
    """Sees every relayed call: counts it and hands it to the CloudTrail recorder.

    ``trail`` is the :class:`CloudTrailRecorder`; ``None`` (as in unit use) only counts.
    """

    def __init__(self, trail: "CloudTrailRecorder | None" = None) -> None:
        self.trail = trail
        self._lock = threading.Lock()
        self._total = 0
        self._by_action: Counter[str] = Counter()
        self._by_service: Counter[str] = Counter()

    def prepare(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> Any:
        """Called before a request is forwarded; what it returns reaches :meth:`observe`
        as ``Exchange.context`` (the recorder resolves key references while they exist:
        DeleteAlias removes the alias it must name). Must not raise."""
        if self.trail is None:
            return None
        try:
            return self.trail.prepare(method, path, headers, body)
        except Exception:
            LOG.exception("recorder: prepare failed")
            return None

    def count(self, service: str, action: str) -> None:
        with self._lock:
            self._total += 1
            self._by_action[action] += 1
            self._by_service[service] += 1

    def observe(self, ex: Exchange) -> None:
        """The hook: called once for every request the proxy forwards to moto.

        Receives the request (method, path, headers, body, client address), the
        response as relayed to the client (status, headers, body, after error
        rewriting) and timing. Must not raise and must be quick; it runs on the
        proxy's request thread before the response is sent, so a call's record exists
        before its caller sees the answer.
        """
        self.count(ex.service, ex.action)
        if self.trail is not None:
            try:
                self.trail.record_exchange(ex)
            except Exception:
                LOG.exception("recorder: could not record %s", ex.action)

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


# --------------------------------------------------------------------------- cloudtrail

CLOUDTRAIL_TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
# botocore (AWS CLI, boto3) sends the long target, smithy-generated SDKs the short one.
LOOKUP_EVENTS_TARGETS = frozenset({f"{CLOUDTRAIL_TARGET_PREFIX}.LookupEvents", "CloudTrail_20131101.LookupEvents"})
EVENT_SOURCES = {
    "kms": "kms.amazonaws.com",
    "secretsmanager": "secretsmanager.amazonaws.com",
    "sts": "sts.amazonaws.com",
    "iam": "iam.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
    "sns": "sns.amazonaws.com",
}
RECORDED_SERVICES = frozenset({"kms", "secretsmanager", "sts", "iam", "sns"})
# SNS operations CloudTrail logs as data events (only on trails that select them), never
# as management events: LookupEvents does not return them.
SNS_DATA_EVENTS = frozenset({"Publish", "PublishBatch"})
SNS_TOPIC_TYPE = "AWS::SNS::Topic"
GLOBAL_SERVICE_REGIONS = {"iam": "us-east-1"}  # IAM events are delivered in us-east-1, as in AWS
EVENT_VERSION = "1.08"
TRAIL_MEMORY_CAP = 100_000  # newest records kept in memory; cloudtrail.jsonl keeps every record
TRAIL_FILE = "cloudtrail.jsonl"
LOOKUP_RATE_PER_S = 2.0  # LookupEvents: two requests per second, per account, per region
LOOKUP_BURST = 2.0
LOOKUP_WINDOW_S = 90 * 86400  # without StartTime, LookupEvents covers the last 90 days
LOOKUP_MAX_RESULTS = 50
LOOKUP_ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType",
                         "ResourceName", "EventSource", "AccessKeyId")
MAX_FIELD_BYTES = 100 * 1024  # larger requestParameters/responseElements are recorded as null
MAX_MESSAGE_CHARS = 1024  # errorMessage and userAgent are cut to this length
MAX_TRAIL_DELAY_S = 3600.0
REDACTED = "HIDDEN_DUE_TO_SECURITY_REASONS"
KMS_KEY_TYPE = "AWS::KMS::Key"

# Members that carry secret material (request or response, any service, any depth).
# They are never recorded, as AWS leaves them out of its records.
SENSITIVE_MEMBERS = frozenset(m.lower() for m in (
    "Plaintext", "CiphertextBlob", "SecretString", "SecretBinary", "RandomPassword",
    "PrivateKeyPlaintext", "PrivateKeyCiphertextBlob", "CiphertextForRecipient", "Message",
    "Signature", "Mac", "SharedSecret", "Recipient", "EncryptedKeyMaterial", "ImportToken",
    "Password", "NewPassword", "OldPassword", "SecretAccessKey", "SessionToken", "PrivateKey",
    "ServicePassword", "SAMLAssertion", "WebIdentityToken", "TokenCode", "SecretValueEntries",
    "AuthenticationCode1", "AuthenticationCode2",
))
# Maps whose keys are the caller's own data (kept as sent, not camel-cased).
VERBATIM_MAPS = frozenset({"EncryptionContext", "EncryptionContextSubset", "EncryptionContextEquals"})
# KMS operations AWS records with readOnly true although they are not List/Describe/Get.
KMS_CRYPTO_OPERATIONS = frozenset({
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "Sign",
    "Verify", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
})
OTHER_READ_ONLY = frozenset({"BatchGetSecretValue", "ValidateResourcePolicy", "LookupEvents",
                             "SimulatePrincipalPolicy", "SimulateCustomPolicy",
                             "GenerateCredentialReport", "GenerateServiceLastAccessedDetails",
                             "DecodeAuthorizationMessage"})
KMS_KEY_MEMBERS = ("KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId")
KMS_ALIAS_OPERATIONS = frozenset({"CreateAlias", "UpdateAlias", "DeleteAlias"})
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class LookupError_(Exception):
    """A LookupEvents failure answered in the awsJson1_1 error shape."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class Scope:
    """The SigV4 credential scope of a request (header or presigned query)."""

    access_key_id: str
    region: str
    service: str


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who signed a request. ``user_name``: the IAM user, or for a role session the
    operator whose role it is (the key of the secrets scopes); ``role``: for a session of
    an IAM role, (role name, role id, role ARN)."""
    user_name: str
    user_id: str
    arn: str
    role: tuple[str, str, str] | None = None

    def identity(self, account_id: str, access_key_id: str) -> dict[str, Any]:
        """CloudTrail's ``userIdentity`` for this principal (AWS's CloudTrail userIdentity
        element: IAMUser, or AssumedRole with its sessionContext.sessionIssuer)."""
        if self.role is None:
            return {"type": "IAMUser", "principalId": self.user_id, "arn": self.arn,
                    "accountId": account_id, "accessKeyId": access_key_id, "userName": self.user_name}
        name, role_id, role_arn = self.role
        return {"type": "AssumedRole", "principalId": self.user_id, "arn": self.arn,
                "accountId": account_id, "accessKeyId": access_key_id,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id, "arn": role_arn,
                                                     "accountId": account_id, "userName": name},
                                   "attributes": {"mfaAuthenticated": "false"}}}


def credential_scope(headers: list[tuple[str, str]], path: str) -> Scope | None:
    """``AKID/date/region/service/aws4_request`` from Authorization or X-Amz-Credential."""
    auth = header(headers, "Authorization") or ""
    raw = ""
    if "Credential=" in auth:
        raw = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        raw = (q.get("X-Amz-Credential") or [""])[0]
    parts = raw.split("/")
    if len(parts) < 5 or not parts[0]:
        return None
    return Scope(parts[0][:128], parts[2][:64], parts[3].lower()[:64])


def decapitalize(name: str) -> str:
    """AWS's record style for member names: ``KeyId`` -> ``keyId``; a leading acronym
    stays (``AWSAccountId``), as Java's ``Introspector.decapitalize`` does; ``ARN`` is
    recorded as ``arn`` (Secrets Manager's records since 2024)."""
    if name == "ARN":
        return "arn"
    if len(name) > 1 and name[0].isupper() and name[1].isupper():
        return name
    return name[:1].lower() + name[1:]


def aws_date(value: float) -> str:
    """KMS/Secrets Manager date style in records: ``Aug 10, 2022, 10:38:27 PM``."""
    d = dt.datetime.fromtimestamp(float(value), dt.UTC)
    hour = d.hour % 12 or 12
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}, {hour}:{d.minute:02d}:{d.second:02d} " \
           f"{'AM' if d.hour < 12 else 'PM'}"


def aws_style(value: Any, dates: bool = False) -> Any:
    """A request/response member tree in AWS's record style, secret members dropped.

    Keys are decapitalized (except inside :data:`VERBATIM_MAPS`); with ``dates``,
    numeric ``*Date`` members (epoch seconds in awsJson) become :func:`aws_date` text.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str) or k.lower() in SENSITIVE_MEMBERS:
                continue
            name = decapitalize(k)
            if k in VERBATIM_MAPS and isinstance(v, dict):
                out[name] = {str(ik): iv for ik, iv in v.items()}
            elif dates and name.lower().endswith("date") and isinstance(v, (int, float)) \
                    and not isinstance(v, bool):
                try:
                    out[name] = aws_date(v)
                except (OverflowError, OSError, ValueError):
                    out[name] = v
            else:
                out[name] = aws_style(v, dates)
        return out
    if isinstance(value, list):
        return [aws_style(v, dates) for v in value]
    return value


def sensitive_values(value: Any, inside: bool = False) -> list[str]:
    """Every string under a sensitive member of a request (to scrub error messages),
    with the text it decodes to when it is base64 (how awsJson carries blobs)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += sensitive_values(v, inside or (isinstance(k, str) and k.lower() in SENSITIVE_MEMBERS))
    elif isinstance(value, list):
        for v in value:
            found += sensitive_values(v, inside)
    elif inside and isinstance(value, str) and len(value) >= 4:
        found.append(value)
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
            if len(decoded) >= 4:
                found.append(decoded)
        except (ValueError, UnicodeDecodeError):
            pass
    return found


def query_params(pairs: list[tuple[str, str]]) -> dict[str, Any] | None:
    """awsQuery form parameters (IAM, STS) as a member tree in record style:
    ``Tags.member.1.Key=k`` -> ``{"tags": [{"key": "k"}]}``."""
    root: dict[Any, Any] = {}
    for key, value in pairs:
        if key in ("Action", "Version") or key.startswith("X-Amz-"):
            continue
        segs = [s for s in key.split(".") if s not in ("member", "entry") and s]
        if not segs or any(s.lower() in SENSITIVE_MEMBERS for s in segs):
            continue
        node = root
        for i, seg in enumerate(segs):
            k: Any = int(seg) if seg.isdigit() else decapitalize(seg)
            if i == len(segs) - 1:
                node[k] = value
            else:
                nxt = node.get(k)
                if not isinstance(nxt, dict):
                    nxt = node[k] = {}
                node = nxt

    def listify(n: Any) -> Any:
        if not isinstance(n, dict):
            return n
        if n and all(isinstance(k, int) for k in n):
            return [listify(n[k]) for k in sorted(n)]
        return {str(k): listify(v) for k, v in n.items()}

    out = listify(root)
    return out if isinstance(out, dict) and out else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_result(body: bytes, action: str) -> Any:
    """The ``<ActionResult>`` of an awsQuery answer as a member tree in record style."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    result = next((c for c in root if _local(c.tag) == f"{action}Result"), None)
    if result is None or len(result) == 0:
        return None

    def conv(el: ET.Element) -> Any:
        children = list(el)
        if not children:
            return (el.text or "").strip()
        if all(_local(c.tag) == "member" for c in children):
            return [conv(c) for c in children]
        out: dict[str, Any] = {}
        for c in children:
            name = _local(c.tag)
            if name.lower() not in SENSITIVE_MEMBERS:
                out[decapitalize(name)] = conv(c)
        return out

    return conv(result) or None


def ciphertext_key_id(blob: str) -> str | None:
    """The key id at the head of a moto ciphertext blob (base64), or None.

    moto's blob is ``key id (36 bytes) | iv | tag | ciphertext``; the id is a UUID, or
    ``mrk-`` and 32 hex digits for a multi-Region key."""
    try:
        head = base64.b64decode(blob[:48], validate=True)[:36].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    if len(head) != 36:
        return None
    hexdigits = "0123456789abcdef"
    if head.startswith("mrk-"):
        return head if all(c in hexdigits for c in head[4:]) else None
    parts = head.split("-")
    if [len(x) for x in parts] == [8, 4, 4, 4, 12] and all(c in hexdigits for c in "".join(parts)):
        return head
    return None


def kms_backend(account_id: str, region: str) -> Any:
    """moto's in-process KMS backend of a region (None if moto's internals moved)."""
    try:
        from moto.kms.models import kms_backends

        return kms_backends[account_id][region]
    except Exception:
        return None


def find_kms_key(account_id: str, region: str, ref: Any) -> Any:
    """moto's key object a KeyId names, as KMS accepts it: key id, key ARN, alias name
    or alias ARN (an ARN's region wins over ``region``); None if there is none.

    Reads moto's in-process backend: no request. A key id or key ARN is one dict lookup;
    an alias is a scan of the region's keys (moto keeps aliases on the keys)."""
    if not isinstance(ref, str) or not ref or len(ref) > 2048:
        return None
    if ref.startswith("arn:"):
        parts = ref.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms":
            return None
        region, ref = parts[3] or region, parts[5]
        if ref.startswith("key/"):
            ref = ref[4:]
    backend = kms_backend(account_id, region)
    if backend is None:
        return None
    try:
        if ref.startswith("alias/"):
            for key in list(backend.keys.values()):
                if ref in key.aliases:
                    return key
            return None
        return backend.keys.get(ref)
    except Exception:  # the dict changed under us: no key rather than an error
        return None


def json_object(body: bytes) -> dict[str, Any] | None:
    """The request/response body as a JSON object, or None (empty, malformed, not an object)."""
    if not body or not body.strip():
        return None
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def bounded(value: Any) -> Any:
    """``value`` unless its JSON is over :data:`MAX_FIELD_BYTES` (then None: a 1 MB
    parameter is not copied into every record)."""
    if value is None:
        return None
    try:
        return value if len(json.dumps(value, separators=(",", ":"))) <= MAX_FIELD_BYTES else None
    except (TypeError, ValueError, RecursionError):
        return None


def cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def known_operations(service: str) -> frozenset[str]:
    """Operation names of a service from botocore's model (cached); empty if unknown."""
    with _OPS_LOCK:
        ops = _OPS_CACHE.get(service)
        if ops is None:
            try:
                import botocore.session

                model = botocore.session.get_session().get_service_model(service)
                ops = frozenset(model.operation_names)
            except Exception:
                LOG.warning("recorder: no botocore model for %s", service, exc_info=True)
                ops = frozenset()
            _OPS_CACHE[service] = ops
        return ops


_OPS_CACHE: dict[str, frozenset[str]] = {}
_OPS_LOCK = threading.Lock()


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; thread-safe."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class TrailEntry:
    """One stored record: the fields LookupEvents filters and answers on, and its JSON."""

    __slots__ = ("key", "region", "visible_at", "event_id", "event_name", "event_source",
                 "read_only", "access_key_id", "username", "resources", "event_time", "json")

    def __init__(self, record: dict[str, Any], seq: int, visible_at: float, text: str,
                 event_time: int) -> None:
        ident = record.get("userIdentity") or {}
        self.key = (event_time, seq)  # newest first = descending; seq breaks ties in order
        self.region: str = record["awsRegion"]
        self.visible_at = visible_at
        self.event_id: str = record["eventID"]
        self.event_name: str = record["eventName"]
        self.event_source: str = record["eventSource"]
        self.read_only: bool = bool(record.get("readOnly"))
        self.access_key_id: str | None = ident.get("accessKeyId") or None
        self.username: str | None = ident.get("userName") or None
        self.resources: tuple[tuple[str, str], ...] = tuple(
            (str(r.get("type", "")), str(r.get("ARN", ""))) for r in record.get("resources") or [])
        self.event_time = event_time
        self.json = text

    def matches(self, attr: tuple[str, str] | None) -> bool:
        if attr is None:
            return True
        key, value = attr
        if key == "EventId":
            return self.event_id == value
        if key == "EventName":
            return self.event_name == value
        if key == "EventSource":
            return self.event_source == value
        if key == "ReadOnly":
            return self.read_only == (value.lower() == "true")
        if key == "Username":
            return self.username == value
        if key == "AccessKeyId":
            return self.access_key_id == value
        if key == "ResourceType":
            return any(t == value for t, _ in self.resources)
        if key == "ResourceName":
            return any(n == value for _, n in self.resources)
        return False

    def as_event(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"EventId": self.event_id, "EventName": self.event_name,
                              "ReadOnly": "true" if self.read_only else "false"}
        if self.access_key_id:
            ev["AccessKeyId"] = self.access_key_id
        ev["EventTime"] = self.event_time
        ev["EventSource"] = self.event_source
        if self.username:
            ev["Username"] = self.username
        ev["Resources"] = [{"ResourceType": t, "ResourceName": n} for t, n in self.resources]
        ev["CloudTrailEvent"] = self.json
        return ev


class CloudTrailRecorder:
    """Turns relayed calls into CloudTrail records and answers LookupEvents on them.

    Records are kept per region, sorted by (eventTime second, arrival number), the
    newest :data:`TRAIL_MEMORY_CAP` in memory, and every one is appended to
    ``DATA_DIR/cloudtrail.jsonl`` (mode 0600, one JSON record a line, flushed per
    record). A record is visible to LookupEvents ``delay`` seconds after its
    eventTime; the delay is the ``--trail-delay`` default or a per-region override.
    """

    def __init__(self, account_id: str, home_region: str, data_dir: str | None,
                 delay: float = 0.0) -> None:
        self.account_id = account_id
        self.home_region = home_region
        self._lock = threading.Lock()
        self._by_region: dict[str, list[TrailEntry]] = {}
        self._count = 0
        self._seq = 0
        self._delay = float(delay) if math.isfinite(delay) and delay >= 0 else 0.0
        self._delay_by_region: dict[str, float] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._principals: dict[str, Principal] = {}
        self._token_key = secrets.token_bytes(32)
        self._file: BinaryIO | None = None
        self._file_error_logged = False
        self.path: str | None = None
        if data_dir:
            self.path = os.path.join(data_dir, TRAIL_FILE)
            try:
                if os.path.exists(self.path):  # keep the previous run's trail for replay
                    os.replace(self.path, self.path + ".prev")
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
                os.chmod(self.path, 0o600)
                self._file = os.fdopen(fd, "ab")
            except OSError as e:
                LOG.warning("recorder: cannot open %s (%s); records stay in memory only", self.path, e)
                self._file = None

    # ---- delivery delay (sandbox control endpoint)
    def delay_for(self, region: str) -> float:
        return self._delay_by_region.get(region, self._delay)

    def set_delay(self, seconds: float | None, region: str | None = None) -> None:
        with self._lock:
            if region is None:
                self._delay = float(seconds or 0.0)
            elif seconds is None:
                self._delay_by_region.pop(region, None)
            else:
                self._delay_by_region[region] = float(seconds)

    def delays(self) -> dict[str, Any]:
        with self._lock:
            return {"seconds": self._delay, "regions": dict(self._delay_by_region)}

    def info(self) -> dict[str, Any]:
        with self._lock:
            held = sum(len(v) for v in self._by_region.values())
            return {"file": self.path, "recorded": self._seq, "in_memory": held,
                    "delay": {"seconds": self._delay, "regions": dict(self._delay_by_region)}}

    # ---- identities and resources, read from moto's in-process backends
    def principal(self, access_key_id: str) -> Principal | None:
        p = self._principals.get(access_key_id)
        if p is not None:
            return p
        try:
            from moto.iam.models import iam_backends

            backend = iam_backends[self.account_id]["aws"]
            fresh: dict[str, Principal] = {}
            for user in list(backend.users.values()):
                for key in list(user.access_keys):
                    fresh[key.access_key_id] = Principal(user.name, user.id, user.arn)
            # Sessions of IAM roles (sts:AssumeRole): the temporary access key's principal.
            from moto.sts.models import sts_backends

            for session in list(sts_backends[self.account_id]["aws"].assumed_roles):
                role_name = session.role_arn.split("/")[-1]
                try:
                    role = backend.get_role(role_name)
                except Exception:
                    continue
                operator = str((role.tags or {}).get("keydeck-operator", {}).get("Value", role_name)) \
                    if isinstance(role.tags, dict) else role_name
                fresh[session.access_key_id] = Principal(operator, f"{role.id}:{session.session_name}",
                                                         session.arn, (role.name, role.id, role.arn))
            self._principals.update(fresh)
        except Exception:  # moto internals moved or changed mid-iteration: unknown caller
            LOG.debug("recorder: IAM lookup failed", exc_info=True)
        return self._principals.get(access_key_id)

    def _kms_backend(self, region: str) -> Any:
        return kms_backend(self.account_id, region)

    def key_arn(self, region: str, ref: str) -> str | None:
        """The key ARN a KeyId/ARN/alias/alias ARN names, in ``region`` (None if none)."""
        key = find_kms_key(self.account_id, region, ref)
        try:
            return str(key.arn) if key is not None else None
        except Exception:
            return None

    def key_state(self, region: str, arn: str) -> str | None:
        backend = self._kms_backend(region)
        try:
            key = backend.keys.get(arn.rsplit("/", 1)[-1]) if backend is not None else None
            return str(key.key_state) if key is not None else None
        except Exception:
            return None

    # ---- recording
    def prepare(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> Any:
        """Before forwarding: parse the body once and resolve the KMS keys it names
        while they still resolve (DeleteAlias removes its alias)."""
        target = header(headers, "X-Amz-Target") or ""
        if not target.startswith("TrentService."):
            return None
        params = json_object(body)
        scope = credential_scope(headers, path)
        region = scope.region if scope else self.home_region
        return {"params": params, "resources": self._kms_resources(region, target.rpartition(".")[2],
                                                                   params, None)}

    def _kms_resources(self, region: str, action: str, params: dict[str, Any] | None,
                       response: dict[str, Any] | None) -> list[dict[str, str]]:
        refs: list[str] = []
        for obj in (params or {}, response or {}):
            for member in KMS_KEY_MEMBERS:
                v = obj.get(member)
                if isinstance(v, str):
                    refs.append(v)
        md = (response or {}).get("KeyMetadata")
        if isinstance(md, dict) and isinstance(md.get("Arn"), str):
            refs.append(md["Arn"])
        blob = (params or {}).get("CiphertextBlob")
        if action in ("Decrypt", "ReEncrypt") and isinstance(blob, str):
            key_id = ciphertext_key_id(blob)  # KMS knows the key of a ciphertext, so does moto
            if key_id:
                refs.append(key_id)
        alias = (params or {}).get("AliasName")
        if isinstance(alias, str) and action in KMS_ALIAS_OPERATIONS:
            refs.append(alias)
        out: list[dict[str, str]] = []
        seen: set[str] = set()
        for ref in refs:
            arn = self.key_arn(region, ref)
            if arn and arn not in seen:
                seen.add(arn)
                out.append({"accountId": self.account_id, "type": KMS_KEY_TYPE, "ARN": arn})
        if isinstance(alias, str) and action in KMS_ALIAS_OPERATIONS and alias.startswith("alias/") \
                and len(alias) <= 512:
            arn = f"arn:aws:kms:{region}:{self.account_id}:{alias}"
            if arn not in seen:
                out.append({"accountId": self.account_id, "type": KMS_KEY_TYPE, "ARN": arn})
        return out

    def record_exchange(self, ex: Exchange) -> None:
        record = self.build_record(ex)
        if record is not None:
            self.append(record, ex.started_at)

    def build_record(self, ex: Exchange, service_override: str | None = None) -> dict[str, Any] | None:
        """The CloudTrail record of one exchange, or None for what AWS would not record
        (other services, operations the service does not have, sandbox paths)."""
        service, _, action = ex.action.partition(":")
        service = service_override or service
        if service_override is None and service not in RECORDED_SERVICES:
            return None
        if not action or action == "unknown" or action not in known_operations(service):
            return None
        scope = credential_scope(ex.request_headers, ex.path)
        region = GLOBAL_SERVICE_REGIONS.get(service) or (scope.region if scope else self.home_region)
        is_json = bool(header(ex.request_headers, "X-Amz-Target"))

        # who
        ident: dict[str, Any]
        principal = self.principal(scope.access_key_id) if scope else None
        if principal is not None and scope is not None:
            ident = principal.identity(self.account_id, scope.access_key_id)
        elif scope is not None:
            ident = {"type": "Unknown", "accessKeyId": scope.access_key_id}
        else:
            ident = {"type": "Unknown"}

        # what was asked
        ctx = ex.context if isinstance(ex.context, dict) else {}
        raw_params: dict[str, Any] | None
        params: Any
        if is_json:
            raw_params = ctx["params"] if "params" in ctx else json_object(ex.request_body)
            params = aws_style(raw_params) if raw_params else None
        else:
            pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(ex.path).query, keep_blank_values=True)
            ctype = (header(ex.request_headers, "Content-Type") or "").lower()
            if "x-www-form-urlencoded" in ctype and ex.request_body:
                try:
                    pairs += urllib.parse.parse_qsl(ex.request_body.decode("utf-8", "replace"),
                                                    keep_blank_values=True)
                except ValueError:
                    pass
            params = query_params(pairs)
            raw_params = {k.rsplit(".", 1)[-1]: v for k, v in pairs}  # only to scrub messages

        # what came back
        error_code = error_message = None
        request_id = header(ex.response_headers, "x-amzn-RequestId") or \
            header(ex.response_headers, "x-amz-request-id")
        response_obj: dict[str, Any] | None = None
        if is_json:
            response_obj = json_object(ex.response_body)
        if ex.status >= 400:
            if response_obj is not None:
                error_code = str(response_obj.get("__type") or "").rsplit("#", 1)[-1].rsplit(":", 1)[-1]
                error_message = response_obj.get("message", response_obj.get("Message"))
                response_obj = None
            elif ex.response_body.lstrip().startswith(b"<"):
                try:
                    root = ET.fromstring(ex.response_body)
                    error_code = (root.findtext(".//Error/Code") or root.findtext(".//Code") or "").strip()
                    error_message = (root.findtext(".//Error/Message") or root.findtext(".//Message") or "")
                    request_id = request_id or (root.findtext(".//RequestId") or "").strip() or None
                except ET.ParseError:
                    pass
            error_code = error_code or ("InternalFailure" if ex.status >= 500 else "UnknownError")
            if error_code == "AccessDeniedException":
                error_code = "AccessDenied"  # how AWS records denials of awsJson calls
        elif not is_json and ex.response_body.lstrip().startswith(b"<") and request_id is None:
            try:
                request_id = (ET.fromstring(ex.response_body).findtext(".//{*}RequestId") or "").strip() or None
            except ET.ParseError:
                pass

        read_only = action.startswith(("List", "Describe", "Get")) or action in OTHER_READ_ONLY or \
            (service == "kms" and action in KMS_CRYPTO_OPERATIONS)
        response: Any = None
        if error_code is None and not read_only:
            if is_json:
                response = aws_style(response_obj, dates=True) if response_obj else None
            elif ex.response_body.lstrip().startswith(b"<"):
                response = xml_result(ex.response_body, action)

        # resources (KMS keys), resolved from the request and the answer
        resources: list[dict[str, str]] = []
        if service == "kms":
            resources = list(ctx.get("resources") or [])
            for r in self._kms_resources(region, action, raw_params, response_obj):
                if r not in resources:
                    resources.append(r)
            params, response = self._kms_details(region, action, params, response, raw_params,
                                                 resources, error_code is None)

        if error_message is not None:
            error_message = str(error_message)
            for secret in sensitive_values(raw_params):
                if secret in error_message:
                    error_message = error_message.replace(secret, REDACTED)
            if error_code == "AccessDenied" and "identity-based policy" not in error_message \
                    and "is not authorized to perform: " in error_message:
                perm = error_message.rsplit("is not authorized to perform: ", 1)[1].split(" ", 1)[0]
                key_arns = [r["ARN"] for r in resources if ":key/" in r["ARN"]]
                where = f" on resource: {key_arns[0]}" if key_arns else ""
                error_message = f"{error_message}{where} because no identity-based policy allows " \
                                f"the {perm} action"
            error_message = cut(error_message)

        record: dict[str, Any] = {
            "eventVersion": EVENT_VERSION,
            "userIdentity": ident,
            "eventTime": ex.started_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": EVENT_SOURCES[service],
            "eventName": action,
            "awsRegion": region,
            "sourceIPAddress": ex.client_address[0] if ex.client_address else "127.0.0.1",
            "userAgent": cut(header(ex.request_headers, "User-Agent") or ""),
        }
        if error_code is not None:
            record["errorCode"] = error_code
            record["errorMessage"] = error_message if error_message is not None else ""
        record["requestParameters"] = bounded(params)
        record["responseElements"] = bounded(response)
        record["requestID"] = request_id or str(uuid.uuid4())
        record["eventID"] = str(uuid.uuid4())
        record["readOnly"] = read_only
        if resources:
            record["resources"] = resources
        data_event = service == "sns" and action in SNS_DATA_EVENTS
        if data_event:
            topic = (raw_params or {}).get("TopicArn")
            if isinstance(topic, str) and topic.startswith("arn:aws:sns:") and len(topic) <= 512:
                record["resources"] = [{"accountId": self.account_id, "type": SNS_TOPIC_TYPE, "ARN": topic}]
        record["eventType"] = "AwsApiCall"
        record["managementEvent"] = not data_event
        record["recipientAccountId"] = self.account_id
        record["eventCategory"] = "Data" if data_event else "Management"
        return record

    def _kms_details(self, region: str, action: str, params: Any, response: Any,
                     raw_params: dict[str, Any] | None, resources: list[dict[str, str]],
                     ok: bool) -> tuple[Any, Any]:
        """KMS's own conventions in its published records."""
        key_arns = [r["ARN"] for r in resources if ":key/" in r["ARN"]]
        if isinstance(params, dict) or params is None:
            p = dict(params or {})
            if action in ("Encrypt", "Decrypt"):  # always recorded, even when not sent
                p.setdefault("encryptionAlgorithm", "SYMMETRIC_DEFAULT")
            if action == "ReEncrypt":
                p.setdefault("sourceEncryptionAlgorithm", "SYMMETRIC_DEFAULT")
                p.setdefault("destinationEncryptionAlgorithm", "SYMMETRIC_DEFAULT")
            if action == "Decrypt" and "keyId" not in p and key_arns:
                p["keyId"] = key_arns[0]  # recorded even when the caller did not name the key
            if action == "CreateKey":
                for k, v in (("description", ""), ("origin", "AWS_KMS"),
                             ("bypassPolicyLockoutSafetyCheck", False), ("tags", []),
                             ("keySpec", "SYMMETRIC_DEFAULT"), ("keyUsage", "ENCRYPT_DECRYPT")):
                    p.setdefault(k, v)
            params = p or None
        if not ok or action in KMS_CRYPTO_OPERATIONS or action.startswith(("List", "Describe", "Get")):
            return params, response
        if action == "ScheduleKeyDeletion" and key_arns:
            r = dict(response) if isinstance(response, dict) else {}
            window = (raw_params or {}).get("PendingWindowInDays", 30)
            response = {"keyId": key_arns[0],
                        "keyState": self.key_state(region, key_arns[0]) or "PendingDeletion",
                        "deletionDate": r.get("deletionDate"),
                        "pendingWindowInDays": window}
        elif (response is None or response == {}) and key_arns:
            # Since December 2022 KMS records the key ARN even where the answer is empty.
            response = {"keyId": key_arns[0]}
        return params, response

    def append(self, record: dict[str, Any], started: dt.datetime) -> None:
        """Store one record and append it to the file (never raises for I/O)."""
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        line = (text + "\n").encode("utf-8")
        t = started.timestamp()
        with self._lock:
            self._seq += 1
            if record.get("managementEvent") is False:  # a data event: the trail file only
                self._write(line)
                return
            entry = TrailEntry(record, self._seq, t + self.delay_for(record["awsRegion"]), text, int(t))
            lst = self._by_region.setdefault(entry.region, [])
            if not lst or lst[-1].key < entry.key:
                lst.append(entry)
            else:
                bisect.insort(lst, entry, key=lambda e: e.key)
            self._count += 1
            if self._count > TRAIL_MEMORY_CAP + TRAIL_MEMORY_CAP // 10:
                self._trim()
            self._write(line)

    def _write(self, line: bytes) -> None:
        """Append one line to the trail file (called with the lock held; never raises)."""
        if self._file is not None:
            try:
                self._file.write(line)
                self._file.flush()
            except OSError as e:
                if not self._file_error_logged:
                    LOG.warning("recorder: cannot write %s: %s", self.path, e)
                    self._file_error_logged = True

    def _trim(self) -> None:
        """Keep the newest TRAIL_MEMORY_CAP records (called with the lock held)."""
        everything = sorted((e for lst in self._by_region.values() for e in lst), key=lambda e: e.key)
        keep = everything[-TRAIL_MEMORY_CAP:]
        by_region: dict[str, list[TrailEntry]] = {}
        for e in keep:
            by_region.setdefault(e.region, []).append(e)
        self._by_region = by_region
        self._count = len(keep)
        LOG.info("recorder: trimmed memory to the newest %d records", len(keep))

    # ---- LookupEvents
    def authenticate(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes,
                     action: str) -> tuple[Principal | None, LookupError_ | None]:
        """Check the SigV4 signature with moto's own IAM code and whether the caller's
        policies allow ``action`` (e.g. ``LookupEvents``). Returns (principal, error)."""
        auth = header(headers, "Authorization")
        if not auth:
            return None, LookupError_("MissingAuthenticationTokenException", "Missing Authentication Token")
        if "Credential=" not in auth or "Signature=" not in auth or "SignedHeaders=" not in auth \
                or credential_scope(headers, path) is None:
            return None, LookupError_("IncompleteSignatureException",
                                      "Authorization header is not a valid AWS4-HMAC-SHA256 signature")
        try:
            from moto.core.exceptions import (AccessDeniedError, InvalidClientTokenIdError,
                                              SignatureDoesNotMatchError)
            from moto.iam.access_control import IAMRequest
            from werkzeug.datastructures import Headers
        except ImportError as e:  # pragma: no cover - moto is there or the sandbox never started
            return None, LookupError_("InternalFailure", f"sandbox: {e}", 500)
        # moto reads its request headers in werkzeug's Title-Case (e.g. "X-Amz-Date").
        wz = Headers([(k.title(), v) for k, v in headers])
        scope = credential_scope(headers, path)
        try:
            req = IAMRequest(account_id=self.account_id, method=method, path=path, data={},
                             body=body, headers=wz, action=action)
            req.check_signature()
            req.check_action_permitted("*")
        except InvalidClientTokenIdError:
            return None, LookupError_("UnrecognizedClientException",
                                      "The security token included in the request is invalid.")
        except SignatureDoesNotMatchError as e:
            return None, LookupError_("InvalidSignatureException", str(e.message))
        except AccessDeniedError as e:
            p = self.principal(scope.access_key_id) if scope else None
            perm = f"{scope.service if scope else 'cloudtrail'}:{action}"
            return p, LookupError_("AccessDeniedException",
                                   f"{e.message} because no identity-based policy allows the {perm} action")
        except (KeyError, IndexError, ValueError) as e:  # signature parts missing or malformed
            return None, LookupError_("IncompleteSignatureException",
                                      f"Authorization header is not a valid AWS4-HMAC-SHA256 signature ({e})")
        except Exception:  # moto's IAM code failed on this request: answer, do not crash
            LOG.exception("recorder: authenticating a LookupEvents request failed")
            return None, LookupError_("InternalFailure", "the sandbox could not authenticate this request", 500)
        return (self.principal(scope.access_key_id) if scope else None), None

    def handle_lookup(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes,
                      client: tuple[str, int]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer ``CloudTrail_20131101.LookupEvents`` as AWS documents it."""
        started = dt.datetime.now(dt.UTC)
        request_id = str(uuid.uuid4())
        scope = credential_scope(headers, path)
        region = scope.region if scope else self.home_region
        principal, err = self.authenticate(method, path, headers, body, "LookupEvents")
        if err is None:
            bucket_key = f"{self.account_id}/{region}"
            with self._lock:
                bucket = self._buckets.setdefault(bucket_key, TokenBucket(LOOKUP_RATE_PER_S, LOOKUP_BURST))
            if not bucket.take():
                err = LookupError_("ThrottlingException", "Rate exceeded")
        if err is None:
            try:
                answer = self.lookup(region, json_object(body), body)
            except LookupError_ as e:
                err = e
        if err is not None:
            out = json.dumps({"__type": err.code, "message": err.message}).encode()
            hdrs = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", err.code),
                    ("x-amzn-RequestId", request_id)]
            if err.code in ("AccessDeniedException", "UnrecognizedClientException",
                            "InvalidSignatureException", "MissingAuthenticationTokenException",
                            "IncompleteSignatureException"):
                # Refused callers are recorded (successful lookups are not: see the module docstring).
                ex = Exchange(method, path, headers, body, client, err.status, hdrs, out, started,
                              0.0, "cloudtrail", "cloudtrail:LookupEvents")
                try:
                    record = self.build_record(ex, service_override="cloudtrail")
                    if record is not None:
                        self.append(record, started)
                except Exception:
                    LOG.exception("recorder: could not record a refused LookupEvents")
            return err.status, hdrs, out
        return 200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)], \
            json.dumps(answer, separators=(",", ":")).encode()

    def _token(self, region: str, qhash: str, key: tuple[int, int]) -> str:
        raw = json.dumps({"r": region, "q": qhash, "s": key[0], "n": key[1]}, separators=(",", ":")).encode()
        mac = hmac.new(self._token_key, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(raw + mac).decode().rstrip("=")

    def _untoken(self, token: Any, region: str, qhash: str) -> tuple[int, int]:
        bad = LookupError_("InvalidNextTokenException", "Invalid NextToken: it is not valid for this request")
        if not isinstance(token, str) or not token or len(token) > 1024:
            raise bad
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise bad from None
        raw, mac = blob[:-16], blob[-16:]
        if len(blob) <= 16 or not hmac.compare_digest(
                mac, hmac.new(self._token_key, raw, hashlib.sha256).digest()[:16]):
            raise bad
        try:
            d = json.loads(raw)
            if d["r"] != region or d["q"] != qhash:
                raise bad
            return int(d["s"]), int(d["n"])
        except (ValueError, KeyError, TypeError):
            raise bad from None

    def lookup(self, region: str, req: dict[str, Any] | None, body: bytes) -> dict[str, Any]:
        """Validate a LookupEvents request and page through the region's visible records."""
        if req is None:
            if body.strip():
                raise LookupError_("SerializationException", "the request body is not a JSON object")
            req = {}
        attrs = req.get("LookupAttributes")
        attr: tuple[str, str] | None = None
        if attrs is not None:
            if not isinstance(attrs, list):
                raise LookupError_("InvalidLookupAttributesException", "LookupAttributes must be a list")
            if len(attrs) > 1:
                raise LookupError_("InvalidLookupAttributesException",
                                   "You can specify only one lookup attribute per request")
            if attrs:
                a = attrs[0] if isinstance(attrs[0], dict) else {}
                k, v = a.get("AttributeKey"), a.get("AttributeValue")
                if k not in LOOKUP_ATTRIBUTE_KEYS:
                    raise LookupError_("InvalidLookupAttributesException",
                                       f"{str(k)[:64]!r} is not a valid lookup attribute key; use one of "
                                       + ", ".join(LOOKUP_ATTRIBUTE_KEYS))
                if not isinstance(v, str) or not v or len(v) > 2000:
                    raise LookupError_("InvalidLookupAttributesException",
                                       "AttributeValue must be a string of 1 to 2000 characters")
                if k == "ReadOnly" and v.lower() not in ("true", "false"):
                    raise LookupError_("InvalidLookupAttributesException",
                                       "The ReadOnly attribute value must be true or false")
                attr = (k, v)
        times: list[float | None] = []
        for name in ("StartTime", "EndTime"):
            t = req.get(name)
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                                  or not math.isfinite(t)):
                raise LookupError_("InvalidTimeRangeException", f"{name} is not a valid timestamp")
            times.append(None if t is None else float(t))
        start, end = times
        if start is not None and end is not None and start > end:
            raise LookupError_("InvalidTimeRangeException",
                               "The start time must be earlier than or equal to the end time")
        mr = req.get("MaxResults", LOOKUP_MAX_RESULTS)
        if isinstance(mr, bool) or not isinstance(mr, (int, float)) or mr != int(mr) \
                or not 1 <= int(mr) <= LOOKUP_MAX_RESULTS:
            raise LookupError_("InvalidMaxResultsException",
                               f"MaxResults must be between 1 and {LOOKUP_MAX_RESULTS}")
        max_results = int(mr)
        category = req.get("EventCategory")
        if category is not None and category != "insight":
            raise LookupError_("InvalidEventCategoryException", "EventCategory must be insight")
        qhash = hashlib.sha256(json.dumps([region, attr, start, end, category]).encode()).hexdigest()[:24]
        after = self._untoken(req["NextToken"], region, qhash) if req.get("NextToken") is not None else None
        if category == "insight":  # the sandbox has no Insights events
            return {"Events": []}

        now = time.time()
        lo_s = math.ceil(start) if start is not None else int(now - LOOKUP_WINDOW_S)
        hi_s = math.floor(end) if end is not None else None
        found: list[TrailEntry] = []
        with self._lock:
            lst = self._by_region.get(region, [])
            hi = len(lst)
            if after is not None:
                hi = bisect.bisect_left(lst, after, key=lambda e: e.key)
            if hi_s is not None:
                hi = min(hi, bisect.bisect_right(lst, (hi_s, math.inf), key=lambda e: e.key))
            lo = bisect.bisect_left(lst, (lo_s, -1), key=lambda e: e.key)
            for i in range(hi - 1, lo - 1, -1):
                e = lst[i]
                if e.visible_at > now or not e.matches(attr):
                    continue
                found.append(e)
                if len(found) > max_results:
                    break
        page = found[:max_results]
        out: dict[str, Any] = {"Events": [e.as_event() for e in page]}
        if len(found) > max_results:
            out["NextToken"] = self._token(region, qhash, page[-1].key)
        return out


def parse_delay(body: bytes) -> tuple[float | None, str | None]:
    """Body of ``POST /_sandbox/trail-delay``: a number (the default delay, seconds) or
    ``{"seconds": N, "region": "eu-west-1"}`` (that region only; ``"seconds": null``
    drops the region's override)."""
    try:
        obj = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("body must be a number of seconds or {\"seconds\": N, \"region\": R}") from None
    region: str | None = None
    if isinstance(obj, dict):
        region = obj.get("region")
        if region is not None and (not isinstance(region, str) or not 0 < len(region) <= 64):
            raise ValueError("region must be a region name")
        obj = obj.get("seconds")
        if obj is None and region is not None:
            return None, region
    if isinstance(obj, bool) or not isinstance(obj, (int, float)) or not math.isfinite(obj) \
            or not 0 <= obj <= MAX_TRAIL_DELAY_S:
        raise ValueError(f"seconds must be a number from 0 to {MAX_TRAIL_DELAY_S:g}")
    return float(obj), region


# --------------------------------------------------------------------------- key states

# The KMS operations of the "Key states and KMS operations" table (KMS developer guide,
# key-state.html) that need a usable key and change nothing: the cryptographic ones.
# Operations that change something are left to moto, except on a key pending deletion
# (PENDING_DELETION_REFUSED, refused before moto sees them).
KEY_STATE_OPERATIONS = frozenset({
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac",
    "Sign", "Verify", "GetPublicKey",
})
# Key state -> (error, end of the message after the key ARN), from the table's notes:
# Disabled [1], pending (replica) deletion [3], pending import [5], unavailable [11],
# creating [14]. Enabled and Updating keys can be used.
UNUSABLE_KEY_STATES = {
    "Disabled": ("DisabledException", "is disabled."),
    "PendingDeletion": ("KMSInvalidStateException", "is pending deletion."),
    "PendingReplicaDeletion": ("KMSInvalidStateException", "is pending replica deletion."),
    "PendingImport": ("KMSInvalidStateException", "is pending import."),
    "Unavailable": ("KMSInvalidStateException", "is unavailable."),
    "Creating": ("KMSInvalidStateException", "is creating."),
}
# Operations that change a key (or point an alias at it) which KMS refuses on a key pending
# deletion (the table's note [3]: KMSInvalidStateException "<key ARN> is pending deletion."),
# by the request member naming the key. moto carries them out: DisableKey even turns a key
# pending deletion into a Disabled one, silently cancelling its deletion.
PENDING_DELETION_REFUSED = {
    "DisableKey": "KeyId", "EnableKey": "KeyId", "EnableKeyRotation": "KeyId",
    "DisableKeyRotation": "KeyId", "ScheduleKeyDeletion": "KeyId", "CreateGrant": "KeyId",
    "TagResource": "KeyId", "UntagResource": "KeyId", "UpdateKeyDescription": "KeyId",
    "CreateAlias": "TargetKeyId", "UpdateAlias": "TargetKeyId",
}
# moto's failures of the cryptographic step itself, which KMS never reaches with an
# unusable key: a disabled key's ciphertext under the wrong encryption context is
# DisabledException in AWS, InvalidCiphertextException in moto.
CRYPTO_STEP_ERRORS = frozenset({"InvalidCiphertextException", "IncorrectKeyException",
                                "KMSInvalidMacException", "KMSInvalidSignatureException"})


def _action_matches(actions: Any, wanted: str) -> bool:
    """Does a statement's Action (a string or a list; ``*`` wildcards) cover ``wanted``
    (``kms:encrypt``, lower case)?"""
    items = [actions] if isinstance(actions, str) else actions if isinstance(actions, list) else []
    return any(isinstance(a, str) and fnmatch.fnmatchcase(wanted, a.lower()) for a in items)


def _principal_names(principal: Any) -> set[str]:
    """A statement's Principal as a set of names: ``*`` for everyone, else the AWS
    principals (ARNs or account ids)."""
    if principal == "*":
        return {"*"}
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    items = [aws] if isinstance(aws, str) else aws if isinstance(aws, list) else []
    return {str(a) for a in items}


class KeyStateGuard:
    """Refuses KMS cryptographic operations on keys whose state KMS refuses them in, and
    (:meth:`refuse_before`, before moto sees them) changes to a key pending deletion.

    moto encrypts, decrypts and signs with Disabled and PendingDeletion keys alike. The
    guard runs on the proxy's request thread after moto has answered: by then moto has
    checked the signature and the caller's IAM policy, as AWS does before it looks at
    the key state (an outsider's Decrypt of a disabled key's ciphertext stays
    AccessDenied), and as these operations change nothing in moto, replacing moto's
    answer with AWS's error is the same as refusing the call. Key states are read from
    moto's in-process backend, so a call costs no extra request.

    The keys checked, source first: those moto's answer names (``SourceKeyId``,
    ``KeyId``: moto has resolved key id, key ARN, alias or alias ARN, and for Decrypt
    and ReEncrypt the key of the ciphertext); when moto's cryptographic step failed
    (:data:`CRYPTO_STEP_ERRORS`), those the request names (the ciphertext's key, else
    ``SourceKeyId``; then ``KeyId`` or ``DestinationKeyId``).
    """

    def __init__(self, account_id: str, home_region: str) -> None:
        self.account_id = account_id
        self.home_region = home_region
        # The caller of an access key (the recorder's lookup), for key policies; None:
        # key policies are not evaluated.
        self.principal_of: Any = None

    def policy_refusal(self, region: str, refs: list[Any], action: str,
                       req_headers: list[tuple[str, str]]) -> tuple[str, str] | None:
        """AccessDeniedException when a named key's key policy lets the caller neither
        directly nor through IAM (KMS developer guide, "Key policies in AWS KMS": without
        a statement for the account, IAM policies give no access to the key), else None.

        moto never reads key policies; this is how the runbook's quarantine (a key policy
        naming only the security lead) takes effect in the sandbox. Approximations: an
        explicit Deny and an Allow are matched on principal and action only (a statement's
        Condition is not evaluated: a conditional Allow counts, a conditional Deny does
        not), and only the cryptographic operations are checked (moto has already carried
        out a management call when its answer comes back)."""
        if self.principal_of is None:
            return None
        caller = self.principal_of(access_key_id(req_headers))
        if caller is None:
            return None
        names = {caller.arn} | ({caller.role[2]} if caller.role else set())
        account_names = {f"arn:aws:iam::{self.account_id}:root", self.account_id}
        seen: set[int] = set()
        for i, ref in enumerate(refs):
            # ReEncrypt needs kms:ReEncryptFrom on the source key (named first) and
            # kms:ReEncryptTo on the destination; every other operation its own name.
            permission = action if action != "ReEncrypt" else ("ReEncryptFrom" if i == 0 else "ReEncryptTo")
            wanted = f"kms:{permission}".lower()
            key = find_kms_key(self.account_id, region, ref)
            if key is None or id(key) in seen:
                continue
            seen.add(id(key))
            try:
                doc = json.loads(str(key.policy or "{}"))
                arn = str(key.arn)
            except Exception:  # unreadable policy or moto internals moved: moto's answer stands
                continue
            statements = doc.get("Statement") if isinstance(doc, dict) else None
            if isinstance(statements, dict):
                statements = [statements]
            allowed = False
            for st in statements if isinstance(statements, list) else []:
                if not isinstance(st, dict) or not _action_matches(st.get("Action"), wanted):
                    continue
                principals = _principal_names(st.get("Principal"))
                conditional = bool(st.get("Condition"))
                if st.get("Effect") == "Deny" and not conditional and ("*" in principals or names & principals):
                    allowed = False
                    break
                if st.get("Effect") == "Allow" and ("*" in principals or names & principals
                                                    or account_names & principals):
                    allowed = True
            if not allowed:
                return "AccessDeniedException", (
                    f"User: {caller.arn} is not authorized to perform: kms:{permission} on resource: {arn} "
                    f"because no resource-based policy allows the kms:{permission} action")
        return None

    def refusal(self, region: str, refs: list[Any]) -> tuple[str, str] | None:
        """(error code, message) for the first named key KMS would not use, else None."""
        seen: set[int] = set()
        for ref in refs:
            key = find_kms_key(self.account_id, region, ref)
            if key is None or id(key) in seen:
                continue
            seen.add(id(key))
            try:
                state, arn = str(key.key_state), str(key.arn)
            except Exception:  # moto internals moved: let moto's answer stand
                continue
            if state in UNUSABLE_KEY_STATES:
                code, tail = UNUSABLE_KEY_STATES[state]
                return code, f"{arn} {tail}"
        return None

    @staticmethod
    def keys_named(action: str, request: dict[str, Any] | None,
                   response: dict[str, Any] | None) -> list[Any]:
        """The key references of a call, source key first (see the class docstring)."""
        if response is not None and isinstance(response.get("KeyId"), str):
            return [response.get("SourceKeyId"), response["KeyId"]]
        req = request or {}
        refs: list[Any] = []
        if action in ("Decrypt", "ReEncrypt"):
            blob = req.get("CiphertextBlob")
            blob_key = ciphertext_key_id(blob) if isinstance(blob, str) else None
            refs.append(blob_key or req.get("SourceKeyId"))
        refs += [req.get("KeyId"), req.get("DestinationKeyId")]
        return refs

    def refuse_before(self, method: str, path: str, req_headers: list[tuple[str, str]], req_body: bytes,
                      authenticate: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """AWS's answer to a change KMS refuses on a key pending deletion
        (:data:`PENDING_DELETION_REFUSED`), made instead of forwarding the call: moto would
        carry it out. Only once the signature and the caller's IAM policy pass
        (``authenticate``, moto's own check), as AWS checks them first; otherwise (and for
        every other call) None: the call goes to moto. Never raises."""
        target = header(req_headers, "X-Amz-Target") or ""
        if not target.startswith("TrentService."):
            return None
        action = target.rpartition(".")[2]
        member = PENDING_DELETION_REFUSED.get(action)
        if member is None:
            return None
        try:
            request = json_object(req_body) or {}
            scope = credential_scope(req_headers, path)
            key = find_kms_key(self.account_id, scope.region if scope else self.home_region, request.get(member))
            if key is None or str(key.key_state) != "PendingDeletion":
                return None
            arn = str(key.arn)
            _, err = authenticate(method, path, req_headers, req_body, action)
            if err is not None:
                return None
        except Exception:
            LOG.exception("key states: could not check a %s call", action)
            return None
        LOG.debug("key states: %s refused: %s is pending deletion", action, arn)
        return 400, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", "KMSInvalidStateException"),
                     ("x-amzn-RequestId", str(uuid.uuid4()))], \
            json.dumps({"__type": "KMSInvalidStateException", "message": f"{arn} is pending deletion."}).encode()

    def enforce(self, path: str, req_headers: list[tuple[str, str]], req_body: bytes, status: int,
                headers: list[tuple[str, str]], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """moto's answer, or AWS's key-state error in its place. Never raises."""
        target = header(req_headers, "X-Amz-Target") or ""
        if not target.startswith("TrentService.") or status not in (200, 400):
            return status, headers, body
        action = target.rpartition(".")[2]
        if action not in KEY_STATE_OPERATIONS:
            return status, headers, body
        try:
            answer = json_object(body)
            if status == 400:
                code = str((answer or {}).get("__type") or "").rsplit("#", 1)[-1]
                if code not in CRYPTO_STEP_ERRORS:
                    return status, headers, body
                refs = self.keys_named(action, json_object(req_body), None)
            else:
                refs = self.keys_named(action, None, answer)
            scope = credential_scope(req_headers, path)
            region = scope.region if scope else self.home_region
            found = self.refusal(region, refs)
            if found is None and status == 200:
                found = self.policy_refusal(region, refs, action, req_headers)
        except Exception:
            LOG.exception("key states: could not check a %s call", action)
            return status, headers, body
        if found is None:
            return status, headers, body
        code, message = found
        LOG.debug("key states: %s refused: %s %s", action, code, message)
        request_id = header(headers, "x-amzn-RequestId") or str(uuid.uuid4())
        keep = [(k, v) for k, v in headers if k.lower() not in {
            "content-type", "content-length", "x-amzn-errortype", "x-amzn-requestid", "x-amz-crc32"}]
        keep += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code),
                 ("x-amzn-RequestId", request_id)]
        return 400, keep, json.dumps({"__type": code, "message": message}).encode()


# --------------------------------------------------------------------------- moto's gaps

class KeyReferenceFixer:
    """Completes KMS calls moto fails on although AWS accepts them, after moto's checks.

    * DisableKey, EnableKey, ScheduleKeyDeletion and CancelKeyDeletion with a key ARN:
      KMS accepts a key id or a key ARN; moto looks the ARN up as an id and fails (HTTP
      500). moto has authenticated and authorised the call by then (a denial is a 4xx
      before the action runs), so the proxy runs the same backend method with the key id
      the ARN names and answers as moto answers a key id.
    * GetKeyPolicy and PutKeyPolicy without PolicyName: optional in KMS (it defaults to
      ``default``); moto answers NotFoundException "No such policy exists". Same remedy.

    Never raises; anything unexpected leaves moto's answer as it was.
    """

    STATE_CHANGES = frozenset({"DisableKey", "EnableKey", "ScheduleKeyDeletion", "CancelKeyDeletion"})

    def __init__(self, account_id: str, home_region: str) -> None:
        self.account_id = account_id
        self.home_region = home_region

    def enforce(self, path: str, req_headers: list[tuple[str, str]], req_body: bytes, status: int,
                headers: list[tuple[str, str]], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        target = header(req_headers, "X-Amz-Target") or ""
        if not target.startswith("TrentService.") or status < 400:
            return status, headers, body
        action = target.rpartition(".")[2]
        try:
            request = json_object(req_body) or {}
            ref = request.get("KeyId")
            if not isinstance(ref, str):
                return status, headers, body
            policy_gap = action in ("GetKeyPolicy", "PutKeyPolicy") and status == 400 \
                and request.get("PolicyName") is None and b"No such policy exists" in body
            arn_gap = action in self.STATE_CHANGES and status >= 500 and ref.startswith("arn:")
            if not (policy_gap or arn_gap):
                return status, headers, body
            scope = credential_scope(req_headers, path)
            region = scope.region if scope else self.home_region
            if ref.startswith("arn:"):
                parts = ref.split(":", 5)
                region = parts[3] if len(parts) == 6 and parts[3] else region
            key = find_kms_key(self.account_id, region, ref)
            backend = kms_backend(self.account_id, region)
            if key is None or backend is None or (ref.startswith("alias/") or ":alias/" in ref):
                return status, headers, body
            key_id = str(key.id)
            answer: Any = None
            if action == "GetKeyPolicy":
                answer = {"Policy": backend.get_key_policy(key_id) or "{}", "PolicyName": "default"}
            elif action == "PutKeyPolicy":
                if not isinstance(request.get("Policy"), str):
                    return status, headers, body
                backend.put_key_policy(key_id, request["Policy"])
            elif action == "DisableKey":
                backend.disable_key(key_id)
            elif action == "EnableKey":
                backend.enable_key(key_id)
            elif action == "CancelKeyDeletion":
                backend.cancel_key_deletion(key_id)
                answer = {"KeyId": str(key.arn)}
            elif action == "ScheduleKeyDeletion":
                window = request.get("PendingWindowInDays", 30)
                if isinstance(window, bool) or not isinstance(window, int) or not 7 <= window <= 30:
                    return status, headers, body
                backend.schedule_key_deletion(key_id, window)
                deletion = key.deletion_date
                answer = {"KeyId": str(key.arn), "KeyState": str(key.key_state),
                          "PendingWindowInDays": window,
                          "DeletionDate": deletion.replace(tzinfo=dt.UTC).timestamp() if deletion else None}
        except Exception:
            LOG.exception("key references: could not complete a %s call", action)
            return status, headers, body
        LOG.info("key references: %s completed for moto (%s)", action, "policy name" if policy_gap else "key ARN")
        request_id = header(headers, "x-amzn-RequestId") or str(uuid.uuid4())
        return 200, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)], \
            json.dumps(answer if answer is not None else {}).encode()


# --------------------------------------------------------------------------- Secrets Manager

def secretsmanager_backend(account_id: str, region: str) -> Any:
    """moto's in-process Secrets Manager backend of a region (None if moto's internals moved)."""
    try:
        from moto.secretsmanager.models import secretsmanager_backends

        return secretsmanager_backends[account_id][region]
    except Exception:
        return None


class SecretsFixer:
    """Secrets Manager as AWS answers it where keydeck's approval store depends on it.

    * **Atomic label moves.** moto's server runs requests on threads and its
      UpdateSecretVersionStage checks, then moves, without a lock; Secrets Manager refuses
      a RemoveFromVersionId that no longer holds the label however close two calls are.
      The proxy runs Secrets Manager's changing calls one at a time (:meth:`serial`).
    * **The refusal's message.** A RemoveFromVersionId that does not hold the label, while
      another version does, is InvalidParameterException in both; moto says ``Version stage
      X not found in version V``, the proxy answers Secrets Manager's ``When you move
      staging label X, if you specify RemoveFromVersionId, it must be set to the version
      that currently has the staging label X.``
    * **Deprecated versions** (no staging label) are not in DescribeSecret's
      VersionIdsToStages nor ListSecrets' SecretVersionsToStages, and ListSecretVersionIds
      lists them only with IncludeDeprecated; moto lists them everywhere (as ``[]``).
      ListSecretVersionIds' ARN is the secret's ARN (moto answers its name), and each
      version's CreatedDate is when it was created (moto answers the time of the call).
    * **Resource-scoped permissions.** moto authorises Secrets Manager against ``*`` only,
      so an estate operator's ``scoped_secrets`` entries (actions allowed only on secrets
      whose names match, as an IAM statement with ``Resource:
      arn:aws:secretsmanager:*:*:secret:NAME-*`` would) are granted to moto on ``*`` and
      enforced here: a call on another secret is refused before it reaches moto with AWS's
      AccessDeniedException. CreateSecret with Tags also needs secretsmanager:TagResource,
      as in AWS (moto does not check it).

    Never raises; anything unexpected leaves moto's answer as it was.
    """

    READS = ("Get", "List", "Describe", "BatchGet", "ValidateResourcePolicy")

    def __init__(self, account_id: str, home_region: str, operators: list[dict[str, Any]]) -> None:
        self.account_id = account_id
        self.home_region = home_region
        self._lock = threading.Lock()
        # user name -> (actions allowed on every secret, [(actions, name patterns)])
        self.scopes: dict[str, tuple[set[str], list[tuple[set[str], list[str]]]]] = {}
        for op in operators:
            scoped = [(set(e.get("actions", [])), list(e.get("names", [])))
                      for e in op.get("scoped_secrets", []) or []]
            self.scopes[op["name"]] = (set(op.get("actions", [])), scoped)
        self.principal: Any = None  # access key id -> Principal (the recorder's lookup)

    @staticmethod
    def action(req_headers: list[tuple[str, str]]) -> str | None:
        target = header(req_headers, "X-Amz-Target") or ""
        return target.partition(".")[2] if target.startswith("secretsmanager.") else None

    def serial(self, req_headers: list[tuple[str, str]]) -> Any:
        """A context holding the lock for Secrets Manager calls that change something."""
        action = self.action(req_headers)
        if action is None or action.startswith(self.READS):
            return contextlib.nullcontext()
        return self._lock

    def _region(self, req_headers: list[tuple[str, str]], path: str) -> str:
        scope = credential_scope(req_headers, path)
        return scope.region if scope else self.home_region

    def _secret(self, region: str, ref: str) -> Any:
        backend = secretsmanager_backend(self.account_id, region)
        try:
            return backend.secrets.get(ref) if backend is not None else None
        except Exception:
            return None

    # ---- before moto: resource-scoped permissions
    def refusal(self, path: str, req_headers: list[tuple[str, str]], body: bytes
                ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        try:
            action = self.action(req_headers)
            scope = credential_scope(req_headers, path)
            if action is None or scope is None or self.principal is None:
                return None
            who = self.principal(scope.access_key_id)
            if who is None or who.user_name not in self.scopes:
                return None
            request = json_object(body) or {}
            ref = request.get("Name") if action == "CreateSecret" else request.get("SecretId")
            if not isinstance(ref, str) or not ref:
                return None
            secret = self._secret(scope.region, ref)
            name = secret.name if secret is not None else ref
            if name.startswith("arn:") and ":secret:" in name:
                name = name.split(":secret:", 1)[1]
            resource = secret.arn if secret is not None else \
                f"arn:aws:secretsmanager:{scope.region}:{self.account_id}:secret:{name}"
            needed = [f"secretsmanager:{action}"]
            if action == "CreateSecret" and request.get("Tags"):
                needed.append("secretsmanager:TagResource")
            unscoped, scoped = self.scopes[who.user_name]
            for perm in needed:
                if perm in unscoped or "secretsmanager:*" in unscoped or "*" in unscoped:
                    continue
                entries = [names for actions, names in scoped if perm in actions]
                if perm != needed[0] and not entries:
                    pass  # TagResource not held at all: refused below
                elif not entries:
                    continue  # not scoped here: moto's IAM decides
                if any(fnmatch.fnmatchcase(name, pat) for names in entries for pat in names):
                    continue
                message = (f"User: {who.arn} is not authorized to perform: {perm} on resource: {resource} "
                           f"because no identity-based policy allows the {perm} action")
                LOG.info("secrets: %s refused %s on %s (scoped_secrets)", who.user_name, perm, name)
                return json_error([], "AccessDeniedException", message)
        except Exception:
            LOG.exception("secrets: could not check a scoped permission")
        return None

    # ---- after moto
    def enforce(self, path: str, req_headers: list[tuple[str, str]], req_body: bytes, status: int,
                headers: list[tuple[str, str]], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        action = self.action(req_headers)
        if action is None:
            return status, headers, body
        try:
            if action == "UpdateSecretVersionStage" and status == 400:
                return self._label_refusal(path, req_headers, req_body, headers, body)
            if status != 200 or action not in ("DescribeSecret", "ListSecrets", "ListSecretVersionIds"):
                return status, headers, body
            answer = json_object(body)
            if answer is None:
                return status, headers, body
            labelled = lambda m: {v: s for v, s in m.items() if s} if isinstance(m, dict) else m  # noqa: E731
            if action == "DescribeSecret" and "VersionIdsToStages" in answer:
                answer["VersionIdsToStages"] = labelled(answer["VersionIdsToStages"])
            elif action == "ListSecrets":
                for entry in answer.get("SecretList") or []:
                    if isinstance(entry, dict) and "SecretVersionsToStages" in entry:
                        entry["SecretVersionsToStages"] = labelled(entry["SecretVersionsToStages"])
            elif action == "ListSecretVersionIds":
                request = json_object(req_body) or {}
                if not request.get("IncludeDeprecated"):
                    answer["Versions"] = [v for v in answer.get("Versions") or []
                                          if isinstance(v, dict) and v.get("VersionStages")]
                secret = self._secret(self._region(req_headers, path), str(request.get("SecretId") or ""))
                if secret is not None:
                    answer["ARN"] = secret.arn
                    # Each version's CreatedDate is when it was created (moto answers now).
                    for v in answer.get("Versions") or []:
                        made = (secret.versions.get(v.get("VersionId")) or {}).get("createdate")
                        if isinstance(v, dict) and made is not None:
                            v["CreatedDate"] = made
                if not answer.get("NextToken"):
                    answer.pop("NextToken", None)
        except Exception:
            LOG.exception("secrets: could not complete a %s answer", action)
            return status, headers, body
        keep = [(k, v) for k, v in headers if k.lower() not in ("content-length", "x-amz-crc32")]
        return status, keep, json.dumps(answer).encode()

    def _label_refusal(self, path: str, req_headers: list[tuple[str, str]], req_body: bytes,
                       headers: list[tuple[str, str]], body: bytes
                       ) -> tuple[int, list[tuple[str, str]], bytes]:
        answer = json_object(body) or {}
        request = json_object(req_body) or {}
        label, remove_from = request.get("VersionStage"), request.get("RemoveFromVersionId")
        message = str(answer.get("message") or answer.get("Message") or "")
        if answer.get("__type") != "InvalidParameterException" or not isinstance(label, str) \
                or not isinstance(remove_from, str) or not message.startswith("Version stage "):
            return 400, headers, body
        secret = self._secret(self._region(req_headers, path), str(request.get("SecretId") or ""))
        if secret is None or remove_from not in secret.versions:
            return 400, headers, body
        holder = [v for v, d in secret.versions.items() if label in (d.get("version_stages") or [])]
        if not holder:
            return 400, headers, body  # the label is on no version: moto's answer stands
        text = (f"When you move staging label {label}, if you specify RemoveFromVersionId, it must be "
                f"set to the version that currently has the staging label {label}.")
        return json_error(headers, "InvalidParameterException", text)


# --------------------------------------------------------------------------- KMS page sizes

# KMS list calls moto answers in one page whatever Limit and Marker say, with their AWS
# bounds (API reference, each call's Limit): item field, default page size, maximum.
KMS_PAGED: dict[str, tuple[str, int, int]] = {
    "ListKeys": ("Keys", 100, 1000),
    "ListAliases": ("Aliases", 50, 100),
    "ListResourceTags": ("Tags", 50, 50),
    "ListGrants": ("Grants", 50, 100),
    "ListRetirableGrants": ("Grants", 50, 100),
}
MARKER_PREFIX = "kdpage1."


def _kms_paged(req_headers: list[tuple[str, str]], body: bytes) -> tuple[str, dict[str, Any]] | None:
    target = header(req_headers, "X-Amz-Target") or ""
    action = target.partition(".")[2] if target.startswith("TrentService.") else ""
    if action not in KMS_PAGED:
        return None
    return action, json_object(body) or {}


def _marker(action: str, request: dict[str, Any], offset: int) -> str:
    scope = f"{action}|{request.get('KeyId') or ''}|{request.get('RetiringPrincipal') or ''}|{offset}"
    return MARKER_PREFIX + base64.urlsafe_b64encode(scope.encode()).decode().rstrip("=")


def _offset(action: str, request: dict[str, Any], marker: Any) -> int | None:
    """The offset a NextMarker of ours names, for this call and key; None if it is not one."""
    if not isinstance(marker, str) or not marker.startswith(MARKER_PREFIX):
        return None
    raw = marker[len(MARKER_PREFIX):]
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        offset = int(text.rsplit("|", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return offset if offset > 0 and _marker(action, request, offset) == marker else None


def kms_page_refusal(req_headers: list[tuple[str, str]], body: bytes
                     ) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """AWS's answer to a Limit out of its bounds (ValidationException) or a Marker that is
    not a NextMarker of the same call (InvalidMarkerException); None when both are fine."""
    paged = _kms_paged(req_headers, body)
    if paged is None:
        return None
    action, request = paged
    _field, _default, most = KMS_PAGED[action]
    limit = request.get("Limit")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            return json_error([], "ValidationException", "1 validation error detected: Value at 'limit' "
                              "failed to satisfy constraint: Member must be an integer")
        if not 1 <= limit <= most:
            bound = "greater than or equal to 1" if limit < 1 else f"less than or equal to {most}"
            return json_error([], "ValidationException", f"1 validation error detected: Value '{limit}' at "
                              f"'limit' failed to satisfy constraint: Member must have value {bound}")
    marker = request.get("Marker")
    if marker is not None and _offset(action, request, marker) is None:
        return json_error([], "InvalidMarkerException", "Invalid marker: it was not returned by a previous "
                          f"{action} request with the same parameters")
    return None


def kms_page(req_headers: list[tuple[str, str]], body: bytes, status: int, headers: list[tuple[str, str]],
             resp_body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Cut moto's one-page answer to the page AWS would give: at most Limit items (default
    per call) from the Marker's offset, with Truncated and NextMarker. Never raises."""
    if status != 200:
        return status, headers, resp_body
    try:
        paged = _kms_paged(req_headers, body)
        if paged is None:
            return status, headers, resp_body
        action, request = paged
        field, default, _most = KMS_PAGED[action]
        answer = json_object(resp_body)
        items = answer.get(field) if answer is not None else None
        if answer is None or not isinstance(items, list):
            return status, headers, resp_body
        limit = request.get("Limit") or default
        start = _offset(action, request, request.get("Marker")) or 0
        page = items[start:start + limit]
        answer[field] = page
        answer["Truncated"] = start + limit < len(items)
        answer.pop("NextMarker", None)
        if answer["Truncated"]:
            answer["NextMarker"] = _marker(action, request, start + limit)
        keep = [(k, v) for k, v in headers if k.lower() not in ("content-length", "x-amz-crc32")]
        return status, keep, json.dumps(answer).encode()
    except Exception:
        LOG.exception("kms paging: could not page a %s answer", header(req_headers, "X-Amz-Target"))
        return status, headers, resp_body


# --------------------------------------------------------------------------- signatures

# The digest length KMS requires with MessageType DIGEST, by signing algorithm's hash.
DIGEST_BYTES = {"SHA_256": 32, "SHA_384": 48, "SHA_512": 64}


def json_error(headers: list[tuple[str, str]], code: str, message: str | None
               ) -> tuple[int, list[tuple[str, str]], bytes]:
    """An awsJson1_1 error answer (HTTP 400) keeping the request id of ``headers``."""
    request_id = header(headers, "x-amzn-RequestId") or str(uuid.uuid4())
    keep = [(k, v) for k, v in headers if k.lower() not in {
        "content-type", "content-length", "x-amzn-errortype", "x-amzn-requestid", "x-amz-crc32"}]
    keep += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code),
             ("x-amzn-RequestId", request_id)]
    obj: dict[str, Any] = {"__type": code}
    if message is not None:
        obj["message"] = message
    return 400, keep, json.dumps(obj).encode()


class SignatureFixer:
    """Gives KMS Sign and Verify AWS's semantics where moto's differ.

    * MessageType DIGEST: moto ignores it and hashes the digest again, so its signature
      is over SHA-256(digest) and no verifier outside moto accepts it. KMS signs the
      digest as given. The proxy re-signs (Sign) or re-checks (Verify) a DIGEST request
      with moto's own in-process private key, prehashed, after moto has answered (IAM,
      the key, the key usage and the algorithm are moto's checks, the key state the
      :class:`KeyStateGuard`'s), and refuses a digest of the wrong length with
      ValidationException ``Digest is invalid length for algorithm ALG.``, as KMS does.
    * An invalid signature: moto answers ``SignatureValid: false``; KMS answers HTTP 400
      KMSInvalidSignatureException (without a message), never false.

    Runs after the key-state guard, on 200 answers only. Never raises; when moto's
    internals are not as expected the answer is left as moto gave it.
    """

    def __init__(self, account_id: str, home_region: str) -> None:
        self.account_id = account_id
        self.home_region = home_region

    @staticmethod
    def _algorithm(signing_algorithm: str) -> Any:
        from cryptography.hazmat.primitives import hashes

        for suffix, h in (("SHA_256", hashes.SHA256()), ("SHA_384", hashes.SHA384()),
                          ("SHA_512", hashes.SHA512())):
            if signing_algorithm.endswith(suffix):
                return h
        return None

    def _prehashed(self, private_key: Any, signing_algorithm: str) -> tuple[Any, Any] | None:
        """(sign(digest) -> bytes, verify(signature, digest) -> bool) over moto's key."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

        h = self._algorithm(signing_algorithm)
        if h is None:
            return None
        pre = utils.Prehashed(h)
        if isinstance(private_key, ec.EllipticCurvePrivateKey) and signing_algorithm.startswith("ECDSA_"):
            args: tuple[Any, ...] = (ec.ECDSA(pre),)
        elif isinstance(private_key, rsa.RSAPrivateKey) and signing_algorithm.startswith("RSASSA_PKCS1_V1_5_"):
            args = (padding.PKCS1v15(), pre)
        elif isinstance(private_key, rsa.RSAPrivateKey) and signing_algorithm.startswith("RSASSA_PSS_"):
            # moto signs RAW messages with the maximum salt length; the same here.
            args = (padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.MAX_LENGTH), pre)
        else:
            return None

        def verify(signature: bytes, digest: bytes) -> bool:
            try:
                private_key.public_key().verify(signature, digest, *args)
                return True
            except (InvalidSignature, ValueError):
                return False

        return (lambda digest: private_key.sign(digest, *args)), verify

    def enforce(self, path: str, req_headers: list[tuple[str, str]], req_body: bytes, status: int,
                headers: list[tuple[str, str]], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        target = header(req_headers, "X-Amz-Target") or ""
        if status != 200 or target not in ("TrentService.Sign", "TrentService.Verify"):
            return status, headers, body
        action = target.rpartition(".")[2]
        try:
            request = json_object(req_body) or {}
            answer = json_object(body)
            if answer is None:
                return status, headers, body
            if request.get("MessageType") == "DIGEST":
                algorithm = str(request.get("SigningAlgorithm") or "")
                digest = base64.b64decode(str(request.get("Message") or ""), validate=True)
                want = next((n for suffix, n in DIGEST_BYTES.items() if algorithm.endswith(suffix)), None)
                if want is not None and len(digest) != want:
                    return json_error(headers, "ValidationException",
                                      f"Digest is invalid length for algorithm {algorithm}.")
                scope = credential_scope(req_headers, path)
                key = find_kms_key(self.account_id, scope.region if scope else self.home_region,
                                   answer.get("KeyId"))
                ops = self._prehashed(key.private_key.private_key, algorithm) if key is not None else None
                if ops is None:
                    LOG.warning("signatures: cannot handle DIGEST for %s with %s", action, algorithm)
                    return status, headers, body
                sign, verify = ops
                if action == "Sign":
                    answer["Signature"] = base64.b64encode(sign(digest)).decode("ascii")
                else:
                    signature = base64.b64decode(str(request.get("Signature") or ""), validate=True)
                    answer["SignatureValid"] = verify(signature, digest)
            if action == "Verify" and answer.get("SignatureValid") is False:
                return json_error(headers, "KMSInvalidSignatureException", None)
        except Exception:
            LOG.exception("signatures: could not check a %s call", action)
            return status, headers, body
        keep = [(k, v) for k, v in headers if k.lower() not in ("content-length", "x-amz-crc32")]
        return status, keep, json.dumps(answer).encode()


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
            self._sandbox_endpoint(path_only, body)
            return
        if path_only.startswith("/moto-api"):
            # Not relayed: it would let any client switch IAM enforcement off or wipe state.
            self._send_json(403, {"__type": "AccessDeniedException",
                                  "message": "moto's admin API is not exposed by the sandbox proxy"},
                            error_type="AccessDeniedException")
            return
        req_headers = [(k, v) for k, v in self.headers.items()]
        observer = self.server.observer
        if header(req_headers, "X-Amz-Target") in LOOKUP_EVENTS_TARGETS and observer.trail is not None:
            # Answered here (moto has no event history); other CloudTrail calls go to moto.
            t0 = time.monotonic()
            status, resp_headers, resp_body = observer.trail.handle_lookup(
                self.command, self.path, req_headers, body, self.client_address)
            observer.count("cloudtrail", "cloudtrail:LookupEvents")
            LOG.info("cloudtrail:LookupEvents %s from %s -> %d (%.1f ms)", access_key_id(req_headers),
                     self.client_address[0], status, (time.monotonic() - t0) * 1000.0)
            self._send(status, resp_headers, resp_body, head=self.command == "HEAD")
            return
        context = observer.prepare(self.command, self.path, req_headers, body)
        started = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        secrets_fix = self.server.secrets
        with secrets_fix.serial(req_headers) if secrets_fix is not None else contextlib.nullcontext():
            refused = None
            if self.server.guard is not None and observer.trail is not None:
                refused = self.server.guard.refuse_before(self.command, self.path, req_headers, body,
                                                          observer.trail.authenticate)
            if refused is None and secrets_fix is not None:
                refused = secrets_fix.refusal(self.path, req_headers, body)
            if refused is None:
                refused = kms_page_refusal(req_headers, body)
            if refused is not None:
                status, resp_headers, resp_body = refused
            else:
                status, _reason, resp_headers, resp_body = self._forward(req_headers, body)
            status, resp_headers, resp_body = refuse_unsigned(self.path, req_headers, status,
                                                              resp_headers, resp_body)
            status, resp_headers, resp_body = rewrite_json_error(req_headers, status, resp_headers, resp_body)
            status, resp_headers, resp_body = rewrite_query_error(req_headers, status, resp_headers, resp_body)
            status, resp_headers, resp_body = normalize_json_response(req_headers, status,
                                                                      resp_headers, resp_body)
            status, resp_headers, resp_body = kms_page(req_headers, body, status, resp_headers, resp_body)
            if secrets_fix is not None:
                status, resp_headers, resp_body = secrets_fix.enforce(
                    self.path, req_headers, body, status, resp_headers, resp_body)
        if self.server.key_refs is not None:
            status, resp_headers, resp_body = self.server.key_refs.enforce(
                self.path, req_headers, body, status, resp_headers, resp_body)
        if self.server.guard is not None:
            status, resp_headers, resp_body = self.server.guard.enforce(
                self.path, req_headers, body, status, resp_headers, resp_body)
        if self.server.signatures is not None:
            status, resp_headers, resp_body = self.server.signatures.enforce(
                self.path, req_headers, body, status, resp_headers, resp_body)
        status, resp_headers, resp_body = self._name_denied_action(req_headers, body, status,
                                                                   resp_headers, resp_body)
        duration_ms = (time.monotonic() - t0) * 1000.0
        service, action = classify(self.command, self.path, req_headers, body)
        ex = Exchange(self.command, self.path, req_headers, body, self.client_address, status,
                      resp_headers, resp_body, started, duration_ms, service, action, context)
        try:
            observer.observe(ex)
        except Exception:
            LOG.exception("proxy: observer failed")
        LOG.info("%s %s from %s -> %d (%.1f ms)", action, access_key_id(req_headers),
                 self.client_address[0], status, duration_ms)
        self._send(status, resp_headers, resp_body, head=self.command == "HEAD")

    def _name_denied_action(self, req_headers: list[tuple[str, str]], body: bytes, status: int,
                            headers: list[tuple[str, str]], resp_body: bytes
                            ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Name an IAM denial as AWS does where moto names it otherwise. Never raises.

        * ReEncrypt: moto checks ``kms:ReEncrypt`` (see :func:`moto_actions`); AWS names
          the permission the caller lacks, ``kms:ReEncryptFrom`` (checked first) or
          ``kms:ReEncryptTo``.
        * SNS: moto answers ``AccessDenied``; SNS answers HTTP 403 ``AuthorizationError``
          ``User: ARN is not authorized to perform: SNS:Publish on resource: TOPIC ARN
          because no identity-based policy allows the SNS:Publish action``.
        """
        if status < 400:
            return status, headers, resp_body
        try:
            target = header(req_headers, "X-Amz-Target") or ""
            if target == "TrentService.ReEncrypt":
                return self._name_reencrypt_denial(req_headers, body, status, headers, resp_body)
            scope = credential_scope(req_headers, self.path)
            if scope is not None and scope.service == "sns" and not target:
                return self._sns_denial(scope, req_headers, body, status, headers, resp_body)
        except Exception:
            LOG.exception("proxy: could not rename a denial")
        return status, headers, resp_body

    def _name_reencrypt_denial(self, req_headers: list[tuple[str, str]], body: bytes, status: int,
                               headers: list[tuple[str, str]], resp_body: bytes
                               ) -> tuple[int, list[tuple[str, str]], bytes]:
        answer = json_object(resp_body) or {}
        message = str(answer.get("message") or "")
        trail = self.server.observer.trail
        if answer.get("__type") != "AccessDeniedException" or not message.endswith(": kms:ReEncrypt") \
                or trail is None:
            return status, headers, resp_body
        _, err = trail.authenticate(self.command, self.path, req_headers, body, "ReEncryptFrom")
        missing = "kms:ReEncryptFrom" if err is not None and err.code == "AccessDeniedException" \
            else "kms:ReEncryptTo"
        answer["message"] = message[: -len("kms:ReEncrypt")] + missing
        keep = [(k, v) for k, v in headers if k.lower() not in ("content-length", "x-amz-crc32")]
        return status, keep, json.dumps(answer).encode()

    def _sns_denial(self, scope: Scope, req_headers: list[tuple[str, str]], body: bytes, status: int,
                    headers: list[tuple[str, str]], resp_body: bytes
                    ) -> tuple[int, list[tuple[str, str]], bytes]:
        root = ET.fromstring(resp_body)
        if (root.findtext("./Error/Code") or "").strip() != "AccessDenied":
            return status, headers, resp_body
        message = (root.findtext("./Error/Message") or "").strip()
        marker = " is not authorized to perform: sns:"
        if marker not in message:
            return status, headers, resp_body
        user, _, action = message.partition(marker)
        action = action.split(" ", 1)[0]
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        form.update(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        account = self.server.observer.trail.account_id if self.server.observer.trail else "*"
        resource = form.get("TopicArn") or form.get("ResourceArn") or \
            f"arn:aws:sns:{scope.region}:{account}:*"
        text = (f"{user} is not authorized to perform: SNS:{action} on resource: {resource} "
                f"because no identity-based policy allows the SNS:{action} action")
        esc = lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # noqa: E731
        request_id = header(headers, "x-amzn-RequestId") or str(uuid.uuid4())
        xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
               f"<Message>{esc(text)}</Message></Error><RequestId>{esc(request_id)}</RequestId>"
               f"</ErrorResponse>").encode()
        keep = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
        return 403, keep + [("Content-Type", "text/xml")], xml

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

    def _sandbox_endpoint(self, path: str, body: bytes) -> None:
        obs = self.server.observer
        trail = obs.trail
        if path == "/_sandbox/stats" and self.command in ("GET", "HEAD"):
            self._send_json(200, obs.stats())
        elif path == "/_sandbox/stats/reset" and self.command == "POST":
            obs.reset()
            self._send_json(200, {"ok": True})
        elif path == "/_sandbox/sns/messages" and self.command in ("GET", "HEAD"):
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            account = trail.account_id if trail is not None else os.environ.get("MOTO_ACCOUNT_ID", "")
            home = trail.home_region if trail is not None else "us-east-1"
            found = sns_messages(account, query.get("region") or home, query.get("topic") or "")
            if found is None:
                self._send_json(404, {"error": "not_found", "message":
                                      f"no topic {query.get('topic')!r} in {query.get('region') or home}"})
            else:
                self._send_json(200, found)
        elif path == "/_sandbox/traffic/stored-reads" and self.command == "POST" \
                and self.server.traffic is not None:
            reads = self.server.traffic.read_stored()
            self._send_json(200, {"reads": reads})
        elif path == "/_sandbox/trail" and self.command in ("GET", "HEAD") and trail is not None:
            self._send_json(200, trail.info())
        elif path == "/_sandbox/trail-delay" and self.command in ("GET", "HEAD") and trail is not None:
            self._send_json(200, trail.delays())
        elif path == "/_sandbox/trail-delay" and self.command == "POST" and trail is not None:
            try:
                seconds, region = parse_delay(body)
            except ValueError as e:
                self._send_json(400, {"error": "bad_request", "message": str(e)})
                return
            trail.set_delay(seconds, region)
            LOG.info("trail delay %s s for %s", seconds, region or "every region")
            self._send_json(200, trail.delays())
        else:
            self._send_json(404, {"error": "not_found",
                                  "message": f"no sandbox endpoint {self.command} {path}"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


def sns_messages(account_id: str, region: str, topic: str) -> dict[str, Any] | None:
    """What was published to a topic (name or ARN), oldest first, from moto's backend
    (as moto's own ``/moto-api`` view shows it); None if there is no such topic."""
    if not topic or len(topic) > 512:
        return None
    if topic.startswith("arn:aws:sns:"):
        parts = topic.split(":")
        if len(parts) != 6:
            return None
        region, topic = parts[3], parts[5]
    try:
        from moto.sns.models import sns_backends

        backend = sns_backends[account_id][region]
        found = next((t for t in list(backend.topics.values()) if t.name == topic), None)
        if found is None:
            return None
        messages = [{"message_id": mid, "subject": subject, "message": message,
                     "message_attributes": attrs or {}}
                    for mid, message, subject, attrs, _group in list(found.sent_notifications)]
        return {"topic": found.name, "topic_arn": found.arn, "region": region, "messages": messages}
    except Exception:
        LOG.debug("sns messages: lookup failed", exc_info=True)
        return None


class SandboxProxy(http.server.ThreadingHTTPServer):
    """The client-facing server; ``upstream`` is moto's internal (host, port)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, port: int, observer: CallObserver, guard: KeyStateGuard | None = None,
                 signatures: SignatureFixer | None = None) -> None:
        self.observer = observer
        self.guard = guard
        self.signatures = signatures
        self.key_refs: KeyReferenceFixer | None = None
        self.secrets: SecretsFixer | None = None
        self.traffic: TrafficDriver | None = None  # the stored-data reads hook uses it
        self.upstream: tuple[str, int] = ("127.0.0.1", 0)
        super().__init__(("127.0.0.1", port), ProxyHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("proxy: connection error from %s", client_address, exc_info=True)


# --------------------------------------------------------------------------- traffic

class TrafficDriver(threading.Thread):
    """``--traffic demo``: the operators going about their day, signed, via the proxy.

    Besides fresh data keys, the application principals read the data they stored before
    any incident (the estate's ``stored_data``, :attr:`Seeder.stored`): once its key is
    disabled, those decrypts are refused (DisabledException) and show in CloudTrail as
    such. :meth:`read_stored` is also the sandbox's hook (``POST
    /_sandbox/traffic/stored-reads``), so tests drive it deterministically; with
    ``--traffic none`` the driver exists for the hook but never starts.
    """

    STORED_READ_CHANCE = 0.25  # per tick (every 1-3 s): a light, steady read load

    def __init__(self, endpoint: str, estate: Estate, operators: dict[str, dict[str, str]],
                 stop: threading.Event, stored: list[StoredRecord] | None = None) -> None:
        super().__init__(name="traffic", daemon=True)
        import boto3
        from botocore.config import Config

        self.stop = stop
        self.rng = random.Random()
        self.blobs: deque[bytes] = deque(maxlen=20)
        self.stored = list(stored or [])
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
        self._config = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                              connect_timeout=2, read_timeout=10)
        self._session = boto3.session.Session()
        self._endpoint = endpoint
        self._operators = operators
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = threading.Lock()

    def client(self, who: str, service: str, region: str | None = None) -> Any:
        """A client acting as ``who`` (made on first use; None for an unknown operator)."""
        region = region or self.region
        op = self._operators.get(who)
        if op is None:
            return None
        with self._clients_lock:
            key = (who, service, region)
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=self._endpoint, config=self._config,
                    aws_access_key_id=op["access_key_id"], aws_secret_access_key=op["secret_access_key"])
            return self._clients[key]

    def _call(self, who: str, service: str, op: str, region: str | None = None, **kwargs: Any) -> Any:
        return self._attempt(who, service, op, region, **kwargs)[0]

    def _attempt(self, who: str, service: str, op: str, region: str | None = None,
                 **kwargs: Any) -> tuple[Any, str | None]:
        """(answer, None) or (None, error code); never raises."""
        client = self.client(who, service, region)
        if client is None:
            return None, "NoSuchOperator"
        try:
            return getattr(client, op)(**kwargs), None
        except Exception as e:  # swallowed: traffic must never hurt the server
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            LOG.debug("traffic: %s %s:%s -> %s", who, service, op, code)
            return None, str(code)

    def read_stored(self, records: list[StoredRecord] | None = None) -> list[dict[str, Any]]:
        """Each record (default: all) decrypted once by the principal that holds it."""
        out: list[dict[str, Any]] = []
        for rec in self.stored if records is None else records:
            _, code = self._attempt(rec.principal, "kms", "decrypt", rec.region,
                                    CiphertextBlob=rec.blob, EncryptionContext=rec.context)
            out.append({"principal": rec.principal, "region": rec.region, "key": rec.key_alias,
                        "record": rec.context.get("record"), "outcome": code or "ok"})
        return out

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
        if self.stored and r() < self.STORED_READ_CHANCE:
            self.read_stored([self.rng.choice(self.stored)])
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


def remove_ready_file(path: str) -> None:
    """Remove sandbox.json if it is still this process's.

    The keydeck process that owns the data dir holds its lock (sandbox.lock); when it is
    killed the lock goes at once while this driver may take a moment to notice EOF, and a
    new sandbox may already own the dir: never remove its file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            pid = json.load(f).get("pid")
    except (OSError, ValueError, AttributeError):
        return
    if pid != os.getpid():
        LOG.info("sandbox.json belongs to pid %s now; leaving it", pid)
        return
    try:
        os.unlink(path)
    except OSError:
        pass


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
    p.add_argument("--bulk-keys", type=int, default=0,
                   help="extra generated KMS keys across the estate's regions (benchmarks)")
    p.add_argument("--bulk-secrets", type=int, default=0,
                   help="extra generated secrets across the estate's regions (benchmarks)")
    p.add_argument("--trail-delay", type=float, default=0.0,
                   help="seconds before a recorded call becomes visible to CloudTrail LookupEvents")
    p.add_argument("--no-stdin-watch", action="store_true",
                   help="do not exit when stdin reaches EOF")
    return p.parse_args(argv)


def add_bulk(estate: Estate, keys: int, secrets_: int) -> None:
    """Append generated keys and secrets (deterministic, spread over the regions).

    For benchmarks: a mix of rotation on/off, ages up to ~3 years, a few HMAC keys
    (rotation not applicable), tags like the estate's own.
    """
    regions = estate.regions or ["eu-north-1"]
    for i in range(keys):
        k: dict[str, Any] = {
            "alias": f"bulk-key-{i:05d}",
            "region": regions[i % len(regions)],
            "description": f"generated key {i}",
            "created_days_ago": 30 + (i * 37) % 1000,
            "rotation": i % 3 != 0,
            "tags": {"owner": "bulk", "classification": "L3" if i % 2 else "L4", "purpose": "benchmark"},
        }
        if i % 25 == 0:
            k.update({"spec": "HMAC_256", "usage": "GENERATE_VERIFY_MAC", "rotation": False})
        estate.keys.append(k)
    for i in range(secrets_):
        sec: dict[str, Any] = {
            "name": f"bulk/secret-{i:05d}",
            "region": regions[i % len(regions)],
            "description": f"generated secret {i}",
            "created_days_ago": 10 + (i * 13) % 400,
            "tags": {"owner": "bulk"},
        }
        if i % 2 == 0:
            sec.update({"rotation_days": 90, "last_rotated_days_ago": (i * 7) % 120})
        estate.secrets.append(sec)


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
        from moto.server import ThreadedMotoServer  # noqa: F401  (moto[server] is there)
    except ImportError as e:
        fail(out, "moto_missing", f"the sandbox needs moto[server] and freezegun ({e}); {INSTALL_HINT}",
             EXIT_MOTO_MISSING)
        return EXIT_MOTO_MISSING

    try:
        estate = load_estate(args.estate)
        add_bulk(estate, max(0, args.bulk_keys), max(0, args.bulk_secrets))
    except (OSError, ValueError, tomllib.TOMLDecodeError) as e:
        fail(out, "seed_failed", f"cannot read estate {args.estate}: {e}", EXIT_SEED_FAILED)
    os.environ["MOTO_ACCOUNT_ID"] = estate.account_id  # every request lands in this account

    home_region = estate.regions[0] if estate.regions else "us-east-1"
    trail = CloudTrailRecorder(estate.account_id, home_region, data_dir, args.trail_delay)
    observer = CallObserver(trail)
    # botocore's service models tell the recorder which operations exist; load them now.
    threading.Thread(target=lambda: [known_operations(s) for s in (*RECORDED_SERVICES, "cloudtrail")],
                     name="models", daemon=True).start()
    try:
        guard = KeyStateGuard(estate.account_id, home_region)
        guard.principal_of = trail.principal
        proxy = SandboxProxy(args.port, observer, guard, SignatureFixer(estate.account_id, home_region))
        proxy.key_refs = KeyReferenceFixer(estate.account_id, home_region)
        proxy.secrets = SecretsFixer(estate.account_id, home_region, estate.operators)
        proxy.secrets.principal = trail.principal
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
        moto_server = moto_server_class()(ip_address="127.0.0.1", port=0, verbose=False)
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
        seeder.seed_topics()
        seeder.seed_stored_data()
        enable_iam_enforcement(internal)
        ident = seeder.client("sts", "us-east-1", seeder.seeder_creds).get_caller_identity()
        LOG.info("IAM enforcement on; seeder is %s", ident["Arn"])
        driver = TrafficDriver(endpoint, estate, seeder.operators, stop, seeder.stored)
        proxy.traffic = driver
        traffic = driver if args.traffic == "demo" else None
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
    remove_ready_file(ready_file)
    for closer in (proxy.shutdown, proxy.server_close, moto_server.stop):
        t = threading.Thread(target=closer, daemon=True)
        t.start()
        t.join(5)
    LOG.info("stopped")
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
