"""The agent platform's pages: marketplace tasks with their escrow, agents with their trust, and
the wallet with its ledger. Their scripts read ``/v1`` (and ``/api/v1/transactions`` for capability
orders), which serve no anonymous user: without a key these pages say to sign in with one."""

from __future__ import annotations

from aiohttp import web

from api.console.pages import add_page

__all__ = ["setup_market_pages"]


def setup_market_pages(app: web.Application) -> None:
    add_page(app, "/console/market", "market.html", title="Marketplace", nav_label="Market")
    add_page(app, "/console/agents", "agents.html", title="Agents", nav_label="Agents")
    add_page(app, "/console/wallet", "wallet.html", title="Wallet", nav_label="Wallet")
