"""The store's command sender (:mod:`indiredis.store.sender`) against a real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
import redis.exceptions

from indiredis.links.client_side.redisside import aclose
from indiredis.store.sender import CommandSender


def test_a_batch_is_answered_in_order_with_error_replies_in_place(redis_proc):
    async def run() -> list[object]:
        rconn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port, decode_responses=True)
        try:
            sender = CommandSender()
            return await sender.run(
                rconn, [("SET", "k", "v"), ("HSET", "k", "f", "x"), ("EVALSHA", "0" * 40, 0), ("GET", "k")]
            )
        finally:
            await aclose(rconn)

    first, wrong_type, no_script, value = asyncio.run(run())
    assert first is True or first == "OK"
    assert isinstance(wrong_type, redis.exceptions.ResponseError) and "WRONGTYPE" in str(wrong_type)
    assert isinstance(no_script, redis.exceptions.NoScriptError)
    assert value == "v"  # the connection stayed in step after the error replies


def test_a_connection_left_with_replies_unread_is_not_used_again(redis_proc):
    """A batch cancelled while its replies are awaited (the session ending) leaves its connection
    with replies unread: the next batch must not take them for its own."""

    async def run() -> tuple[object, bool]:
        rconn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port, decode_responses=True)
        try:
            sender = CommandSender()
            await sender.run(rconn, [("SET", "a", "1"), ("SET", "b", "2")])
            first = sender._connection
            # a reply that takes a second: the batch is cancelled while it is awaited
            blocked = asyncio.ensure_future(sender.run(rconn, [("BLPOP", "nothing", 1)]))
            async with asyncio.timeout(10):  # until Redis is blocked in it
                while not any(client["cmd"] == "blpop" for client in await rconn.client_list()):
                    await asyncio.sleep(0.01)
            blocked.cancel()
            await asyncio.gather(blocked, return_exceptions=True)
            (value,) = await sender.run(rconn, [("GET", "a")])
            return value, sender._connection is first
        finally:
            await aclose(rconn)

    assert asyncio.run(run()) == ("1", False)
