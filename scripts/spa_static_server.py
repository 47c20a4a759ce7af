"""Serves a built static single-page app on 127.0.0.1 for the browser tests,
as a static file host or CDN would: files as they are, and index.html for
any other path, so that a deep link such as /usage?range=24h opens the app.

Usage: spa_static_server.py --port PORT --root FOLDER
"""

import argparse
import functools
import http.server
import os
import sys


class SpaHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files under the root; a path with no such file gets index.html."""

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.path = "/index.html"
        return super().send_head()

    def log_message(self, format, *args):
        sys.stderr.write("spa-static: " + (format % args) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--root", required=True, help="folder with index.html")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.root, "index.html")):
        sys.exit(f"error: {args.root}/index.html is missing: run `make spa` first")

    handler = functools.partial(SpaHandler, directory=args.root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
