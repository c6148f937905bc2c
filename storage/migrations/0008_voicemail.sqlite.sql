-- Voicemail (softswitch.voicemail): one row per message (its audio is a file under
-- [voicemail] directory, named by `audio` relative to it) and one row per mailbox that
-- has state of its own (a PIN changed by phone, wrong PINs in a row, a lockout).

CREATE TABLE voicemail_messages (
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    mailbox       TEXT NOT NULL,
    folder        TEXT NOT NULL,
    caller_number TEXT NOT NULL,
    caller_name   TEXT NOT NULL,
    received      REAL NOT NULL,
    duration      REAL NOT NULL,
    urgent        INTEGER NOT NULL,
    audio         TEXT NOT NULL
);
CREATE INDEX voicemail_messages_box ON voicemail_messages (tenant, mailbox, received);

CREATE TABLE voicemail_boxes (
    tenant       TEXT NOT NULL,
    mailbox      TEXT NOT NULL,
    pin          TEXT,
    failures     INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    PRIMARY KEY (tenant, mailbox)
);
