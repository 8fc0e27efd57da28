"""The node's HTTP API, written against `backend.Backend`.

backend.py    what the API needs from a node; the stable error codes
rpc.py        the Starlette app: its routes and endpoints
fastpath.py   POST /tx and /txs on plain ASGI, in front of the Starlette app
requests.py   reading parameters and bodies      responses.py  JSON and error answers
limits.py     limits and the cost model          ratelimit.py  token buckets per client
events.py     `/events` as server-sent events    openapi.py    the OpenAPI 3.1 description
server.py     Hypercorn behind a listener that bounds what clients hold
connection.py Hypercorn's connection handler, with less work per request
"""
