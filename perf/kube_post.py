#!/usr/bin/env python3
"""POSTs the Subscriptions of a multi-document YAML file to a loopback kube-apiserver
from several concurrent keep-alive connections (perf/bench_kube.sh).
Usage: kube_post.py FILE PORT TOKEN CLIENTS"""
import http.client
import json
import resource
import ssl
import sys
import threading

import yaml

path_tmpl = "/apis/eventing.kyma-project.io/v1alpha2/namespaces/{ns}/subscriptions"


def main():
    fname, port, token, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    with open(fname) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    # Loopback only, to a server whose certificate the test made itself.
    ctx = ssl._create_unverified_context()
    failed = []

    def worker(k):
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
        for d in docs[k::clients]:
            c.request("POST", path_tmpl.format(ns=d["metadata"]["namespace"]), json.dumps(d),
                      {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 201:
                failed.append(r.status)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        sys.exit(f"kube_post: {len(failed)} creates failed, first codes {failed[:5]}")
    # The clients' own CPU: one Python process (one core at most, GIL) must not be what
    # limits the creates.
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"kube_post: {len(docs)} creates, client CPU {ru.ru_utime + ru.ru_stime:.1f} s")


main()
