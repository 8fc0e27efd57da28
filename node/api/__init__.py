"""The node's HTTP API, written against `backend.Backend`.

backend.py   what the API needs from a node; the stable error codes
rpc.py       the Starlette app: endpoints, views, rate limits, events
openapi.py   the OpenAPI 3.1 description, built from the limits in effect
server.py    Hypercorn behind a listener that bounds what clients hold
"""
