-- Media figures of anchored calls: the worse side's MOS estimate, each side's reception
-- statistics (JSON object) and the recordings made during the call (JSON array).

ALTER TABLE cdrs ADD COLUMN mos REAL;
ALTER TABLE cdrs ADD COLUMN quality TEXT NOT NULL DEFAULT '{}';
ALTER TABLE cdrs ADD COLUMN recordings TEXT NOT NULL DEFAULT '[]';
