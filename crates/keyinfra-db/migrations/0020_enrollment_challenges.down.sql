DROP FUNCTION keyinfra_record_enrollment_certificate(uuid, uuid);
DROP FUNCTION keyinfra_release_enrollment_challenge(uuid);
DROP FUNCTION keyinfra_claim_enrollment_challenge(bytea, timestamptz);
DROP TABLE enrollment_challenges;
