-- DuckLake only, in the catalog's PostgreSQL (warehouse/lake.py): a row per delivery attempt of
-- a message (its ledger line's key, queued_at and attempts), claimed before the message is
-- handed to SMTP. The primary key lets one sender claim it; the claimant's session (pid and
-- start) tells a sender still at work from one that ended before it recorded the server's
-- answer (status NULL: in doubt).
CREATE TABLE IF NOT EXISTS polyrecon_mail_claims (
    message_key text NOT NULL,
    queued_at timestamp NOT NULL,
    attempt integer NOT NULL,
    claimed_by text NOT NULL,
    claimant_pid integer NOT NULL,
    claimant_start timestamptz,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    status text,
    answer text,
    PRIMARY KEY (message_key, queued_at, attempt)
)
