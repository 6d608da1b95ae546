DROP INDEX sequences_unpruned;
ALTER TABLE sequences DROP COLUMN pruned_at;
