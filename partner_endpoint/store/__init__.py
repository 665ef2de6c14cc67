"""The database: tables, queries, migrations, encryption at rest. Reads and writes; decides nothing."""
