"""``/v1/wallet`` and ``/v1/transactions``: the caller's credits and its ledger entries."""

from __future__ import annotations

from aiohttp import web

from api.platform.envelope import PageQuery, add_route, ok
from api.web.http import parse_query
from api.web.keys import USER, WALLETS
from api.web.openapi import OpenAPIRegistry
from runtime.platform.ledger import TransactionPage, Wallet

__all__ = ["setup_wallet_routes"]


async def get_wallet(request: web.Request) -> web.Response:
    return ok(await request.app[WALLETS].wallet(request[USER]))


async def list_transactions(request: web.Request) -> web.Response:
    query = parse_query(request, PageQuery)
    return ok(await request.app[WALLETS].transactions(request[USER], query.page, query.page_size))


def setup_wallet_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    add_route(
        app,
        registry,
        "GET",
        "/wallet",
        get_wallet,
        "Your balance, frozen credits and totals",
        response=Wallet,
    )
    add_route(
        app,
        registry,
        "GET",
        "/transactions",
        list_transactions,
        "Your ledger entries, newest first",
        response=TransactionPage,
        query=PageQuery,
    )
