-- The provisioning changes after a revision (Store.load_provisioning_changes): a running
-- switch reads only the objects a change touched instead of the whole model.
CREATE INDEX audit_log_revision ON audit_log (revision);
