-- A short name for each CA, for URLs that pick a CA by name: EST's
-- /.well-known/est/{label}/... (RFC 7030 3.2.2) takes a CA's id or its short name. The
-- display name allows spaces and 64 characters; a URL segment wants neither.
--
-- Lower-case letters, digits and hyphens, 1 to 32 characters, starting with a letter or
-- digit, unique, and never one of EST's operation names (a label equal to an operation
-- would make /.well-known/est/cacerts ambiguous).
ALTER TABLE certificate_authorities ADD COLUMN short_name text;

-- The default for a CA inserted without one: its name made into a slug ("KeyInfra Issuing
-- CA" -> "keyinfra-issuing-ca"), cut to 29 characters, with -2, -3, ... while taken. Kept
-- in the database so that every path that inserts a CA (init, ca create, ca import, a
-- restore, another replica's binary) gets one.
CREATE FUNCTION keyinfra_ca_short_name_default() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    base text;
    candidate text;
    n integer := 1;
BEGIN
    IF NEW.short_name IS NOT NULL THEN
        RETURN NEW;
    END IF;
    base := left(btrim(regexp_replace(lower(NEW.name), '[^a-z0-9]+', '-', 'g'), '-'), 29);
    base := btrim(base, '-');
    IF base = '' OR base IN ('cacerts', 'simpleenroll', 'simplereenroll', 'serverkeygen',
                             'csrattrs', 'fullcmc') THEN
        base := 'ca' || CASE WHEN base = '' THEN '' ELSE '-' || left(base, 26) END;
    END IF;
    candidate := base;
    WHILE EXISTS (SELECT 1 FROM public.certificate_authorities WHERE short_name = candidate) LOOP
        n := n + 1;
        candidate := base || '-' || n;
    END LOOP;
    NEW.short_name := candidate;
    RETURN NEW;
END
$$;

CREATE TRIGGER certificate_authorities_short_name
    BEFORE INSERT ON certificate_authorities
    FOR EACH ROW EXECUTE FUNCTION keyinfra_ca_short_name_default();

-- Existing CAs, oldest first, so the first "KeyInfra Root CA" keeps the plain slug.
DO $$
DECLARE
    ca record;
    base text;
    candidate text;
    n integer;
BEGIN
    FOR ca IN SELECT id, name FROM certificate_authorities ORDER BY created_at, id LOOP
        base := btrim(left(btrim(regexp_replace(lower(ca.name), '[^a-z0-9]+', '-', 'g'), '-'), 29), '-');
        IF base = '' OR base IN ('cacerts', 'simpleenroll', 'simplereenroll', 'serverkeygen',
                                 'csrattrs', 'fullcmc') THEN
            base := 'ca' || CASE WHEN base = '' THEN '' ELSE '-' || left(base, 26) END;
        END IF;
        candidate := base;
        n := 1;
        WHILE EXISTS (SELECT 1 FROM certificate_authorities WHERE short_name = candidate) LOOP
            n := n + 1;
            candidate := base || '-' || n;
        END LOOP;
        UPDATE certificate_authorities SET short_name = candidate WHERE id = ca.id;
    END LOOP;
END
$$;

ALTER TABLE certificate_authorities
    ALTER COLUMN short_name SET NOT NULL,
    ADD CONSTRAINT certificate_authorities_short_name_key UNIQUE (short_name),
    ADD CONSTRAINT certificate_authorities_short_name_valid CHECK (
        short_name ~ '^[a-z0-9][a-z0-9-]{0,31}$'
        AND short_name NOT IN ('cacerts', 'simpleenroll', 'simplereenroll', 'serverkeygen',
                               'csrattrs', 'fullcmc')
    );
