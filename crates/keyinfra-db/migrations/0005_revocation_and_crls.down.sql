DROP TABLE crls;
DROP TRIGGER certificates_follow_owner ON certificates;
DROP FUNCTION certificates_follow_owner();
DROP TABLE revoked_certificates;
DROP TYPE revocation_reason;
