"""Links towards the clients: the Redis store and a TCP port for classic INDI clients."""
