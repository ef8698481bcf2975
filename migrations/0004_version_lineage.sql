-- 0004_version_lineage.sql - where each model version came from.
--
-- Versions are numbered in the order their jobs finish (max + 1 in the
-- transaction that stores one), so with two jobs on one model the one
-- submitted first can get the higher number.  Each version therefore
-- records what made it: the job (already there), the data set it trained
-- on (NULL for data sent inline with the job) and the version a warm start
-- began from (NULL for a fresh start).  Versions stored before this
-- migration keep NULL in both: nothing recorded them.
ALTER TABLE model_versions ADD COLUMN dataset TEXT;
ALTER TABLE model_versions ADD COLUMN parent_version INTEGER;
