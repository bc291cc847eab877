#!/usr/bin/env python3
"""SASL/PLAIN in front of a Kafka broker that has none (tansu 0.6 offers only
SCRAM), for the tests of reportd's SASL PLAIN path (scripts/services.sh).

    sasl-plain-proxy.py LISTEN_HOST:PORT UPSTREAM_HOST:PORT USER PASSWORD_FILE

Each client connection is its own upstream connection. Before the client has
authenticated, ApiVersions goes to the broker (which advertises SaslHandshake
and SaslAuthenticate), SaslHandshake and SaslAuthenticate are answered here
(PLAIN only; the password is compared in constant time), and anything else
closes the connection, as a broker that requires SASL does. After it, bytes
pass through both ways unchanged. The broker's advertised listener must be the
address clients reach this proxy at (through TLS, stunnel in front of it).
"""
import asyncio
import hmac
import struct
import sys

API_SASL_HANDSHAKE, API_API_VERSIONS, API_SASL_AUTHENTICATE = 17, 18, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE = 33, 58, 34


async def read_frame(reader):
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    if not 0 <= size <= 16 * 1024 * 1024:
        raise ValueError(f"frame of {size} bytes")
    return await reader.readexactly(size)


def frame(body):
    return struct.pack(">i", len(body)) + body


def uvarint(data, pos):
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def to_uvarint(value):
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def skip_tags(data, pos):
    count, pos = uvarint(data, pos)
    for _ in range(count):
        _, pos = uvarint(data, pos)
        size, pos = uvarint(data, pos)
        pos += size
    return pos


def request_body(data, flexible):
    """Where the body starts: after api_key, version, correlation id, client id (and tags)."""
    client_id = struct.unpack(">h", data[8:10])[0]
    pos = 10 + max(client_id, 0)
    return skip_tags(data, pos) if flexible else pos


def handshake_reply(corr, data, version):
    pos = request_body(data, False)
    size = struct.unpack(">h", data[pos:pos + 2])[0]
    mechanism = data[pos + 2:pos + 2 + size].decode(errors="replace")
    error = 0 if mechanism == "PLAIN" else UNSUPPORTED_SASL_MECHANISM
    return error, frame(struct.pack(">ihi", corr, error, 1) + struct.pack(">h", 5) + b"PLAIN")


def authenticate(token, user, password):
    parts = token.split(b"\0")
    if len(parts) != 3:
        return False
    return hmac.compare_digest(parts[1], user) & hmac.compare_digest(parts[2], password)


def authenticate_reply(corr, data, version, user, password):
    flexible = version >= 2
    pos = request_body(data, flexible)
    if flexible:
        size, pos = uvarint(data, pos)
        token = data[pos:pos + size - 1]
    else:
        size = struct.unpack(">i", data[pos:pos + 4])[0]
        token = data[pos + 4:pos + 4 + size]
    ok = authenticate(token, user, password)
    error = 0 if ok else SASL_AUTHENTICATION_FAILED
    message = None if ok else b"Authentication failed: invalid username or password"
    if flexible:
        body = struct.pack(">i", corr) + b"\0" + struct.pack(">h", error)
        body += b"\0" if message is None else to_uvarint(len(message) + 1) + message
        body += to_uvarint(1)  # empty auth bytes
        body += struct.pack(">q", 0) + b"\0"
    else:
        body = struct.pack(">ih", corr, error)
        body += struct.pack(">h", -1) if message is None else struct.pack(">h", len(message)) + message
        body += struct.pack(">i", 0)
        if version >= 1:
            body += struct.pack(">q", 0)
    return ok, frame(body)


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(client_r, client_w, upstream, user, password):
    up_r = up_w = None
    try:
        up_r, up_w = await asyncio.open_connection(*upstream)
        handshaken = False
        while True:
            data = await read_frame(client_r)
            key, version, corr = struct.unpack(">hhi", data[:8])
            if key == API_API_VERSIONS:
                up_w.write(frame(data))
                await up_w.drain()
                client_w.write(frame(await read_frame(up_r)))
            elif key == API_SASL_HANDSHAKE and version >= 1:
                error, reply = handshake_reply(corr, data, version)
                client_w.write(reply)
                if error:
                    break
                handshaken = True
            elif key == API_SASL_AUTHENTICATE and handshaken:
                ok, reply = authenticate_reply(corr, data, version, user, password)
                client_w.write(reply)
                await client_w.drain()
                if not ok:
                    break
                await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
                return
            else:
                break  # anything else before authentication: the connection is closed
            await client_w.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, struct.error, IndexError):
        pass
    finally:
        client_w.close()
        if up_w is not None:
            up_w.close()


async def main():
    listen, upstream, user, password_file = sys.argv[1:5]
    host, port = listen.rsplit(":", 1)
    up_host, up_port = upstream.rsplit(":", 1)
    with open(password_file, "rb") as f:
        password = f.read().strip()
    user = user.encode()
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, (up_host, int(up_port)), user, password), host, int(port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
