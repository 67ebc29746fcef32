#!/usr/bin/env python3
"""Check a re-encryption output against its input (benches/incident.sh), as an operator
allowed to decrypt (the bench runs it as compliance-decrypt): OUT has exactly as many
lines as IN, and for a sample of line numbers (the first, the last and SAMPLE random
ones) line i of OUT decrypts under DESTINATION to the same plaintext as line i of IN
under SOURCE. Prints one JSON line; exit 1 on any mismatch.

Usage: check_reencrypted.py SOURCE DESTINATION IN OUT [SAMPLE=200]
"""
from __future__ import annotations

import base64
import json
import os
import random
import sys

import boto3


def main() -> int:
    source, destination, in_path, out_path = sys.argv[1:5]
    sample = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    kms = boto3.client("kms", region_name=source.split(":")[3], endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    with open(in_path, encoding="ascii") as f:
        inp = f.read().splitlines()
    with open(out_path, "rb") as f:
        raw = f.read()
    out = raw.decode("ascii").splitlines()
    problems = []
    complete = raw.endswith(b"\n")
    if len(out) != len(inp) or not complete:
        problems.append(f"{out_path}: {len(out)} lines (ends with a newline: {complete}), input {len(inp)}")
    n = min(len(inp), len(out))
    lines = sorted({0, n - 1, *random.Random(7).sample(range(n), min(sample, n))}) if n else []
    for i in lines:
        a = kms.decrypt(CiphertextBlob=base64.b64decode(inp[i]), KeyId=source)
        b = kms.decrypt(CiphertextBlob=base64.b64decode(out[i]), KeyId=destination)
        if a["Plaintext"] != b["Plaintext"] or b["KeyId"] != destination:
            problems.append(f"line {i + 1}: output decrypts to other data or under {b['KeyId']}")
    print(json.dumps({"lines_in": len(inp), "lines_out": len(out), "checked": len(lines),
                      "ok": not problems, "problems": problems[:5]}))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
