#!/usr/bin/env python3
"""Baseline for the inventory benchmark: the same calls keydeck makes for a full
refresh, made by boto3 with a 32-thread pool, against the same endpoint.

Per region: ListKeys (paged), ListAliases (paged), ListSecrets (paged); per key:
DescribeKey, and for customer-managed symmetric AWS_KMS keys GetKeyRotationStatus,
ListKeyRotations and ListResourceTags. Prints one JSON line: wall seconds and counts.
Credentials and endpoint come from the environment (keydeck sandbox env --as ...).
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

THREADS = 32
CFG = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=THREADS)


def refresh(regions: list[str]) -> dict[str, int]:
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    kms = {r: boto3.client("kms", region_name=r, endpoint_url=endpoint, config=CFG) for r in regions}
    sm = {r: boto3.client("secretsmanager", region_name=r, endpoint_url=endpoint, config=CFG) for r in regions}
    keys: list[tuple[str, str]] = []
    secrets = 0
    for r in regions:
        for page in kms[r].get_paginator("list_keys").paginate():
            keys += [(r, k["KeyId"]) for k in page["Keys"]]
        for _ in kms[r].get_paginator("list_aliases").paginate():
            pass
        for page in sm[r].get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
            secrets += len(page["SecretList"])

    def one(item: tuple[str, str]) -> None:
        r, key_id = item
        c = kms[r]
        md = c.describe_key(KeyId=key_id)["KeyMetadata"]
        if md.get("KeyManager") == "AWS":
            return
        if md.get("KeySpec") == "SYMMETRIC_DEFAULT" and md.get("Origin") == "AWS_KMS":
            c.get_key_rotation_status(KeyId=key_id)
            for _ in c.get_paginator("list_key_rotations").paginate(KeyId=key_id):
                pass
        for _ in c.get_paginator("list_resource_tags").paginate(KeyId=key_id):
            pass

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, keys))
    return {"keys": len(keys), "secrets": secrets}


def main() -> int:
    regions = sys.argv[1:] or ["eu-north-1", "eu-west-1"]
    t0 = time.perf_counter()
    counts = refresh(regions)
    print(json.dumps({"seconds": time.perf_counter() - t0, **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
