-- Banned source addresses (softswitch.security): one row per address, kept past the ban's
-- end for the guard's offence memory so that a repeat offender's next ban is longer.

CREATE TABLE security_bans (
    address    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    offences   INTEGER NOT NULL,
    banned_at  DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX security_bans_expires ON security_bans (expires_at);
