#!/usr/bin/env python3
"""What one small PUT costs the S3 server: N signed PUTs of a SIZE-byte object,
one after another on one keep-alive connection, and the server's CPU (from
/proc, the process listening on the endpoint's port) divided by N. This is the
floor under a production job's cost here: every report is one such PUT.

usage: bench/s3_put_cost.py [--n 3000] [--size 10240] [--conns 8]
  endpoint, bucket and key from `scripts/services.sh env` (REPORTD__STORAGE__*)."""
import argparse, datetime, hashlib, hmac, http.client, os, re, subprocess, sys, threading, time
from urllib.parse import urlparse

HZ = os.sysconf("SC_CLK_TCK")


def server_cpu(port):
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    if not m:
        sys.exit(f"s3_put_cost.py: nothing listens on :{port}")
    with open(f"/proc/{m.group(1)}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def sign(method, host, path, body, key_id, secret, region):
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed, payload_hash])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, "
                                f"Signature={signature}")
    return headers


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--size", type=int, default=10240)
    p.add_argument("--conns", type=int, default=8, help="client threads, one keep-alive connection each")
    args = p.parse_args()
    env = os.environ
    endpoint = urlparse(env.get("REPORTD__STORAGE__ENDPOINT", "http://127.0.0.1:3900"))
    bucket = env.get("REPORTD__STORAGE__BUCKET", "reports")
    key_id, secret = env["REPORTD__STORAGE__ACCESS_KEY_ID"], env["REPORTD__STORAGE__SECRET_ACCESS_KEY"]
    region = env.get("REPORTD__STORAGE__REGION", "garage")
    host = endpoint.netloc
    body = os.urandom(args.size)  # incompressible, like a zip or a deflated PDF
    run = f"put-cost-{int(time.time())}"
    errors = []

    def client(t):
        conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port)
        for i in range(t, args.n, args.conns):
            path = f"/{bucket}/{run}/{i}"
            conn.request("PUT", path, body=body, headers=sign("PUT", host, path, body, key_id, secret, region))
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)

    before, t0 = server_cpu(endpoint.port), time.monotonic()
    threads = [threading.Thread(target=client, args=(t,)) for t in range(args.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.monotonic() - t0, server_cpu(endpoint.port) - before
    print(f"puts={args.n} size={args.size} conns={args.conns} errors={len(errors)} puts_per_s={args.n / elapsed:.0f} "
          f"server_cpu_ms_per_put={1000 * cpu / args.n:.3f}")
    if errors:
        sys.exit(f"s3_put_cost.py: {len(errors)} PUTs failed, e.g. HTTP {errors[0]}")


if __name__ == "__main__":
    main()
