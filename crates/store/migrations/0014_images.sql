-- The image registry (docs/images.md): images accounts made (from an instance, or uploaded
-- through Glance), kept as a JSON document. Built-in catalogue images are not stored. A
-- deleted image keeps its row (status 'deleted'): its UUID is never reused (Glance answers
-- 409 for it) and a delayed write from before the deletion is refused by its generation.
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL,
    status TEXT NOT NULL,
    generation BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX images_status ON images (status);
