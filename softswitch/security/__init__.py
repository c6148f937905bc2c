"""Security of the signalling edge: bans for password guessing, scanner and flood filtering.

``guard`` decides (sans-I/O), ``tables`` holds its bounded counts, ``keeper`` keeps its
bans in the store.
"""
