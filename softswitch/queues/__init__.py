"""Call queues (ACD): the queue engine, agents, the queue event log's statistics.

`engine` is the sans-I/O core (events and a clock in, offers out), `strategies` orders
agents, `period` and `stats` turn the event log into guide-style call-center figures.
"""
