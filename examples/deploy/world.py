#!/usr/bin/env python3
"""The demo's simulated world: one small HTTP server per role.

    world.py ROLE ADDRESS DOCROOT

Roles (all plain HTTP on port 80 of ADDRESS):
  github   serves DOCROOT/github: acme/tool/releases/latest and the release file
  mirror   serves DOCROOT/mirror: the same release, kept on an internal mirror
  updates  the update server servicectl phones home to: GET /check
  api      the internal deployment API. POST /v1/deployments checks the version
           on github.com before recording it (so it needs github.com);
           POST /v2/deployments checks it on mirror.internal instead.

Names are resolved through /etc/resolv.conf, which demo.sh points at the
world's dnsmasq inside a private mount namespace. Nothing here listens outside
the demo's network namespace. Requests are logged to stderr.
"""
import http.server
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


class Quiet(http.server.SimpleHTTPRequestHandler):
    server_version = "demo-world/1"
    sys_version = ""

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s: %s\n" % (ROLE, self.client_address[0], fmt % args))

    def send_json(self, code, obj, extra=None):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class Files(Quiet):
    def list_directory(self, path):  # no directory listings
        self.send_error(404)
        return None


class Updates(Quiet):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/check":
            return self.send_error(404)
        self.send_json(200, {"tool": "servicectl", "latest": "3.0.0",
                             "message": "a new servicectl is available"})


class Api(Quiet):
    # where each version of the API checks that a release exists
    UPSTREAMS = {"/v1/deployments": "github.com", "/v2/deployments": "mirror.internal"}

    def do_GET(self):
        if self.path == "/healthz":
            return self.send_json(200, {"ok": True})
        self.send_error(404)

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        upstream = self.UPSTREAMS.get(url.path)
        if upstream is None:
            return self.send_error(404)
        q = urllib.parse.parse_qs(url.query)
        tool = q.get("tool", ["acme/tool"])[0]
        version = q.get("version", [""])[0]
        check = "http://%s/%s/releases/latest" % (upstream, tool)
        try:
            with urllib.request.urlopen(check, timeout=5) as r:
                latest = r.read().decode().strip()
        except (urllib.error.URLError, OSError) as e:
            return self.send_json(502, {"ok": False, "error": "cannot reach %s: %s" % (upstream, e),
                                        "checked_against": upstream})
        if version != latest:
            return self.send_json(409, {"ok": False, "error": "%s is not the latest release (%s)"
                                        % (version, latest), "checked_against": upstream})
        self.send_json(200, {"ok": True, "recorded": "%s %s" % (tool, version),
                             "checked_against": upstream}, {"X-Checked-Against": upstream})


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: world.py github|mirror|updates|api ADDRESS DOCROOT")
    ROLE, addr, docroot = sys.argv[1:]
    handler = {"github": Files, "mirror": Files, "updates": Updates, "api": Api}.get(ROLE)
    if handler is None:
        sys.exit("world.py: unknown role %s" % ROLE)
    if handler is Files:
        os.chdir(os.path.join(docroot, ROLE))
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    srv = http.server.ThreadingHTTPServer((addr, 80), handler)
    srv.daemon_threads = True
    sys.stderr.write("%s: listening on %s:80\n" % (ROLE, addr))
    sys.stderr.flush()
    srv.serve_forever()
