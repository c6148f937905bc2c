"""Drivers for the real SIP peers the tests and the operator bench talk to.

Each module starts one kind of peer as its own process (or, for pjsua2, a worker process),
bounded in time and stopped by its PID: ``switchproc`` our switch (`softswitch run`) and
its configuration file, ``sipp`` SIPp and its scenarios (tests/sipp), ``baresip`` a baresip
phone driven over ctrl_tcp, ``pjsua`` pjsip's pjsua2 in a worker process, ``postgres`` a
throw-away PostgreSQL server. Loopback only,
ports above 10000 (:func:`peers.switchproc.free_port`).
"""
