"""The node's HTTP routes (docs/protocol.md §6), one APIRouter per concern.

discovery (descriptor, controller document, schemas; the OpenAPI bearer
scheme), feeds (checkpoint, log pages, proofs, log index, snapshot), records
(GET /records/...), writes (POST/PUT/DELETE, authenticated). shared holds what
they all use: the app's Node, the error shape, ETags and the OpenAPI
declarations. biofed.node.app assembles them with the middleware.
"""
