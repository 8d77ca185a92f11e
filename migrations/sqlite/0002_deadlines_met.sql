-- The complaint clock's outcomes. Deadlines themselves never change on a status change;
-- only an extension (with a reason, recorded in case_events) moves the resolution deadline,
-- and the first deadline is kept so the register shows both.
ALTER TABLE cases ADD COLUMN response_met_at TEXT;          -- first staff/partner message to the complainant
ALTER TABLE cases ADD COLUMN original_resolution_due_at TEXT; -- set by the first extension
ALTER TABLE cases ADD COLUMN extension_reason TEXT;
