"""End-to-end check of the TLS endpoints started by `scripts/services.sh up --tls`.

Run through scripts/tls/check.sh, which sets up the environment
(`scripts/services.sh env`) and a venv with boto3 and confluent-kafka.

S3 through stunnel:  boto3 put/get with the private CA, a presigned GET fetched
                     with a plain HTTPS client, a tampered one (must be 403).
Kafka SASL_SSL:      librdkafka (confluent-kafka) creates a topic, produces and
                     consumes one message with SCRAM-SHA-256 and SCRAM-SHA-512,
                     and must be refused with a wrong password; PLAIN is tried
                     too (tansu 0.6.0 does not offer it: see docs/services.md).
tansu probe:         a raw Kafka-protocol client shows what the broker itself
                     enforces after a failed SASL exchange (reported, not judged).
"""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.config import Config
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

env = os.environ
CA = env["REPORTD_TEST_TLS_CA"]
failures = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


# --- S3 over HTTPS ----------------------------------------------------------
def s3_checks():
    endpoint = env["REPORTD_TEST_TLS_S3_ENDPOINT"]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["REPORTD__STORAGE__REGION"],
        aws_access_key_id=env["REPORTD__STORAGE__ACCESS_KEY_ID"],
        aws_secret_access_key=env["REPORTD__STORAGE__SECRET_ACCESS_KEY"],
        verify=CA,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    bucket = env["REPORTD__STORAGE__BUCKET"]
    key = f"tls-check/{uuid.uuid4()}.txt"
    body = b"hello over TLS\n"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    check("s3 put/get (SigV4 header auth) via " + endpoint, got == body)

    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    ctx = ssl.create_default_context(cafile=CA)
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        check("s3 presigned GET", r.status == 200 and r.read() == body, f"{r.status} {url.split('?')[0]}")
    out = subprocess.run(["curl", "-sSf", "--cacert", CA, url], capture_output=True, text=True)
    check("s3 presigned GET with curl --cacert", out.returncode == 0 and out.stdout.encode() == body,
          out.stderr.strip())
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    try:
        urllib.request.urlopen(tampered, context=ctx, timeout=10)
        check("s3 tampered presigned GET refused", False, "answered 200")
    except urllib.error.HTTPError as e:
        check("s3 tampered presigned GET refused", e.code == 403, str(e.code))
    try:
        urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10)
        check("s3 TLS not trusted without the private CA", False)
    except urllib.error.URLError as e:
        check("s3 TLS not trusted without the private CA", "CERTIFICATE_VERIFY_FAILED" in str(e))
    s3.delete_object(Bucket=bucket, Key=key)


# --- Kafka SASL_SSL -----------------------------------------------------------
def kconf(mechanism, password):
    return {
        "bootstrap.servers": env["REPORTD_TEST_TLS_KAFKA_BROKERS"],
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": CA,
        "sasl.mechanism": mechanism,
        "sasl.username": env["REPORTD_TEST_TLS_KAFKA_USER"],
        "sasl.password": password,
    }


def round_trip(mechanism):
    password = env["REPORTD_TEST_TLS_KAFKA_PASSWORD"]
    topic = f"tls-check-{mechanism.lower()}-{uuid.uuid4().hex[:8]}"
    errors = []
    admin = AdminClient({**kconf(mechanism, password), "error_cb": errors.append})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(15)
    p = Producer({**kconf(mechanism, password), "acks": "all", "error_cb": errors.append})
    delivered = []
    value = f"hello via {mechanism}".encode()
    p.produce(topic, value=value, on_delivery=lambda err, msg: delivered.append(err))
    p.flush(15)
    c = Consumer({
        **kconf(mechanism, password),
        "group.id": f"tls-check-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "error_cb": errors.append,
    })
    c.subscribe([topic])
    got, deadline = None, time.time() + 30
    while got is None and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got = m.value()
    c.close()
    check(
        f"kafka SASL_SSL {mechanism}: create topic, produce, consume",
        delivered == [None] and got == value,
        f"delivered={delivered} got={got!r} errors={[str(e) for e in errors]}",
    )


def attempt(mechanism, password):
    """Connect and ask for metadata: (answered, [errors]) within about 10 s."""
    errors = []
    p = Producer({**kconf(mechanism, password), "error_cb": errors.append, "log_level": 0})
    try:
        p.list_topics(timeout=5)
        answered = True
    except KafkaException:
        answered = False
    deadline = time.time() + 5
    while not errors and time.time() < deadline:
        p.poll(0.5)
    return answered, errors


def wrong_password(mechanism):
    answered, errors = attempt(mechanism, "wrong-" + env["REPORTD_TEST_TLS_KAFKA_PASSWORD"])
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    check(f"kafka SASL_SSL {mechanism}: wrong password refused", bool(auth) and not answered,
          f"metadata {'answered' if answered else 'refused'}; "
          + (auth[0].str() if auth else f"errors: {[e.str() for e in errors]}"))


def plain():
    """tansu 0.6.0 builds rsasl without its "plain" feature: PLAIN is not offered."""
    answered, errors = attempt("PLAIN", env["REPORTD_TEST_TLS_KAFKA_PASSWORD"])
    if answered:
        check("kafka SASL_SSL PLAIN (now offered by the broker): wrong password refused",
              not attempt("PLAIN", "wrong")[0])
    else:
        print("known PLAIN not offered by tansu 0.6.0, refused even with the right password: "
              + (errors[0].str() if errors else "no error reported"), flush=True)


# --- tansu probe: what the broker enforces after a failed exchange --------------
class Raw:
    """Just enough of the Kafka protocol (request header v1) over TLS."""

    def __init__(self):
        host, port = env["REPORTD_TEST_TLS_KAFKA_BROKERS"].split(":")
        ctx = ssl.create_default_context(cafile=CA)
        self.s = ctx.wrap_socket(socket.create_connection((host, int(port)), 10), server_hostname=host)
        self.cid = 0

    def call(self, api_key, version, body):
        self.cid += 1
        client = b"tls-check"
        hdr = struct.pack(">hhih", api_key, version, self.cid, len(client)) + client
        msg = hdr + body
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._read(4))[0]
        resp = self._read(size)
        return resp[4:]  # drop the correlation id

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the broker")
            buf += chunk
        return buf

    def handshake(self, mechanism):
        m = mechanism.encode()
        return struct.unpack(">h", self.call(17, 1, struct.pack(">h", len(m)) + m)[:2])[0]

    def authenticate(self, data):
        r = self.call(36, 0, struct.pack(">i", len(data)) + data)
        err = struct.unpack(">h", r[:2])[0]
        mlen = struct.unpack(">h", r[2:4])[0]
        off = 4 + max(mlen, 0)
        blen = struct.unpack(">i", r[off:off + 4])[0]
        return err, r[off + 4:off + 4 + max(blen, 0)]

    def metadata_ok(self):
        """Metadata v0 for all topics: True when the broker answers it."""
        try:
            r = self.call(3, 0, struct.pack(">i", 0))
            return struct.unpack(">i", r[:4])[0] >= 1  # number of brokers
        except (ConnectionError, OSError, struct.error):
            return False


def scram_exchange(raw, mechanism, password):
    digest = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}[mechanism]
    user = env["REPORTD_TEST_TLS_KAFKA_USER"]
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    err, server_first = raw.authenticate(("n,," + first_bare).encode())
    if err:
        return f"error {err} after client-first"
    attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first.decode()},{without_proof}".encode()
    sig = hmac.new(digest(client_key).digest(), auth_msg, digest).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
    err, server_final = raw.authenticate(f"{without_proof},p={proof}".encode())
    return f"error_code={err} server-final={server_final.decode(errors='replace')!r}"


def tansu_probe():
    raw = Raw()
    check("tansu: Metadata refused before SASL", not raw.metadata_ok())
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        raw = Raw()
        raw.handshake(mechanism)
        outcome = scram_exchange(raw, mechanism, "not-the-password")
        print(f"info tansu {mechanism} wrong password: {outcome}; broker then answers Metadata: "
              f"{raw.metadata_ok()}", flush=True)
    raw = Raw()
    try:
        print(f"info tansu SaslHandshake PLAIN: error_code={raw.handshake('PLAIN')}", flush=True)
    except (ConnectionError, OSError) as e:
        print(f"info tansu SaslHandshake PLAIN: connection closed by the broker ({e})", flush=True)


def main(parts):
    if "s3" in parts:
        s3_checks()
    if "kafka" in parts:
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            round_trip(mech)
            wrong_password(mech)
        plain()
    if "probe" in parts:
        tansu_probe()
    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        sys.exit(1)
    print("all TLS checks passed")


if __name__ == "__main__":
    main(sys.argv[1:] or ["s3", "kafka", "probe"])
