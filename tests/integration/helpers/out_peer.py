#!/usr/bin/env python3
"""A tiny HTTP(S) peer for jetbridge's outbound-trust tests, written with Python's
standard library only, so it checks jetbridge with an implementation of its own:

  sink mode:  records every request as one JSON line in --log ("authorized": false
              and a 401 when --require-auth-file lists other values), checks Standard
              Webhooks signatures with hmac/base64 (--secret FILE), answers 401 to
              a bearer token named by --reject-token (or the first bearer token it sees,
              with --reject-first-bearer), else 200.
  token mode: an OAuth2 token endpoint for the client-credentials grant: checks
              HTTP Basic client authentication (--client ID:SECRET) and the form,
              answers {"access_token": "tok-<n>", "expires_in": ...}; the first
              --fail-first requests get 500. With --hold-file PATH every token
              answer waits until PATH exists (the request is logged at once), so a
              test can hold a token request open as long as it needs.

Listens on 127.0.0.1 only. --tls-cert/--tls-key serve HTTPS; --client-ca also
requires a client certificate signed by that CA."""
import argparse, base64, hashlib, hmac, json, os, ssl, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--mode", choices=["sink", "token"], default="sink")
ap.add_argument("--secret")
ap.add_argument("--reject-token")
ap.add_argument("--reject-first-bearer", action="store_true")
ap.add_argument("--redirect", help="answer 307 with this Location to every POST to /")
ap.add_argument("--client")
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--expires-in", type=int, default=3600)
ap.add_argument("--hold-file")
ap.add_argument("--require-auth-file",
                help="sink: answer 401 unless Authorization is one of this file's lines")
ap.add_argument("--tls-cert")
ap.add_argument("--tls-key")
ap.add_argument("--client-ca")
args = ap.parse_args()
lock = threading.Lock()
count = [0]
first_bearer = []


def signing_key():
    raw = open(args.secret, "rb").read().strip()
    return base64.b64decode(raw[6:]) if raw.startswith(b"whsec_") else raw


def record(entry):
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            count[0] += 1
            n = count[0]
        entry = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        if self.connection.__class__.__name__ == "SSLSocket":
            cert = self.connection.getpeercert()
            entry["client_cert"] = bool(cert)
        if args.mode == "token":
            form = urllib.parse.parse_qs(body.decode())
            auth = self.headers.get("Authorization", "")
            want = "Basic " + base64.b64encode(args.client.encode()).decode()
            entry["grant_type"] = form.get("grant_type", [""])[0]
            entry["scope"] = form.get("scope", [""])[0]
            entry["client_ok"] = auth == want
            record(entry)
            while args.hold_file and not os.path.exists(args.hold_file):
                time.sleep(0.05)
            if n <= args.fail_first:
                return self.answer(500)
            if auth != want or entry["grant_type"] != "client_credentials":
                return self.answer(401, b'{"error":"invalid_client"}')
            tok = {"access_token": "tok-%d" % (n - args.fail_first), "token_type": "Bearer",
                   "expires_in": args.expires_in}
            return self.answer(200, json.dumps(tok).encode())
        if args.secret:
            wid = self.headers.get("webhook-id", "")
            wts = self.headers.get("webhook-timestamp", "")
            sig = self.headers.get("webhook-signature", "")
            mac = hmac.new(signing_key(), ("%s.%s." % (wid, wts)).encode() + body, hashlib.sha256)
            entry["sig_ok"] = sig == "v1," + base64.b64encode(mac.digest()).decode()
        if args.require_auth_file:
            with open(args.require_auth_file) as f:
                allowed = [l.rstrip("\n") for l in f if l.strip()]
            entry["authorized"] = self.headers.get("Authorization", "") in allowed
        record(entry)
        if args.redirect and self.path == "/":
            self.send_response(307)
            self.send_header("Location", args.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        auth = self.headers.get("Authorization", "")
        if args.require_auth_file and not entry["authorized"]:
            return self.answer(401)
        if args.reject_token and auth == "Bearer " + args.reject_token:
            return self.answer(401)
        if args.reject_first_bearer and auth.startswith("Bearer "):
            with lock:
                if not first_bearer:
                    first_bearer.append(auth)
                refuse = first_bearer[0] == auth
            if refuse:
                return self.answer(401)
        self.answer(200)


srv = ThreadingHTTPServer(("127.0.0.1", args.port), H)
if args.tls_cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
