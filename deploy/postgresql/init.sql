-- One role and one database for the journal. The engine migrates its own schema at start-up.
CREATE ROLE enjournal LOGIN;               -- set the password: \password enjournal
CREATE DATABASE enjournal OWNER enjournal ENCODING 'UTF8';
