-- Per-record generation numbers (issue 14): every whole-record write of an instance names
-- its new generation g and lands only over generation g - 1, so a delayed write of an older
-- record is refused instead of overwriting a newer one. Rows from before start at 0.
ALTER TABLE instances ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
