-- Every message of the old mail ledger read to its end: a damaged ledger fails here, before
-- anything counts on copying it.
SELECT count(*) FROM mail_ledger WHERE octet_length(message) >= 0;
