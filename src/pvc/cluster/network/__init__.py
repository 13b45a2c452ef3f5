"""Client networks: validation, queries (v1 shapes from the cache), checked writes, ACL rule text."""
