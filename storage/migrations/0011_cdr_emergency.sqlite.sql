-- Calls to emergency numbers (911, 112, 999 and the tenant's own) are marked in their CDR:
-- they went out by the emergency route, past every permission, cap and limit.

ALTER TABLE cdrs ADD COLUMN emergency INTEGER NOT NULL DEFAULT 0;
