"""Seed 000's MCP client code (``mcp_demo``), verbatim but for its URL and its headers' values.

The seed connects to its platform's ``/mcp/sse`` with placeholder credentials and calls
``uuagent_search``; here the URL is BASE_URL + ``/mcp/sse`` and the key and user id come from the
environment (as seed 000's own demo reads UUMIT_*). The last line runs it.
"""

import asyncio
import os

from mcp import ClientSession
from mcp.client.sse import sse_client

MCP_URL = os.environ["BASE_URL"] + "/mcp/sse"


async def mcp_demo():
    headers = {
        "X-Api-Key": os.environ["API_KEY"],
        "X-Platform-User-Id": os.environ["USER_ID"],
    }
    async with sse_client(MCP_URL, headers=headers) as (read_stream, write_stream):
        async with ClientSession(read_stream, write_stream) as session:
            await session.initialize()
            # 列出所有可用工具
            tools = await session.list_tools()
            for tool in tools.tools:
                print(f"{tool.name}: {tool.description}")
            # 调用工具
            result = await session.call_tool(
                "uuagent_search",
                arguments={"query": "数据分析", "page_size": 5},
            )
            print(result)


asyncio.run(mcp_demo())
