-- 0005_labels.sql - names pinned to model versions ("production",
-- "staging"), so clients and rollbacks need no version numbers.
--
-- A label points at an existing version of its model: the composite
-- foreign key keeps a labelled version from being deleted (the API says
-- why first, with 409), and deleting the model deletes its labels.  The
-- label "default" is what a prediction without a version uses; without it,
-- the latest version.  Training never moves a label.
CREATE TABLE model_labels (
    model_id   INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model_id, label),
    FOREIGN KEY (model_id, version) REFERENCES model_versions(model_id, version)
) STRICT;
