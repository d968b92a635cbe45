"""Sign and verify rates for realistic records, beside bare Ed25519, in one run.

    python -m bench.bench_trust [--records 5000]
"""

from __future__ import annotations

import argparse
import time

from bench.records import actor
from biofed.trust import proofs
from biofed.trust.canonical import canonicalize, canonicalize_reference
from biofed.trust.keys import SigningKey


def rate(label: str, n: int, fn) -> float:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    per_second = n / seconds
    print(f"| {label} | {per_second:,.0f}/s | {seconds / n * 1e6:,.1f} µs |")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    n = parser.parse_args().records
    key = SigningKey.from_seed(bytes(range(32)))
    method = f"urn:biofed:bench#{key.kid}"
    records = [{**actor("bench", i), "version": 1, "dateModified": "2026-11-23T12:00:00Z"} for i in range(n)]
    signed = [proofs.sign(r, key, method, created="2026-11-23T12:00:00Z") for r in records]
    size = sum(len(canonicalize(s)) for s in signed) / n
    message = b"x" * 64
    signature = key.sign(message)
    print(f"{n} records, {size:,.0f} bytes each (canonical, signed)\n")
    print("| step | rate | per item |\n|---|---|---|")
    bare_sign = rate("bare Ed25519 sign (64 bytes)", n, lambda: [key.sign(message) for _ in range(n)])
    bare_verify = rate("bare Ed25519 verify (64 bytes)", n, lambda: [key.public.verify(signature, message) for _ in range(n)])
    rate("JCS, orjson fast path", n, lambda: [canonicalize(r) for r in records])
    rate("JCS, rfc8785 reference", n, lambda: [canonicalize_reference(r) for r in records])
    sign_rate = rate("sign record (eddsa-jcs-2022)", n, lambda: [proofs.sign(r, key, method) for r in records])
    verify_rate = rate("verify record (eddsa-jcs-2022)", n, lambda: [proofs.verify(s, key.public) for s in signed])
    print(f"\nsign record / bare sign = {sign_rate / bare_sign:.2f}; verify record / bare verify = {verify_rate / bare_verify:.2f}")


if __name__ == "__main__":
    main()
