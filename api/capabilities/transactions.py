"""``/api/v1/transactions`` (orders of capabilities) and ``/api/v1/wallet``, in the capability envelope.

An order is placed with ``POST /api/v1/transactions``; the ``Idempotency-Key`` header (the
middleware's, :mod:`api.web.idempotency`) makes a retry answer the same transaction and charge
once. The transaction's id is its task's: A2A ``tasks/get`` / ``tasks/sendSubscribe`` /
``tasks/cancel`` follow it. The wallet is the ``/v1/wallet`` one.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.capabilities.routes import Envelope, EnvelopeError, envelope_response, error_envelope
from api.web.errors import register_envelope
from api.web.http import MAX_INT, parse_body, parse_query
from api.web.keys import ORDERS, USER, WALLETS
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.platform.ledger import Wallet
from runtime.platform.orders import Order, OrderPage, OrderRequest

__all__ = ["setup_transaction_routes"]

TRANSACTIONS = "/api/v1/transactions"
WALLET = "/api/v1/wallet"


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1, le=MAX_INT, description="Page number, from 1.")
    page_size: int = Field(20, ge=1, le=100, description="Items per page (at most 100).")


async def create_transaction(request: web.Request) -> web.Response:
    body = await parse_body(request, OrderRequest)
    order, _ = await request.app[ORDERS].place(request[USER], body)
    return envelope_response(order, status=201)


async def list_transactions(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    return envelope_response(
        await request.app[ORDERS].list_orders(request[USER], query.page, query.page_size)
    )


async def get_transaction(request: web.Request) -> web.Response:
    return envelope_response(
        await request.app[ORDERS].get(request[USER], request.match_info["transaction_id"])
    )


async def get_wallet(request: web.Request) -> web.Response:
    return envelope_response(await request.app[WALLETS].wallet(request[USER]))


def setup_transaction_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    register_envelope(app, TRANSACTIONS, error_envelope)
    register_envelope(app, WALLET, error_envelope)
    router, tag = app.router, "transactions"
    registry.add(
        router,
        Operation(
            "POST",
            TRANSACTIONS,
            "Order a public capability: its price is held from your wallet, the capability runs as your task",
            tag,
            request=OrderRequest,
            response=Envelope[Order],
            status=201,
            errors=(400, 404, 409, 422, 503),
            error_model=EnvelopeError,
            description="Paid to the capability's owner when the task completes, refunded when it fails or "
            "is canceled. 409: your balance is short of the price (nothing runs). Send an Idempotency-Key "
            "header: a retry answers the same transaction and charges once (another body under the key: "
            "422). The id is the task's: follow it with A2A tasks/get, tasks/sendSubscribe, tasks/cancel.",
        ),
        create_transaction,
    )
    registry.add(
        router,
        Operation(
            "GET",
            TRANSACTIONS,
            "Your orders, bought and sold, newest first",
            tag,
            query=PageQuery,
            response=Envelope[OrderPage],
            errors=(400,),
            error_model=EnvelopeError,
        ),
        list_transactions,
    )
    registry.add(
        router,
        Operation(
            "GET",
            f"{TRANSACTIONS}/{{transaction_id}}",
            "An order you bought or sold",
            tag,
            response=Envelope[Order],
            errors=(404,),
            error_model=EnvelopeError,
        ),
        get_transaction,
    )
    registry.add(
        router,
        Operation(
            "GET",
            WALLET,
            "Your wallet: balance, frozen credits and totals (the /v1/wallet)",
            tag,
            response=Envelope[Wallet],
            error_model=EnvelopeError,
        ),
        get_wallet,
    )
