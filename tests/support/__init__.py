"""What the tests share: ports, the gateway as a process, the upstream test servers, real
Redis and nginx, keys files, stream parsing. Test modules import from here, never from
each other."""
