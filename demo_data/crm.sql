-- The demo CRM: a SQLite source database that load_demo builds from this script.
CREATE TABLE IF NOT EXISTS customers (customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL, signed_up DATE NOT NULL);
DELETE FROM customers;
INSERT INTO customers VALUES ('c001', 'Ada Lovelace', 'FR', '2025-01-10');
INSERT INTO customers VALUES ('c002', 'Grace Hopper', 'DE', '2025-02-11');
INSERT INTO customers VALUES ('c003', 'Alan Turing', 'US', '2025-03-12');
INSERT INTO customers VALUES ('c004', 'Edsger Dijkstra', 'FR', '2025-04-13');
INSERT INTO customers VALUES ('c005', 'Barbara Liskov', 'GB', '2025-05-14');
INSERT INTO customers VALUES ('c006', 'Donald Knuth', 'US', '2025-06-15');
INSERT INTO customers VALUES ('c007', 'Frances Allen', 'ES', '2025-07-16');
INSERT INTO customers VALUES ('c008', 'John McCarthy', 'DE', '2025-08-17');
