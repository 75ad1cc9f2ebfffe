-- dingbridge schema 1.
--
-- Every record is the JSON its Go struct describes (data), next to the columns
-- queries select, lock or sweep by. rev counts the updates of a record that is
-- changed by read-modify-write: an update is stored only if rev is still what
-- was read, so replicas never lose each other's updates.
--
-- Durable records live in ordinary tables. Flow state (auth requests, codes,
-- upstream states, device authorizations) lives in UNLOGGED tables: no WAL, no
-- fsync on a login's path, emptied by a crash of PostgreSQL (the person presses
-- "log in" again), and not copied to streaming replicas.

CREATE TABLE clients (
    id   text PRIMARY KEY,
    rev  bigint NOT NULL DEFAULT 1,
    data jsonb NOT NULL
);

-- keys are what FindUsers looks a person up by (storage.User.Keys, encoded by
-- userKey), written with the record in the same statement.
CREATE TABLE users (
    subject text PRIMARY KEY,
    rev     bigint NOT NULL DEFAULT 1,
    keys    text[] NOT NULL DEFAULT '{}',
    data    jsonb NOT NULL
);
CREATE INDEX users_keys ON users USING gin (keys);

CREATE TABLE sessions (
    id      text PRIMARY KEY,
    subject text NOT NULL,
    expiry  timestamptz NOT NULL,
    rev     bigint NOT NULL DEFAULT 1,
    data    jsonb NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_expiry ON sessions (expiry);

CREATE TABLE access_tokens (
    id        text PRIMARY KEY,
    grant_id  text NOT NULL,
    client_id text NOT NULL,
    subject   text NOT NULL,
    expiry    timestamptz NOT NULL,
    data      jsonb NOT NULL
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_client ON access_tokens (client_id);
CREATE INDEX access_tokens_subject ON access_tokens (subject);
CREATE INDEX access_tokens_expiry ON access_tokens (expiry);

-- A rotated refresh token keeps its row (rotated_at set) until it expires, so
-- presenting it again is recognised; successor is the token that replaced it.
CREATE TABLE refresh_tokens (
    id         text PRIMARY KEY,
    grant_id   text NOT NULL,
    client_id  text NOT NULL,
    subject    text NOT NULL,
    expiry     timestamptz NOT NULL,
    rotated_at timestamptz,
    successor  text NOT NULL DEFAULT '',
    data       jsonb NOT NULL
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expiry);

-- A revoked grant may not be issued tokens again until "until".
CREATE TABLE grant_revocations (
    grant_id text PRIMARY KEY,
    until    timestamptz NOT NULL
);
CREATE INDEX grant_revocations_until ON grant_revocations (until);

CREATE TABLE consents (
    subject   text NOT NULL,
    client_id text NOT NULL,
    data      jsonb NOT NULL,
    PRIMARY KEY (subject, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

-- The one key set: read and replaced whole, compare-and-swap on rev.
CREATE TABLE key_set (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rev       bigint NOT NULL DEFAULT 1,
    data      jsonb NOT NULL
);

CREATE TABLE leases (
    name   text PRIMARY KEY,
    holder text NOT NULL,
    expiry timestamptz NOT NULL
);

CREATE UNLOGGED TABLE auth_requests (
    id        text PRIMARY KEY,
    client_id text NOT NULL,
    expiry    timestamptz NOT NULL,
    rev       bigint NOT NULL DEFAULT 1,
    data      jsonb NOT NULL
);
CREATE INDEX auth_requests_client ON auth_requests (client_id);
CREATE INDEX auth_requests_expiry ON auth_requests (expiry);

-- claims counts ClaimAuthCode calls: the one that makes it 1 wins.
CREATE UNLOGGED TABLE auth_codes (
    id         text PRIMARY KEY,
    client_id  text NOT NULL,
    expiry     timestamptz NOT NULL,
    claimed_at timestamptz,
    claims     integer NOT NULL DEFAULT 0,
    data       jsonb NOT NULL
);
CREATE INDEX auth_codes_client ON auth_codes (client_id);
CREATE INDEX auth_codes_expiry ON auth_codes (expiry);

CREATE UNLOGGED TABLE upstream_states (
    id     text PRIMARY KEY,
    expiry timestamptz NOT NULL,
    data   jsonb NOT NULL
);
CREATE INDEX upstream_states_expiry ON upstream_states (expiry);

CREATE UNLOGGED TABLE device_authorizations (
    id        text PRIMARY KEY,
    user_code text NOT NULL UNIQUE,
    client_id text NOT NULL,
    expiry    timestamptz NOT NULL,
    rev       bigint NOT NULL DEFAULT 1,
    data      jsonb NOT NULL
);
CREATE INDEX device_authorizations_client ON device_authorizations (client_id);
CREATE INDEX device_authorizations_expiry ON device_authorizations (expiry);
