"""The scenarios' ledger: a counter every request increments in a transaction.

A request that succeeded must be counted exactly once, and a failed one not at all.
``Hit`` rows carry each request's id, so a request applied twice would be a duplicate
key, and the ids of the hits can be compared with the ids the clients saw succeed.
"""
