-- Whether a device renewing itself (EST simplereenroll) may ask for other names than the
-- certificate it renews has. Off by default: a certificate is then a credential for its
-- own names only. On, the new names must still pass the policy's name rules.
ALTER TABLE issuance_policies
    ADD COLUMN renewal_name_changes boolean NOT NULL DEFAULT false;
