"""Start localstripe, the offline Stripe stand-in, on 127.0.0.1 only.

localstripe 1.15.10's own command line listens on every interface and keeps
its state in /tmp/localstripe.pickle. This launcher builds the same aiohttp
app, keeps the state in --state-dir, listens on 127.0.0.1, and adds two
things the tests need:

* GET /_config/request_count returns how many API requests were made with
  the secret key in the request's Authorization header, so a test can
  assert that the product made no Stripe call;
* POST /_config/exit_after with `method` and `path_prefix` makes the
  stand-in exit right after responding to the first matching API request,
  so a test can stop it in the middle of a sequence of calls. The state is
  saved before the response leaves.
* --exit-with-parent stops the stand-in when the process that started it
  exits, so test runs leave no server behind.

On start it prints "listening on 127.0.0.1:PORT" (with the real port when
--port is 0) and flushes standard output.
"""

import argparse
import asyncio
import collections
import logging
import os
import pickle
import socket
import sys

from aiohttp import web

from localstripe import resources, server


def use_state_file(path):
    """Make localstripe load and save its store at `path`."""

    def try_load_from_disk(store):
        try:
            with open(path, 'rb') as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        dict.update(store, old)

    def dump_to_disk(store):
        temporary = path + '.tmp'
        with open(temporary, 'wb') as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)

    resources.Store.try_load_from_disk = try_load_from_disk
    resources.Store.dump_to_disk = dump_to_disk


request_counts = collections.Counter()
exit_after = {}


@web.middleware
async def count_requests(request, handler):
    if not request.path.startswith('/v1/'):
        return await handler(request)
    request_counts[server.get_api_key(request)] += 1
    response = await handler(request)
    if (exit_after and request.method == exit_after['method'] and
            request.path.startswith(exit_after['path_prefix'])):
        # Send the response, then exit before reading another request. The
        # store was saved by localstripe's own middleware already.
        await response.prepare(request)
        await response.write_eof()
        os._exit(0)
    return response


async def config_exit_after(request):
    data = await request.post()
    exit_after['method'] = data['method']
    exit_after['path_prefix'] = data['path_prefix']
    return web.Response()


async def request_count(request):
    key = server.get_api_key(request)
    return web.json_response({'count': request_counts[key] if key else 0})


async def exit_with_parent(parent_pid):
    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=8420,
                        help='TCP port on 127.0.0.1; 0 picks a free one')
    parser.add_argument('--state-dir', required=True,
                        help='folder for the saved store; created if missing')
    parser.add_argument('--exit-with-parent', action='store_true',
                        help='exit when the parent process exits')
    args = parser.parse_args()

    os.makedirs(args.state_dir, exist_ok=True)
    use_state_file(os.path.join(args.state_dir, 'localstripe.pickle'))
    resources.store.try_load_from_disk()

    app = server.app
    app.middlewares.insert(0, count_requests)
    app.router.add_get('/_config/request_count', request_count)
    app.router.add_post('/_config/exit_after', config_exit_after)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(app, args.port, args.exit_with_parent))


async def serve(app, port, with_parent):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('127.0.0.1', port))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    # Announced only now, once connections are accepted.
    print(f'listening on 127.0.0.1:{sock.getsockname()[1]}', flush=True)
    if with_parent:
        await exit_with_parent(os.getppid())
    else:
        await asyncio.Event().wait()


if __name__ == '__main__':
    main()
