"""The ZooKeeper state layer: paths, records, transactions, locks, cache, schema."""
