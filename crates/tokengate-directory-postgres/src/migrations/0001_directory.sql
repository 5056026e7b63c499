-- tokengate directory, version 1: domains, their users and owners, and a
-- statement-level trigger per table that tells every tokengate instance
-- (LISTEN tokengate_directory) that something changed, whoever changed it:
-- the `tokengate user|owner|domain` commands or any SQL client.
CREATE TABLE tokengate.domains (
    domain_id  text PRIMARY KEY CHECK (domain_id <> ''),
    state      text NOT NULL DEFAULT 'ENABLED' CHECK (state IN ('ENABLED', 'DISABLED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tokengate.users (
    domain_id        text NOT NULL REFERENCES tokengate.domains (domain_id)
                          ON DELETE CASCADE ON UPDATE CASCADE,
    user_id          text NOT NULL CHECK (user_id <> ''),
    password_hash    text NOT NULL,
    state            text NOT NULL DEFAULT 'ENABLED'
                          CHECK (state IN ('ENABLED', 'DISABLED', 'PENDING')),
    user_type        text NOT NULL DEFAULT 'USER' CHECK (user_type IN ('USER', 'API_USER')),
    required_actions text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, user_id)
);

CREATE TABLE tokengate.owners (
    domain_id     text NOT NULL REFERENCES tokengate.domains (domain_id)
                       ON DELETE CASCADE ON UPDATE CASCADE,
    owner_id      text NOT NULL CHECK (owner_id <> ''),
    password_hash text NOT NULL,
    state         text NOT NULL DEFAULT 'ENABLED'
                       CHECK (state IN ('ENABLED', 'DISABLED', 'PENDING')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, owner_id)
);

CREATE FUNCTION tokengate.notify_directory_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tokengate_directory', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER domains_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON tokengate.domains FOR EACH STATEMENT EXECUTE FUNCTION tokengate.notify_directory_change();
CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON tokengate.users FOR EACH STATEMENT EXECUTE FUNCTION tokengate.notify_directory_change();
CREATE TRIGGER owners_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON tokengate.owners FOR EACH STATEMENT EXECUTE FUNCTION tokengate.notify_directory_change();
