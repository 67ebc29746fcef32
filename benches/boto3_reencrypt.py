#!/usr/bin/env python3
"""Baseline for the re-encryption benchmark (benches/incident.sh): what `keydeck incident
run ID --step re-encrypt --file IN` does, made by boto3 with a 32-thread pool against the
same endpoint, as the same operator (the environment's credentials: security-lead).

Reads IN (one base64 CiphertextBlob a line), calls kms:ReEncrypt for each line from SOURCE
to DESTINATION (key ARNs), and writes the new blobs to OUT line for line, in input order
(a window of 4 x 32 calls in flight, output buffered). Prints one JSON line: seconds,
lines, calls/s.

Usage: boto3_reencrypt.py SOURCE DESTINATION IN OUT
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
CFG = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=THREADS)


def main() -> int:
    source, destination, in_path, out_path = sys.argv[1:5]
    region = source.split(":")[3]
    kms = boto3.client("kms", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"], config=CFG)

    def one(line: str) -> str:
        out = kms.re_encrypt(CiphertextBlob=base64.b64decode(line), SourceKeyId=source,
                             DestinationKeyId=destination)
        return base64.b64encode(out["CiphertextBlob"]).decode()

    t0 = time.perf_counter()
    n = 0
    with open(in_path, encoding="ascii") as src, open(out_path, "w", encoding="ascii") as out, \
            ThreadPoolExecutor(THREADS) as pool:
        window: collections.deque = collections.deque()
        for line in src:
            window.append(pool.submit(one, line.strip()))
            if len(window) >= 4 * THREADS:
                out.write(window.popleft().result() + "\n")
                n += 1
        while window:
            out.write(window.popleft().result() + "\n")
            n += 1
    secs = time.perf_counter() - t0
    print(json.dumps({"seconds": round(secs, 3), "lines": n, "calls_per_s": round(n / secs, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
