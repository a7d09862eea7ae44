"""Django's Redis cache, reusing one client per connection pool.

Django's `RedisCacheClient.get_client()` builds a new `redis.Redis` object on
every call (about 0.2 ms of CPU with redis-py 8); the charge path invalidates
the display cache after every commit, so that adds up. `redis.Redis` objects
are thread-safe and share their pool, so one per pool is enough.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class PooledRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class PooledRedisCache(RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = PooledRedisCacheClient
