-- tokengate directory, version 2: users imported from SpaceONE keep where
-- their password is checked. `backend` EXTERNAL: SpaceONE's auth plugin
-- checked it (tokengate calls none: a password login answers
-- ERROR_AUTHENTICATION_FAILURE), so the row has no password_hash. An
-- API_USER may have none either (it never logs in with a password). Every
-- other user keeps one, as before.
ALTER TABLE tokengate.users
    ALTER COLUMN password_hash DROP NOT NULL,
    ADD COLUMN backend text NOT NULL DEFAULT 'LOCAL' CHECK (backend IN ('LOCAL', 'EXTERNAL')),
    ADD CONSTRAINT users_password_by_backend CHECK (
        CASE backend
            WHEN 'EXTERNAL' THEN password_hash IS NULL
            ELSE password_hash IS NOT NULL OR user_type = 'API_USER'
        END
    );
