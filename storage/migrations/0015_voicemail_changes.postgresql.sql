-- Every change of a mailbox's messages, by whoever makes it (the switch, `softswitch
-- voicemail delete`, the admin API, another node), leaves a row here, written by a
-- trigger so no writer can forget it, and NOTIFYs the provisioning channel ('voicemail'):
-- a running switch reads the rows after the last one it saw and reloads those mailboxes,
-- so message-waiting lamps follow changes made beside it.

CREATE TABLE voicemail_changes (
    seq     BIGSERIAL PRIMARY KEY,
    tenant  TEXT NOT NULL,
    mailbox TEXT NOT NULL
);

CREATE FUNCTION voicemail_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO voicemail_changes (tenant, mailbox) VALUES (OLD.tenant, OLD.mailbox);
    ELSE
        INSERT INTO voicemail_changes (tenant, mailbox) VALUES (NEW.tenant, NEW.mailbox);
    END IF;
    PERFORM pg_notify('softswitch_provisioning', 'voicemail');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER voicemail_messages_changed AFTER INSERT OR UPDATE OR DELETE
ON voicemail_messages FOR EACH ROW EXECUTE FUNCTION voicemail_changed();
