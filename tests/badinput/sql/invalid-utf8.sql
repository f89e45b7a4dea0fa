CREATE TABLE t (name TEXT);
-- ÿþý
