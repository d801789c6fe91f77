#!/usr/bin/env python3
"""HTTP-level fuzz of a running jetbridge publisher (loopback only).

Sends malformed request lines, malformed and huge headers, broken chunked bodies,
pipelined garbage, random mutations of valid requests, and a slowloris phase (many
connections each sending one byte per second). Between phases, and during the
slowloris phase, it checks that /healthz still answers 200 and that every answer
that came back is a well-formed HTTP status line.

It does not judge the exact status of each bad request (400, 405, 413, 431, or a
closed connection are all fine); the judge is the process: alive, responsive,
no sanitizer report, bounded memory (run.sh checks those).

Usage: httpfuzz.py --port PORT [--seconds 60] [--seed N] [--slowloris 200]
Exit status: 0 when the publisher stayed healthy, 1 otherwise.
"""
import argparse
import random
import socket
import sys
import threading
import time

IO_TIMEOUT = 1.0
IDLE_AFTER_ANSWER = 0.3


def exchange(port, data, shut=True, timeout=IO_TIMEOUT):
    """Sends data, optionally half-closes, reads until EOF/timeout. Returns the
    bytes received (possibly empty), or None when the connection failed."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None
    out = b""
    try:
        s.settimeout(timeout)
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close early on garbage: fine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < 1 << 20:
            # Once an answer started, a short pause ends it: the server may keep
            # the connection open (keep-alive) and we do not want to wait for that.
            s.settimeout(IDLE_AFTER_ANSWER if out else max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def statuses(resp):
    """The status codes of every response in resp; raises on a malformed one."""
    codes = []
    for line in resp.split(b"\r\n"):
        if line.startswith(b"HTTP/"):
            parts = line.split(b" ", 2)
            if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
                raise ValueError("malformed status line %r" % line[:80])
            codes.append(int(parts[1]))
    # libevent echoes the request's version ("HTTP/0.1 400" to "GET / HTTP/0.1"), so any
    # HTTP/<digit>.<digit> is accepted here; the status line itself must be well formed.
    if resp and not (resp.startswith(b"HTTP/") and resp[5:6].isdigit() and resp[6:7] == b"."
                     and resp[7:8].isdigit()):
        raise ValueError("answer does not start with a status line: %r" % resp[:80])
    return codes


def healthz(port):
    r = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 timeout=10)
    return bool(r) and r.startswith(b"HTTP/1.1 200")


def valid_request(i, body=None, extra=b""):
    body = body if body is not None else b'{"n":%d}' % i
    return (b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"ce-specversion: 1.0\r\nce-id: fuzz-%d\r\nce-source: httpfuzz\r\n"
            b"ce-type: httpfuzz.event.v1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s" % (i, len(body), extra, body))


def request_lines(rnd):
    long_uri = b"/" + b"a" * rnd.choice([1000, 9000, 70000, 300000])
    return [
        b"\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"POST /publish HTTP/9.9\r\nHost: x\r\n\r\n",
        b"POST /publish HTTP/1.1 extra\r\n\r\n",
        b"POST  /publish  HTTP/1.1\r\n\r\n",
        b"post /publish HTTP/1.1\r\nHost: x\r\n\r\n",
        b"BREW /publish HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET " + long_uri + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /publish\x00/x HTTP/1.1\r\n\r\n",
        b"GET http://evil/publish HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /%zz%00%ff/v1/events HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /a/v1/events/subscribed?" + b"x=" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /publish HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
        b"POST /publish HTTP/1.1\rHost: x\r\r",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(rnd.getrandbits(8) for _ in range(200)),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 4000))),
    ]


def header_cases(rnd, i):
    huge = b"x" * rnd.choice([17000, 70000, 1 << 20])
    many = b"".join(b"X-H%d: v\r\n" % k for k in range(rnd.choice([200, 5000, 20000])))
    return [
        valid_request(i, extra=b"NoColonHeader\r\n"),
        valid_request(i, extra=b"X-Big: " + huge + b"\r\n"),
        valid_request(i, extra=many),
        valid_request(i, extra=b"X-Fold: a\r\n  folded\r\n"),
        valid_request(i, extra=b": empty-name\r\n"),
        valid_request(i, extra=b"ce-id: second-id\r\n"),
        valid_request(i, extra=b"Content-Length: 5\r\n"),
        valid_request(i, extra=b"Transfer-Encoding: chunked\r\n"),
        valid_request(i, extra=b"ce-type: " + b"\xff\xfe" * 100 + b"\r\n"),
        valid_request(i, extra=b"ce-time: 2020-13-45T99:99:99Z\r\n"),
        valid_request(i, extra=b"traceparent: " + b"%" * 3000 + b"\r\n"),
        valid_request(i, extra=b"Content-Type: application/cloudevents+json\r\n"),
        valid_request(i, extra=b"Content-Type: application/cloudevents-batch+json\r\n"),
        valid_request(i, extra=b"Content-Type: application/cloudevents+protobuf\r\n"),
        b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nabc",
        b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
        b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\nabc",
        b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 100000,
        b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",
        b"POST /app/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{[",
    ]


def chunk_cases(rnd, i):
    head = (b"POST /publish HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: c%d\r\n"
            b"ce-source: httpfuzz\r\nce-type: httpfuzz.event.v1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" % i)
    big = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    return [
        head + b"zz\r\nabc\r\n0\r\n\r\n",
        head + b"-1\r\nabc\r\n0\r\n\r\n",
        head + b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        head + b"fffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        head + b"7fffffff\r\nabc",
        head + b"3\r\nabcdef\r\n0\r\n\r\n",
        head + b"3\r\nab",
        head + b"3;ext=1;x\r\nabc\r\n0\r\nTrailer: x\r\n\r\n",
        head + b"2\r\n{}\r\n",  # no final chunk
        head + big * 3 + b"0\r\n\r\n",  # over MAX_REQUEST_SIZE through chunks
        head + b"1\r\na\r\n" * 2000 + b"0\r\n\r\n",
        head + b" 5 \r\nabcde\r\n0\r\n\r\n",
        head + b"0x5\r\nabcde\r\n0\r\n\r\n",
    ]


def pipelined_cases(rnd, i):
    valid = b"".join(valid_request(i * 1000 + k) for k in range(50))
    garbage = bytes(rnd.getrandbits(8) for _ in range(500))
    return [
        valid_request(i) + garbage,
        valid + garbage + valid,
        valid_request(i) + b"GET /healthz HTTP/1.1\r\n\r\n" * 100,
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 1000),
        valid_request(i) + b"POST /publish HTTP/1.1\r\nContent-Length: 100\r\n\r\nxx",
    ]


def mutate(rnd, data):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randrange(5)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rnd.getrandbits(8)
        elif op == 1:
            b[pos:pos] = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 64)))
        elif op == 2:
            del b[pos:pos + rnd.randint(1, 32)]
        elif op == 3:
            b[pos:pos] = rnd.choice([b"\r\n", b"\r\n\r\n", b":", b"\x00", b"%", b"\n", b" "])
        else:
            b = b[:pos]
    return bytes(b)


class Stats:
    def __init__(self):
        self.sent = 0
        self.codes = {}
        self.no_answer = 0
        self.refused = 0
        self.malformed = []

    def record(self, resp):
        self.sent += 1
        if resp is None:
            self.refused += 1
            return
        if not resp:
            self.no_answer += 1
            return
        try:
            for c in statuses(resp):
                self.codes[c] = self.codes.get(c, 0) + 1
        except ValueError as e:
            self.malformed.append(str(e))


def slowloris(port, conns, seconds, stop):
    """conns connections, each sending one byte of a request head per second."""
    socks = []
    head = b"POST /publish HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
    for _ in range(conns):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            break
    opened = len(socks)
    closed_by_server = 0
    t_end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < t_end and not stop.is_set():
        for s in list(socks):
            try:
                s.send(head[k % len(head):k % len(head) + 1])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed_by_server += 1
                socks.remove(s)
                s.close()
        k += 1
        stop.wait(1.0)
    for s in socks:
        s.close()
    return opened, closed_by_server


def run_phase(name, port, cases, stats, deadline, rnd, fails, workers=1):
    """Sends every case (until deadline) with `workers` threads, then checks /healthz."""
    lock = threading.Lock()
    it = iter(cases)
    count = [0]

    def worker(seed):
        wr = random.Random(seed)
        while time.monotonic() < deadline:
            with lock:
                data = next(it, None)
            if data is None:
                return
            resp = exchange(port, data, shut=wr.random() < 0.7)
            with lock:
                stats.record(resp)
                count[0] += 1

    threads = [threading.Thread(target=worker, args=(rnd.getrandbits(32),)) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = healthz(port)
    print("httpfuzz: phase %-10s %5d requests, healthz %s" % (name, count[0], "ok" if ok else "FAILED"),
          flush=True)
    if not ok:
        fails.append("healthz failed after phase " + name)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--slowloris", type=int, default=200, help="connections")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    print("httpfuzz: port %d, %.0f s, seed %d" % (a.port, a.seconds, a.seed), flush=True)
    if not healthz(a.port):
        print("httpfuzz: the publisher does not answer /healthz before the fuzz")
        return 1
    stats, fails = Stats(), []
    t0 = time.monotonic()
    budget = a.seconds
    share = budget / 6  # request lines, headers, chunked, pipelined, mutations, slowloris

    run_phase("lines", a.port, request_lines(rnd) * 3, stats, t0 + share, rnd, fails)
    run_phase("headers", a.port, header_cases(rnd, 1) + header_cases(rnd, 2), stats,
              t0 + 2 * share, rnd, fails)
    run_phase("chunked", a.port, chunk_cases(rnd, 1) * 2, stats, t0 + 3 * share, rnd, fails)
    run_phase("pipelined", a.port, pipelined_cases(rnd, 1) + pipelined_cases(rnd, 2), stats,
              t0 + 4 * share, rnd, fails)
    seeds = (request_lines(rnd)[:8] + header_cases(rnd, 3)[:6] + chunk_cases(rnd, 3)[:6]
             + [valid_request(7)])
    deadline = t0 + 5 * share
    # Generated up front: the generator must not be shared by threads.
    mutations = [mutate(rnd, rnd.choice(seeds)) for _ in range(20000)]
    run_phase("mutations", a.port, mutations, stats, deadline, rnd, fails, workers=8)

    # slowloris, while normal requests must still be served
    stop = threading.Event()
    res = {}
    th = threading.Thread(target=lambda: res.update(
        r=slowloris(a.port, a.slowloris, max(5.0, share), stop)))
    th.start()
    time.sleep(2)
    during = [healthz(a.port) for _ in range(3)]
    stop.wait(max(3.0, share - 2))
    stop.set()
    th.join()
    opened, closed = res.get("r", (0, 0))
    print("httpfuzz: phase slowloris  %d connections opened, %d closed by the server, "
          "healthz during: %s" % (opened, closed, during), flush=True)
    if not all(during):
        fails.append("healthz failed during slowloris")
    if not healthz(a.port):
        fails.append("healthz failed after slowloris")

    codes = " ".join("%d:%d" % kv for kv in sorted(stats.codes.items()))
    print("httpfuzz: %d requests in %.0f s; answers %s; no answer %d; refused %d; malformed %d"
          % (stats.sent, time.monotonic() - t0, codes, stats.no_answer, stats.refused,
             len(stats.malformed)), flush=True)
    for m in stats.malformed[:5]:
        fails.append(m)
    if stats.refused > stats.sent // 10:
        fails.append("%d connections refused" % stats.refused)
    for f in fails:
        print("httpfuzz: FAIL " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
