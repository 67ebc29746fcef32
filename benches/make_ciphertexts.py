#!/usr/bin/env python3
"""Setup for the incident benchmark (benches/incident.sh): COUNT KMS Encrypt calls on KEY
with a 32-thread boto3 pool, as whoever the environment's credentials are (the bench runs
it as app-encrypt, through `keydeck sandbox env --as app-encrypt`).

Each call encrypts 32 fresh random bytes (an envelope data key, 004 §7). With OUT, the
base64 CiphertextBlobs are written to OUT one a line, in call order (the re-encryption
input); without it (or OUT = -) only the calls are made (the CloudTrail events the scope
benchmark looks up). Prints one JSON line: seconds, calls, calls/s.

Usage: make_ciphertexts.py KEY COUNT [OUT]
"""
from __future__ import annotations

import base64
import collections
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

THREADS = 32
CFG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=THREADS)


def main() -> int:
    key, count = sys.argv[1], int(sys.argv[2])
    out_path = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    kms = boto3.client("kms", endpoint_url=os.environ["AWS_ENDPOINT_URL"], config=CFG)

    def one(_: int) -> bytes:
        return kms.encrypt(KeyId=key, Plaintext=os.urandom(32))["CiphertextBlob"]

    t0 = time.perf_counter()
    out = open(out_path + ".part", "w", encoding="ascii") if out_path else None
    with ThreadPoolExecutor(THREADS) as pool:
        window: collections.deque = collections.deque()
        for i in range(count):
            window.append(pool.submit(one, i))
            if len(window) >= 4 * THREADS:
                blob = window.popleft().result()
                if out:
                    out.write(base64.b64encode(blob).decode() + "\n")
        while window:
            blob = window.popleft().result()
            if out:
                out.write(base64.b64encode(blob).decode() + "\n")
    if out:
        out.close()
        os.replace(out_path + ".part", out_path)
    secs = time.perf_counter() - t0
    print(json.dumps({"seconds": round(secs, 3), "calls": count, "calls_per_s": round(count / secs, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
