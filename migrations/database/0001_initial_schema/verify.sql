SELECT COUNT(*) = 3 FROM roles WHERE name IN ('admin', 'operator', 'viewer');
