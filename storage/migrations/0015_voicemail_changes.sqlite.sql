-- Every change of a mailbox's messages, by whoever makes it (the switch, `softswitch
-- voicemail delete`, the admin API, another node), leaves a row here, written by triggers
-- so no writer can forget it. A running switch reads the rows after the last one it saw
-- and reloads those mailboxes: message-waiting lamps follow changes made beside it.

CREATE TABLE voicemail_changes (
    seq     INTEGER PRIMARY KEY,  -- rowid: ascends (only the oldest rows are deleted)
    tenant  TEXT NOT NULL,
    mailbox TEXT NOT NULL
);

CREATE TRIGGER voicemail_messages_added AFTER INSERT ON voicemail_messages
BEGIN
    INSERT INTO voicemail_changes (tenant, mailbox) VALUES (NEW.tenant, NEW.mailbox);
END;

CREATE TRIGGER voicemail_messages_moved AFTER UPDATE ON voicemail_messages
BEGIN
    INSERT INTO voicemail_changes (tenant, mailbox) VALUES (NEW.tenant, NEW.mailbox);
END;

CREATE TRIGGER voicemail_messages_deleted AFTER DELETE ON voicemail_messages
BEGIN
    INSERT INTO voicemail_changes (tenant, mailbox) VALUES (OLD.tenant, OLD.mailbox);
END;
