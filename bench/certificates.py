"""What certificates cost a charge point: its key and CSR, the check of its signed chain, and
the memory of a certificate store, each against a baseline measured in the same run.

    python -m bench.certificates                    # 2,000 keys, 10,000 stores
    python -m bench.certificates --keys 500 --stores 2000

1. **key and CSR**: :func:`swarm.station.identity.request` (an EC P-256 key, its CSR, PEM), per
   charge point, against generating the key alone, the least any CSR needs.
2. **signed chain**: the embedded CSMS's authority signs each CSR; checking the chain that
   comes back (:func:`swarm.station.identity.check_chain`) against one signature check alone.
3. **store**: the memory of ``--stores`` 1.6 charge points, each with the same two roots
   installed, against as many with none: the bytes a store adds per charge point (the roots
   are parsed once and shared; each store holds references only).
4. **own TLS context**: the context a charge point at security profile 3 connects with once it
   was issued a certificate (:meth:`swarm.station.identity.Identity.tls_context`, made once
   per certificate), against the one ``--client-cert`` with ``{id}`` makes per charge point
   from files (:func:`swarm.protocol.security.client_context` and ``load_cert_chain``).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import trustme
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from swarm.csms.authority import Authority
from swarm.ocpp16.charge_point import ChargePoint
from swarm.protocol.security import client_context, load_cert_chain
from swarm.station import certificates, identity
from swarm.station.config import ChargePointConfig


def per_call(function: Callable[[], Any], count: int) -> float:
    """Seconds per call of ``function``, over ``count`` calls."""
    started = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - started) / count


def store_bytes(count: int, roots: list[str]) -> float:
    """Bytes per charge point of ``count`` 1.6 charge points with ``roots`` installed."""
    config = ChargePointConfig()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fleet = [ChargePoint(f"CP-{n}", "ws://127.0.0.1:9/x", config, None) for n in range(count)]
    for station in fleet:
        for pem in roots:
            payload = {"certificateType": "CentralSystemRootCertificate", "certificate": pem}
            station.handle_call("InstallCertificate", payload)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del fleet
    return used / count


def tls_contexts(key: Any, chain: str, leaf: Any, count: int) -> tuple[float, float]:
    """Seconds per TLS context of a charge point's own certificate, and per one made from files
    as ``--client-cert`` with ``{id}`` makes them, both trusting one CA."""
    with tempfile.TemporaryDirectory() as folder:
        ca, cert, key_file = f"{folder}/ca.pem", f"{folder}/cp.crt", f"{folder}/cp.key"
        trustme.CA().cert_pem.write_to_path(ca)
        with open(cert, "w") as file:
            file.write(chain)
        with open(key_file, "wb") as file:
            file.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        fleet = client_context(ca)

        def own() -> None:
            identity.Identity(key=key, chain=(leaf,)).tls_context(fleet)

        def from_files() -> None:
            load_cert_chain(client_context(ca), cert, key_file)

        return per_call(own, count), per_call(from_files, count)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.certificates", description=__doc__)
    parser.add_argument("--keys", type=int, default=2000, help="keys and CSRs made")
    parser.add_argument("--stores", type=int, default=10000, help="charge points with a store")
    args = parser.parse_args()

    key_only = per_call(lambda: ec.generate_private_key(ec.SECP256R1()), args.keys)
    request = per_call(lambda: identity.request("ocpp-swarm", "CP-0-000001"), args.keys)

    authority = Authority.make()
    root = certificates.parse(authority.root_pem)
    key, csr = identity.request("ocpp-swarm", "CP-0-000001")
    chain = authority.sign(csr, "CP-0-000001")
    leaf = identity.verified_chain(chain, [root])[0]
    one_signature = per_call(lambda: leaf.verify_directly_issued_by(root.certificate), args.keys)
    check = per_call(lambda: identity.check_chain(chain, key, "CP-0-000001", [root]), args.keys)

    own, from_files = tls_contexts(key, chain, leaf, args.keys // 4)

    roots = [ca.cert_pem.bytes().decode() for ca in (trustme.CA(), trustme.CA())]
    empty = store_bytes(args.stores, [])
    held = store_bytes(args.stores, roots)

    print(f"\n{args.keys} keys and CSRs, {args.stores} charge points with a store\n")
    print(f"{'':36}{'swarm':>12}{'baseline':>12}{'ratio':>8}")
    rows = (
        ("key and CSR (ms)", request * 1e3, key_only * 1e3, "EC P-256 key alone"),
        ("check of a signed chain (ms)", check * 1e3, one_signature * 1e3, "one signature"),
        ("charge point with 2 roots (bytes)", held, empty, "one with none"),
        ("own TLS context (ms)", own * 1e3, from_files * 1e3, "--client-cert {id}'s"),
    )
    for name, value, base, what in rows:
        print(f"{name:36}{value:12.3f}{base:12.3f}{value / base:7.2f}x  baseline: {what}")
    print(f"\na store of 2 roots adds {held - empty:.0f} bytes per charge point")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
