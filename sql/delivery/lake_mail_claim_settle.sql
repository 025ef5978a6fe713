-- The server's answer to a delivery attempt this session claimed, recorded beside the claim
-- before the ledger: a sender that stops in between leaves it for the next to copy.
UPDATE polyrecon_mail_claims
SET status = %(status)s, answer = %(answer)s
WHERE message_key = %(message_key)s AND queued_at = %(queued_at)s AND attempt = %(attempt)s
  AND claimant_pid = pg_backend_pid()
RETURNING message_key
